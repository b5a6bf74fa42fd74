"""Rich console summary: nodes × check groups, then each failure with evidence and a hint."""

from __future__ import annotations

from rich.console import Console, Group
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from preflight.engine import all_checks
from preflight.registry import GROUPS
from preflight.results import Finding, RunReport, Status, worst

STYLE = {
    Status.PASS: "green",
    Status.SKIP: "dim",
    Status.ACCEPTED: "cyan",
    Status.WARN: "yellow",
    Status.FAIL: "bold red",
    Status.ERROR: "bold magenta",
}
LABEL = {Status.PASS: "ok", Status.SKIP: "skip", Status.ACCEPTED: "accepted", Status.WARN: "WARN", Status.FAIL: "FAIL", Status.ERROR: "ERROR"}
SHORT = {"versions": "ver", "gpu": "gpu", "nvlink": "nvl", "topology": "topo", "ib": "ib", "memory": "mem",
         "nccl": "nccl", "network": "net"}


def _group_of() -> dict[str, str]:
    return {s.id: s.group for s in all_checks()}


def summary_table(report: RunReport) -> Table:
    """Nodes × check groups, with each node's one verdict (`NodeReport.status`) in the second column."""
    groups_of = _group_of()
    used = [g for g in GROUPS if any(groups_of.get(f.check) == g for f in report.all_findings())]
    table = Table(title="preflight: nodes × check groups", header_style="bold", expand=False)
    table.add_column("node", no_wrap=True, min_width=max((len(n.name) for n in report.nodes), default=4))
    table.add_column("node verdict" if not used else "verdict", no_wrap=True)
    for g in used:
        table.add_column(SHORT.get(g, g), justify="center", no_wrap=True)
    for n in report.nodes:
        if n.outcome != "ok":
            cells = [Text(n.outcome.upper()[:11], style="bold magenta")] + [Text("—", style="dim") for _ in used]
            table.add_row(Text(n.name), *cells)
            continue
        row: list[Text] = [Text(LABEL[n.status], style=STYLE[n.status])]
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


def verdict_lines(report: RunReport) -> list[Text]:
    """One line per node that is not `pass`: its verdict and reason (the text every surface shows)."""
    out = []
    for n in report.nodes:
        if n.status == Status.PASS and n.outcome == "ok":
            continue
        style = "bold magenta" if n.outcome != "ok" else STYLE[n.status]
        word = n.outcome.upper() if n.outcome != "ok" else LABEL[n.status]
        cov = f" [{n.coverage.text()}]" if n.outcome == "ok" else ""
        out.append(Text.assemble((f"{n.name} {word}: ", style), n.reason + cov))
    return out


# Panels lead with what is proven wrong, then what could not be judged, then warnings.
_PANEL_ORDER = {Status.FAIL: 0, Status.ERROR: 1, Status.WARN: 2}


def _panel_groups(problems: list[Finding]) -> list[tuple[Finding, list[Finding]]]:
    """Could-not-judge findings of one node and check share a panel (GPU1..GPU7 missing the same section),
    and so do several checks missing the same fact for the same reason; failures and warnings stay one each."""
    groups: dict[tuple[str, str, str], list[Finding]] = {}
    out: list[tuple[Finding, list[Finding]]] = []
    for f in problems:
        if f.status != Status.ERROR:
            out.append((f, [f]))
            continue
        key = (f.node or "", f.check if f.subject else "", f.msg if not f.subject else "")
        if key not in groups:
            groups[key] = []
            out.append((f, groups[key]))
        groups[key].append(f)
    return out


def _finding_panel(f: Finding, members: list[Finding] | None = None) -> Panel:
    members = members or [f]
    lines = [Text(f.msg or f.check)]
    subjects = [m.subject for m in members if m.subject]
    checks = sorted({m.check for m in members})
    if len(members) > 1:
        also = f"the same on {', '.join(subjects)}" if len(checks) == 1 else f"the same for {len(checks)} checks: {', '.join(checks)}"
        lines.append(Text(also, style="dim"))
    if f.observed is not None or f.expected is not None:
        lines.append(Text(f"observed: {f.observed}   expected: {f.expected}" +
                          (f"   (from {f.expected_source})" if f.expected_source else ""), style="dim"))
    for ev in f.evidence[:12]:
        lines.append(Text("  │ " + ev.rstrip(), style="cyan"))
    if len(f.evidence) > 12:
        lines.append(Text(f"  │ … {len(f.evidence) - 12} more lines in the JSON report", style="dim"))
    if f.hint:
        lines.append(Text("hint: " + f.hint, style="italic"))
    what = f.check if len(checks) == 1 else f"{len(checks)} checks"
    subject = f.subject if len(subjects) <= 1 else f"{len(subjects)} subjects"
    title = f"[{STYLE[f.status]}]{LABEL[f.status]}[/] " + escape(f"{what} · {f.node or 'fleet'}" + (f" · {subject}" if subject else ""))
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
    problems.sort(key=lambda f: (_PANEL_ORDER.get(f.status, 3), f.node or "", f.check, f.subject or ""))
    for line in verdict_lines(report):
        console.print(line)
    for first, members in _panel_groups(problems):
        console.print(_finding_panel(first, members))
    c = report.counts()
    console.print(
        f"[bold]{len(report.nodes)} nodes[/], {report.reachable} reached · "
        f"[green]{c['pass']} passed[/] · [yellow]{c['warn']} warnings[/] · [red]{c['fail']} failed[/] · "
        f"[magenta]{c['error']} could not judge[/] · {c['accepted']} accepted · {c['skip']} not applicable · "
        f"[magenta]{c['unreachable']} unreachable[/]"
    )
