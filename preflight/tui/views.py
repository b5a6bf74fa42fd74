"""Pure views of a run for the screens: one check across nodes grouped by value, findings order."""

from __future__ import annotations

from dataclasses import dataclass

from preflight.report.console import pair_diff
from preflight.results import Finding, RunReport, Status, worst


def show_value(value: object) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        return ", ".join(show_value(v) for v in value)
    return str(value)


@dataclass(frozen=True)
class ValueGroup:
    """Nodes (with subjects where a check judges per GPU/port) that observed the same value."""

    value: str
    status: Status
    members: tuple[str, ...]  # "gpu-03" or "gpu-03 GPU5"
    nodes: tuple[str, ...]
    expected: str
    sample: Finding

    @property
    def label(self) -> str:
        return self.value


def check_groups(report: RunReport, check_id: str) -> list[ValueGroup]:
    """One check across all nodes, grouped by observed value; worst and then smallest groups first.

    A finding with nothing observed (skipped, could not judge) is grouped by its message, so
    "no topology facts: tool_absent" is one group of its own.
    """
    buckets: dict[str, list[Finding]] = {}
    for f in report.all_findings():
        if f.check != check_id:
            continue
        key = show_value(f.observed) if f.observed is not None else f"({f.msg or f.status.value})"
        buckets.setdefault(key, []).append(f)
    out = []
    for key, fs in buckets.items():
        members = tuple(f"{f.node or 'fleet'}" + (f" {f.subject}" if f.subject else "") for f in fs)
        nodes = tuple(dict.fromkeys(f.node or "fleet" for f in fs))
        expected = sorted({show_value(f.expected) + (f" ({f.expected_source})" if f.expected_source else "")
                           for f in fs if f.expected is not None})
        out.append(ValueGroup(key, worst(f.status for f in fs), members, nodes, "; ".join(expected) or "—", fs[0]))
    out.sort(key=lambda g: (-g.status.rank, len(g.nodes), g.value))
    return out


def check_status(report: RunReport, check_id: str) -> Status | None:
    statuses = [f.status for f in report.all_findings() if f.check == check_id]
    return worst(statuses) if statuses else None


def finding_values(f: Finding) -> tuple[str, str]:
    """(observed, expected) as a table row shows them; topology.consistent: only the GPU pairs that differ."""
    diff = pair_diff(f)
    if diff is None:
        return show_value(f.observed), show_value(f.expected)
    if not diff:
        return "no pair differs", show_value(f.expected)
    seen = ", ".join(f"{len(pairs)} pair{'s' if len(pairs) > 1 else ''} {a}" for a, _b, pairs in diff)
    return seen, ", ".join(dict.fromkeys(b for _a, b, _pairs in diff))


# worst first: a proven failure, could not judge, warning, accepted, skipped (does not apply), pass
FINDING_ORDER = {Status.FAIL: 0, Status.ERROR: 1, Status.WARN: 2, Status.ACCEPTED: 3, Status.SKIP: 4, Status.PASS: 5}


def findings_order(findings: tuple[Finding, ...] | list[Finding], groups_of: dict[str, str],
                   focus_group: str | None = None) -> list[Finding]:
    """Worst first (fail, error, warn, accepted, skip, pass); within a status the focused group first,
    then by check and subject. A skip never sits between failures and the warnings."""
    return sorted(findings, key=lambda f: (FINDING_ORDER.get(f.status, 6),
                                           focus_group is not None and groups_of.get(f.check) != focus_group,
                                           f.check, f.subject or ""))
