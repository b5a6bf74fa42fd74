"""The hang screen: the ranked causes, then one pane at a time: the highlighted cause in full, the ranks table
(state, GPU use, top of stack or last collective), NCCL RAS, IB / NIC, the jobs of an analyze, the next commands.

Opened by `preflight tui` on a bundle saved by `preflight hang --save`, `preflight hang --tui`, or
`preflight analyze --tui`. The culprit is selected first; highlighting a cause selects its rank in the table.
With no cause, the next-commands pane opens first. The panes' text: preflight/tui/widgets/hang_panes.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import on
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import DataTable, Footer, OptionList, Static, TabbedContent, TabPane
from textual.widgets.option_list import Option

from preflight.tui.widgets.hang_panes import cause_head, render_cause, render_ib, render_jobs, render_next, render_ras

COLUMNS = ("rank", "node", "pid", "state", "GPU", "util", "top of stack / last collective")
PANES = (("cause", "cause"), ("ranks", "ranks"), ("ras", "RAS"), ("ib", "IB·NIC"), ("jobs", "jobs"), ("next", "next"))


@dataclass(frozen=True)
class OfflineResult:
    """An analyze verdict in the shape the screen reads (a live gather's LiveHang has ranks and notes too)."""

    verdict: Any
    ranks: tuple[Any, ...] = ()
    notes: tuple[str, ...] = ()


def rank_rows(result: Any) -> list[tuple[Any, ...]]:
    """One row per rank: the live gather when there is one, else what the logs said."""
    rows: list[tuple[Any, ...]] = []
    for r in result.ranks:
        where = r.top_frame or ("in a collective" if r.in_collective else "")
        rows.append((r.rank, r.node, r.pid, r.state or "", r.gpu, f"{r.gpu_util}%" if r.gpu_util is not None else "", where))
    if not rows:
        for r in result.verdict.ranks:
            last = f"watchdog #{r.watchdog_seq} {r.watchdog_op or ''}" if r.watchdog_seq is not None else (
                f"FR entered {r.fr_last_entered} / completed {r.fr_last_completed}" if r.fr_last_entered is not None else "")
            rows.append((r.rank, r.node, r.pid, "init ✔" if r.init_complete else "init ✖", r.cuda_dev, "", last))
    return rows


def rank_nodes(result: Any) -> dict[int, str]:
    """rank -> node, from the live gather, else the logs."""
    out = {r.rank: r.node for r in result.verdict.ranks if r.rank is not None and r.node}
    out.update({r.rank: r.node for r in result.ranks if r.rank is not None and r.node})
    return out


class HangScreen(Screen[None]):
    BINDINGS = [Binding("q", "app.quit", "quit"), Binding("c", "focus_causes", "causes"),
                Binding("e", "pane('cause')", "cause"), Binding("k", "focus_ranks", "ranks"),
                Binding("r", "pane('ras')", "RAS"), Binding("i", "pane('ib')", "IB"),
                Binding("j", "pane('jobs')", "jobs"), Binding("n", "pane('next')", "next")]

    def __init__(self, result: Any, title: str) -> None:
        super().__init__()
        self.result = result
        self.heading = title
        self._rank_nodes = rank_nodes(result)
        self._rows = rank_rows(result)

    def compose(self) -> ComposeResult:
        v = self.result.verdict
        yield Static(Text(f"{self.heading} · {v.summary}"), id="hang-header")
        yield OptionList(*[Option(Text(cause_head(i, c)), id=f"c{i}") for i, c in enumerate(v.causes)]
                         or [Option("no likely cause in these inputs: see next (n)", disabled=True)], id="hang-causes")
        with TabbedContent(initial="cause" if v.causes else "next", id="hang-tabs"):
            for pane, label in PANES:
                with TabPane(label, id=pane):
                    if pane == "ranks":
                        yield DataTable(id="hang-ranks", cursor_type="row", zebra_stripes=True)
                    else:
                        with VerticalScroll(classes="hang-pane"):
                            yield Static("", id=f"hang-{pane}")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        table = self.query_one("#hang-ranks", DataTable)
        table.add_columns(*COLUMNS)
        culprit = self.result.verdict.culprit
        for row in self._rows:
            cells = ["–" if x is None or x == "" else str(x) for x in row]
            bad = culprit is not None and culprit.rank is not None and row[0] == culprit.rank
            table.add_row(*[Text(c, style="bold red") if bad else Text(c) for c in cells], key=f"r{row[0]}-{row[1]}-{row[2]}")
        v = self.result.verdict
        self.query_one("#hang-ras", Static).update(render_ras(self.result, self._rank_nodes))
        self.query_one("#hang-ib", Static).update(render_ib(self.result, self._rank_nodes))
        self.query_one("#hang-jobs", Static).update(render_jobs(v))
        self.query_one("#hang-next", Static).update(render_next(v, getattr(self.result, "notes", ())))
        self.query_one("#hang-causes", OptionList).highlighted = 0 if v.causes else None
        if not v.causes:
            self.query_one("#hang-cause", Static).update(Text("no likely cause: the next pane says what to run", style="italic"))
        self._show(0)

    def _show(self, index: int) -> None:
        causes = self.result.verdict.causes
        if not causes:
            return
        c = causes[index]
        self.query_one("#hang-cause", Static).update(render_cause(index, c, self._rank_nodes))
        if c.rank is not None:
            table = self.query_one("#hang-ranks", DataTable)
            for i, row in enumerate(self._rows):
                if row[0] == c.rank:
                    table.move_cursor(row=i)
                    break

    @on(OptionList.OptionHighlighted, "#hang-causes")
    def _highlight(self, event: OptionList.OptionHighlighted) -> None:
        if event.option_index is not None:
            self._show(event.option_index)

    def action_focus_causes(self) -> None:
        self.query_one("#hang-causes", OptionList).focus()

    def action_focus_ranks(self) -> None:
        self.action_pane("ranks")
        self.query_one("#hang-ranks", DataTable).focus()

    def action_pane(self, pane: str) -> None:
        self.query_one("#hang-tabs", TabbedContent).active = pane


class HangApp(App[int]):
    CSS_PATH = Path(__file__).resolve().parent.parent / "hang.tcss"

    def __init__(self, result: Any, title: str = "preflight hang") -> None:
        super().__init__()
        self.result = result
        self.heading = title

    def on_mount(self) -> None:
        self.push_screen(HangScreen(self.result, self.heading))

    def action_quit(self) -> None:  # type: ignore[override]
        self.exit(0 if self.result.verdict.causes else 2)
