"""Findings and reports: what checks return, how statuses rank, and the exit code."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any


class Status(str, enum.Enum):
    """Ordered by `rank`: pass < skip < warn < fail < error ("could not judge")."""

    PASS = "pass"
    SKIP = "skip"
    WARN = "warn"
    FAIL = "fail"
    ERROR = "error"

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK = {Status.PASS: 0, Status.SKIP: 1, Status.WARN: 2, Status.FAIL: 3, Status.ERROR: 4}


def worst(statuses: Any) -> Status:
    result = Status.PASS
    for s in statuses:
        if s.rank > result.rank:
            result = s
    return result


@dataclass(frozen=True)
class Finding:
    """One judgement. Always the same fields; None where not applicable."""

    check: str
    node: str | None  # None for a fleet-wide finding that names no single node
    status: Status
    subject: str | None = None  # e.g. "GPU5", "mlx5_0/1"
    observed: Any = None
    expected: Any = None
    expected_source: str | None = None  # inventory / reference default (with its source) / fleet majority
    msg: str = ""
    evidence: tuple[str, ...] = ()
    hint: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "node": self.node,
            "status": self.status.value,
            "subject": self.subject,
            "observed": self.observed,
            "expected": self.expected,
            "expected_source": self.expected_source,
            "msg": self.msg,
            "evidence": list(self.evidence),
            "hint": self.hint,
        }


@dataclass(frozen=True)
class NodeReport:
    name: str
    address: str
    outcome: str
    message: str
    duration_s: float
    findings: tuple[Finding, ...] = ()

    @property
    def status(self) -> Status:
        """Worst judged status; a skipped check does not hide the others' verdict (all skipped: skip)."""
        if self.outcome != "ok":
            return Status.ERROR
        judged = [f.status for f in self.findings if f.status != Status.SKIP]
        if judged:
            return worst(judged)
        return Status.SKIP if self.findings else Status.PASS


@dataclass(frozen=True)
class RunReport:
    nodes: tuple[NodeReport, ...]
    fleet_findings: tuple[Finding, ...] = ()
    meta: dict[str, Any] = field(default_factory=dict)

    def all_findings(self) -> list[Finding]:
        out = list(self.fleet_findings)
        for n in self.nodes:
            out.extend(n.findings)
        return out

    def counts(self) -> dict[str, int]:
        c = {s.value: 0 for s in Status}
        for f in self.all_findings():
            c[f.status.value] += 1
        c["unreachable"] = sum(1 for n in self.nodes if n.outcome != "ok")
        return c

    @property
    def reachable(self) -> int:
        return sum(1 for n in self.nodes if n.outcome == "ok")


EXIT_OK = 0
EXIT_WARN = 1
EXIT_FAIL = 2
EXIT_CANNOT_RUN = 3


def exit_code(report: RunReport, fail_on: str = "fail") -> int:
    """0 all passed; 1 warnings with fail_on=warn; 2 failures; 3 nothing could be judged.

    A node that could not be reached is a failure of the run's promise (its checks did not
    run), so it counts as a failure; no reachable node at all means the tool could not run.
    """
    if report.nodes and report.reachable == 0:
        return EXIT_CANNOT_RUN
    statuses = [f.status for f in report.all_findings()]
    if any(s in (Status.FAIL, Status.ERROR) for s in statuses) or any(n.outcome != "ok" for n in report.nodes):
        return EXIT_FAIL
    if fail_on == "warn" and any(s == Status.WARN for s in statuses):
        return EXIT_WARN
    return EXIT_OK
