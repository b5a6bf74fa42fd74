"""Rich console summary: nodes × check groups, then each failure with evidence and a hint."""

from __future__ import annotations

from rich.console import Console, Group
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from preflight.engine import all_checks
from preflight.plan.envelope import Envelope
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


def pair_diff(f: Finding) -> list[tuple[str, str, tuple[str, ...]]] | None:
    """topology.consistent: the GPU pairs that differ, grouped as (observed kind, expected kind, pairs);
    None for any other finding or values that are not `i-j:KIND;...` signatures."""
    if f.check != "topology.consistent" or not isinstance(f.observed, str) or not isinstance(f.expected, str):
        return None
    seen = dict(p.split(":", 1) for p in f.observed.split(";") if ":" in p)
    want = dict(p.split(":", 1) for p in f.expected.split(";") if ":" in p)
    if not seen or not want:
        return None
    groups: dict[tuple[str, str], list[str]] = {}
    for pair in seen.keys() | want.keys():
        a, b = seen.get(pair, "absent"), want.get(pair, "absent")
        if a != b:
            groups.setdefault((a, b), []).append(pair)

    def order(p: str) -> tuple[int, ...]:
        return tuple(int(x) if x.isdigit() else 0 for x in p.split("-"))

    return [(a, b, tuple("GPU" + p.replace("-", "↔GPU") for p in sorted(ps, key=order)))
            for (a, b), ps in sorted(groups.items(), key=lambda kv: -len(kv[1]))]


def pair_diff_text(f: Finding) -> str | None:
    """`GPU0↔GPU5, GPU1↔GPU5 … (7 pairs): NV16, expected NV18`; None when `pair_diff` does not apply."""
    diff = pair_diff(f)
    if diff is None:
        return None
    if not diff:
        return "no GPU pair differs"
    return "; ".join(f"{', '.join(pairs)} ({len(pairs)} pair{'s' if len(pairs) > 1 else ''}): {a}, expected {b}"
                     for a, b, pairs in diff)


def _observed_line(f: Finding) -> Text:
    diff = pair_diff_text(f)
    if diff is not None:
        return Text(f"differs: {diff}" + (f"   (from {f.expected_source})" if f.expected_source else ""), style="dim")
    return Text(f"observed: {f.observed}   expected: {f.expected}" +
                (f"   (from {f.expected_source})" if f.expected_source else ""), style="dim")


def _finding_panel(f: Finding, members: list[Finding] | None = None) -> Panel:
    members = members or [f]
    lines = [Text(f.msg or f.check)]
    subjects = [m.subject for m in members if m.subject]
    checks = sorted({m.check for m in members})
    if len(members) > 1:
        also = f"the same on {', '.join(subjects)}" if len(checks) == 1 else f"the same for {len(checks)} checks: {', '.join(checks)}"
        lines.append(Text(also, style="dim"))
    if f.observed is not None or f.expected is not None:
        lines.append(_observed_line(f))
    crop = f.check == "topology.consistent"  # matrix rows: the link columns come first, the NIC columns can go
    for ev in f.evidence[:12]:
        lines.append(Text("  │ " + ev.rstrip(), style="cyan", no_wrap=crop, overflow="ellipsis" if crop else None))
    if len(f.evidence) > 12:
        lines.append(Text(f"  │ … {len(f.evidence) - 12} more lines in the JSON report", style="dim"))
    if f.hint:
        lines.append(Text("hint: " + f.hint, style="italic"))
    what = f.check if len(checks) == 1 else f"{len(checks)} checks"
    subject = f.subject if len(subjects) <= 1 else f"{len(subjects)} subjects"
    title = f"[{STYLE[f.status]}]{LABEL[f.status]}[/] " + escape(f"{what} · {f.node or 'fleet'}" + (f" · {subject}" if subject else ""))
    return Panel(Group(*lines), title=title, title_align="left", border_style=STYLE[f.status])


def envelope_lines(env: Envelope) -> list[Text]:
    """The parallelism envelope, a few short lines (the console's last panel, the TUI's first screen)."""
    head = Text.assemble(("healthy ", "bold"), (f"{env.healthy_nodes} of {env.nodes} nodes", "green" if env.healthy_nodes
                                                 else "bold red"), f" · {env.healthy_gpus} GPUs")
    if env.excluded:
        head.append(" · excluded: " + ", ".join(n for n, _ in env.excluded), style="dim")
    lines = [head]
    if env.healthy_nodes:
        where = "NVLink domain across nodes" if env.tp_spans_nodes else "largest clean NVLink domain"
        tp = Text.assemble(("TP ≤ ", "bold"), (str(env.tp_max), "bold"), f"  ({where}: {env.tp_where}")
        tp.append(f"; smallest {env.tp_min})" if env.tp_min != env.tp_max and not env.tp_spans_nodes else ")")
        lines.append(tp)
        style = {"measured": "green", "estimated": "yellow", "none": "bold red"}.get(env.fabric, "dim")
        lines.append(Text.assemble(("fabric ", "bold"), (env.fabric, style), f"  ({env.fabric_detail})"))
        cross = Text("across nodes ", style="bold")
        for i, c in enumerate(env.crossings):
            cstyle = {"yes": "green", "estimated": "yellow", "risky": "yellow", "no": "bold red"}.get(c.verdict, "dim")
            cross.append_text(Text.assemble(" · " if i else "", f"{c.axis} ", (c.verdict, cstyle)))
        lines.append(cross)
    if env.model is not None:
        lines.append(Text.assemble(("model ", "bold"), env.model, (f"  {env.model_note}" if env.model_note else "",
                                                                    "bold red")))
        for lay in env.layouts:
            mark, mstyle = ("✔", "green") if lay.verdict == "safe" else ("▲", "bold yellow")
            tok = ""  # decode estimates are the plan's (p / preflight plan): the envelope says what fits and is safe
            lines.append(Text.assemble(f"  {mark} ", (lay.label, f"bold {mstyle}"),
                                       f" · {lay.gpus} GPUs on {lay.nodes} node{'s' if lay.nodes > 1 else ''}"
                                       f" · {lay.max_seqs} seqs{tok}", (f" · {lay.note}" if lay.note else "", "dim")))
    return lines


def render_envelope(env: Envelope, console: Console) -> None:
    console.print(Panel(Group(*envelope_lines(env)), title="[bold]parallelism envelope[/]", title_align="left",
                        subtitle="preflight plan --model M: the full plan", subtitle_align="right"))


def render(report: RunReport, console: Console, *, source_label: str = "", show_warnings: bool = True,
           envelope: Envelope | None = None) -> None:
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
    if envelope is not None:
        render_envelope(envelope, console)
