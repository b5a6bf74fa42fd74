"""Rich console summary: nodes × check groups, then each failure with evidence and a hint."""

from __future__ import annotations

from rich.console import Console, Group
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from preflight.collect.bundle import scrub
from preflight.registry import GROUPS, all_checks
from preflight.results import Finding, RunReport, Status, worst

STYLE = {
    Status.PASS: "green",
    Status.SKIP: "dim",
    Status.WARN: "yellow",
    Status.FAIL: "bold red",
    Status.ERROR: "bold magenta",
}
LABEL = {Status.PASS: "ok", Status.SKIP: "skip", Status.WARN: "WARN", Status.FAIL: "FAIL", Status.ERROR: "ERROR"}
SHORT = {"versions": "ver", "gpu": "gpu", "nvlink": "nvl", "topology": "topo", "ib": "ib", "memory": "mem",
         "nccl": "nccl", "network": "net"}


def _group_of() -> dict[str, str]:
    return {s.id: s.group for s in all_checks()}


def summary_table(report: RunReport) -> Table:
    groups_of = _group_of()
    used = [g for g in GROUPS if any(groups_of.get(f.check) == g for f in report.all_findings())]
    table = Table(title="preflight: nodes × check groups", header_style="bold", expand=False)
    table.add_column("node", no_wrap=True, min_width=max((len(n.name) for n in report.nodes), default=4))
    table.add_column("time", no_wrap=True)
    for g in used:
        table.add_column(SHORT.get(g, g), justify="center", no_wrap=True)
    for n in report.nodes:
        if n.outcome != "ok":
            cells = [Text(f"{n.duration_s:.1f}s", style="dim")] + [Text("—", style="dim") for _ in used]
            cells[1 if used else 0] = Text(n.outcome.upper(), style="bold magenta")
            table.add_row(Text(n.name), *cells)
            continue
        row: list[Text] = [Text(f"{n.duration_s:.1f}s", style="dim")]
        for g in used:
            statuses = [f.status for f in n.findings if groups_of.get(f.check) == g]
            if not statuses:
                row.append(Text("·", style="dim"))
                continue
            judged = [x for x in statuses if x != Status.SKIP]  # a skipped check does not hide the others' verdict
            s = worst(judged) if judged else Status.SKIP
            row.append(Text(LABEL[s], style=STYLE[s]))
        table.add_row(Text(n.name), *row)
    return table


def _finding_panel(f: Finding) -> Panel:
    lines = [Text(scrub(f.msg or f.check))]
    if f.observed is not None or f.expected is not None:
        lines.append(Text(f"observed: {f.observed}   expected: {f.expected}" +
                          (f"   (from {f.expected_source})" if f.expected_source else ""), style="dim"))
    for ev in f.evidence[:12]:
        lines.append(Text("  │ " + scrub(ev.rstrip()), style="cyan"))
    if len(f.evidence) > 12:
        lines.append(Text(f"  │ … {len(f.evidence) - 12} more lines in the JSON report", style="dim"))
    if f.hint:
        lines.append(Text("hint: " + f.hint, style="italic"))
    title = f"[{STYLE[f.status]}]{LABEL[f.status]}[/] " + escape(f"{f.check} · {f.node or 'fleet'}" + (f" · {f.subject}" if f.subject else ""))
    return Panel(Group(*lines), title=title, title_align="left", border_style=STYLE[f.status])


def render(report: RunReport, console: Console, *, source_label: str = "", show_warnings: bool = True) -> None:
    if source_label:
        console.print(Text(source_label, style="bold yellow"))
    console.print(summary_table(report))
    unreachable = [n for n in report.nodes if n.outcome != "ok"]
    for n in unreachable:
        console.print(Panel(Text(n.message or n.outcome), title=f"[bold magenta]{n.outcome.upper()}[/] " + escape(f"{n.name} ({n.address})"),
                            title_align="left", border_style="magenta"))
    wanted = {Status.FAIL, Status.ERROR} | ({Status.WARN} if show_warnings else set())
    problems = [f for f in report.all_findings() if f.status in wanted]
    problems.sort(key=lambda f: (-f.status.rank, f.node or "", f.check, f.subject or ""))
    for f in problems:
        console.print(_finding_panel(f))
    c = report.counts()
    console.print(
        f"[bold]{len(report.nodes)} nodes[/], {report.reachable} reached · "
        f"[green]{c['pass']} passed[/] · [yellow]{c['warn']} warnings[/] · [red]{c['fail']} failed[/] · "
        f"[magenta]{c['error']} errors[/] · {c['skip']} skipped · [magenta]{c['unreachable']} unreachable[/]"
    )
