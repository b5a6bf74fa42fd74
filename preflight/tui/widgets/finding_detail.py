"""One finding in full: message, observed vs expected (and where the expectation comes from), evidence, hint."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.text import Text
from textual.widgets import Static

from preflight.registry import CheckSpec
from preflight.report.console import pair_diff_text
from preflight.results import Finding
from preflight.tui.status import STYLE, label
from preflight.tui.views import show_value

MAX_EVIDENCE = 40


def render_finding(f: Finding | None, spec: CheckSpec | None = None) -> RenderableType:
    if f is None:
        return Text("no finding selected", style="italic")
    head = Text.assemble((label(f.status), STYLE[f.status]), " ", (f.check, "bold"),
                         f" · {f.node or 'fleet'}" + (f" · {f.subject}" if f.subject else ""))
    lines: list[RenderableType] = [head]
    if spec is not None and spec.summary:
        lines.append(Text(spec.summary, style="dim"))
    if f.msg:
        lines.append(Text(f.msg))
    diff = pair_diff_text(f)
    if diff is not None:  # topology.consistent: the GPU pairs that differ, not two 28-pair strings
        lines.append(Text.assemble(("differs: ", "bold"), diff))
    else:
        lines.append(Text.assemble(("observed: ", "bold"), show_value(f.observed), "   ", ("expected: ", "bold"),
                                   show_value(f.expected)))
    if f.expected_source:
        lines.append(Text(f"expected from: {f.expected_source}", style="dim"))
    if f.evidence:
        lines.append(Text("evidence (raw output):", style="bold"))
        for ev in f.evidence[:MAX_EVIDENCE]:
            lines.append(Text("  │ " + ev.rstrip(), style="cyan"))
        if len(f.evidence) > MAX_EVIDENCE:
            lines.append(Text(f"  │ … {len(f.evidence) - MAX_EVIDENCE} more lines in the JSON export", style="dim"))
    hint = f.hint or (spec.remediation if spec is not None and f.status.rank >= 2 else None)
    if hint:
        lines.append(Text.assemble(("hint: ", "bold"), hint))
    return Group(*lines)


class FindingDetail(Static):
    def show(self, f: Finding | None, spec: CheckSpec | None = None) -> None:
        self.update(render_finding(f, spec))
