"""A hang verdict in the console: the likely causes first (culprit on top), then ranks, then the inputs."""

from __future__ import annotations

import re
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table

MAX_RANK_ROWS = 64
_FRAME = re.compile(r"^(?P<fn>\S+) \((?:[^()]*/)?(?P<file>[^/()]+)\)$")


def short_frame(frame: str | None) -> str | None:
    """'all_reduce (torch/distributed/distributed_c10d.py:1316)' -> 'all_reduce (distributed_c10d.py:1316)':
    the table's form; --json keeps the frame whole."""
    if not frame:
        return frame
    m = _FRAME.match(frame)
    return f"{m['fn']} ({m['file']})" if m else frame


def render(verdict: Any, console: Console, *, title: str = "preflight hang analysis", live_rows: Any = ()) -> None:
    console.print(f"[bold]{escape(title)}[/]: {escape(verdict.summary)}")
    if not verdict.causes:
        console.print("[yellow]no likely cause found in " + ("this gather[/]" if live_rows else
                      "these inputs[/] (see the files table for what was read)"))
        steps = getattr(verdict, "next_commands", ())
        if steps:
            console.print("[bold]next, in order:[/]")
            grid = Table.grid(padding=(0, 1))
            grid.add_column(justify="right")
            grid.add_column(overflow="fold")
            for i, step in enumerate(steps, 1):
                grid.add_row(f"{i}.", escape(step))
            console.print(grid)
    for i, c in enumerate(verdict.causes[:8]):
        where = " · ".join(x for x in (f"rank {c.rank}" if c.rank is not None else "", c.node or "") if x)
        body = [escape(c.title)] + [f"  [cyan]│ {escape(e)}[/]" for e in c.evidence]
        body.append(f"[bold]next:[/] {escape(c.next_command)}")
        style = "red" if i == 0 else ("yellow" if c.score >= 0.5 else "dim")
        head = "CULPRIT" if i == 0 else f"#{i + 1}"
        console.print(Panel("\n".join(body), title=f"[{style}]{head}[/] score {c.score:.2f} {escape(where)} [dim]{c.kind}[/]",
                            title_align="left", border_style=style))
    if len(verdict.causes) > 8:
        console.print(f"[dim]… {len(verdict.causes) - 8} more causes in --json[/]")
    if live_rows:
        t = Table(title="ranks on the nodes now", title_justify="left")
        for col in ("rank", "node", "pid", "state", "GPU", "util%", "MiB", "top of stack"):
            t.add_column(col, overflow="fold")
        for r in list(live_rows)[:MAX_RANK_ROWS]:
            t.add_row(*(escape(str(x)) if x is not None else "–"
                        for x in (r.rank, r.node, r.pid, r.state, r.gpu, r.gpu_util, r.gpu_mem_mib, short_frame(r.top_frame))))
        console.print(t)
    elif verdict.ranks:
        t = Table(title="ranks in the logs", title_justify="left")
        for col in ("rank", "node", "pid", "NCCL", "transport", "init", "watchdog seq", "last FR entered/completed"):
            t.add_column(col, overflow="fold")
        for r in verdict.ranks[:MAX_RANK_ROWS]:
            fr = f"{r.fr_last_entered}/{r.fr_last_completed}" if r.fr_last_entered is not None else "–"
            t.add_row(str(r.rank), escape(r.node or "–"), str(r.pid or "–"), escape(r.nccl_version or "–"),
                      escape(r.transport or "–"), {True: "✔", False: "✖ never", None: "–"}[r.init_complete],
                      f"{r.watchdog_seq} {r.watchdog_op or ''}" if r.watchdog_seq is not None else "–", fr)
        console.print(t)
        if len(verdict.ranks) > MAX_RANK_ROWS:
            console.print(f"[dim]… {len(verdict.ranks) - MAX_RANK_ROWS} more ranks in --json[/]")
    unknown = [f for f in verdict.files if not f.kinds]
    if unknown:
        console.print("[dim]not recognised: " + escape(", ".join(f"{f.path} ({f.note})" for f in unknown[:10])) + "[/]",
                      soft_wrap=True)
