"""Findings and reports: what checks return, how statuses rank, and the exit code."""

from __future__ import annotations

import enum
import functools
from dataclasses import dataclass, field
from typing import Any


class Status(str, enum.Enum):
    """Ordered by `rank`: pass < skip = accepted < warn < error < fail.

    A proven failure outranks "could not judge": a node with both reads FAIL, and its reason names
    the failure first (its coverage still counts what was unknown).

    - skip: the check does not apply to this node, for a stated reason (no IB ports; MIG off).
    - accepted: a needed fact cannot be had by design and the operator said so (inventory
      `accept:` or `--accept`), naming who; neither a pass nor a failure. An *acknowledged* finding
      (inventory `acknowledge:` or `--ack`: a judged fail/warn someone owns until a date) is `accepted`
      too, with `Finding.acknowledged` saying who, why, until when and what it was; it counts as judged.
    - error: the check could not judge (its facts are missing, timed out, partial or unparseable,
      or it crashed). Never read as health: a node with an error is not `pass`.
    """

    PASS = "pass"
    SKIP = "skip"
    ACCEPTED = "accepted"
    WARN = "warn"
    FAIL = "fail"
    ERROR = "error"

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK = {Status.PASS: 0, Status.SKIP: 1, Status.ACCEPTED: 1, Status.WARN: 2, Status.ERROR: 3, Status.FAIL: 4}
# Statuses that are not a verdict on the node: the check did not apply, or its gap was accepted.
NOT_JUDGED = frozenset({Status.SKIP, Status.ACCEPTED})


def worst(statuses: Any) -> Status:
    """The highest-ranked status (the first of equal rank); PASS for none."""
    result, top, rank = Status.PASS, 0, _RANK
    for s in statuses:
        r = rank[s]
        if r > top:
            result, top = s, r
    return result


@dataclass(frozen=True, slots=True)
class Finding:
    """One judgement. Always the same fields; None where not applicable. (Slots: ~100 are made per node.)"""

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
    # an acknowledged (or expired-acknowledgement) finding: {by, reason, expires, source, status (as judged), expired}
    acknowledged: dict[str, Any] | None = None

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
            "acknowledged": self.acknowledged,
        }


@dataclass(frozen=True)
class Coverage:
    """How much of what applies to a node was judged: the evidence behind its verdict."""

    judged: int  # checks with a verdict (pass/warn/fail) on every subject they looked at
    applicable: int  # checks that apply to the node (not every finding a `skip`)
    accepted: int = 0  # checks whose missing facts the operator accepted
    unknown: int = 0  # checks that could not judge (an `error` finding)

    @property
    def full(self) -> bool:
        return self.judged == self.applicable

    def text(self) -> str:
        extra = [f"{n} {w}" for n, w in ((self.unknown, "unknown"), (self.accepted, "accepted")) if n]
        return f"{self.judged}/{self.applicable} judged" + (f" ({', '.join(extra)})" if extra else "")

    def to_dict(self) -> dict[str, int]:
        return {"judged": self.judged, "applicable": self.applicable, "accepted": self.accepted,
                "unknown": self.unknown}


def _is_ack(f: Finding) -> bool:
    return f.status == Status.ACCEPTED and f.acknowledged is not None and not f.acknowledged.get("expired")


def acknowledged_checks(findings: tuple[Finding, ...]) -> list[str]:
    return sorted({f.check for f in findings if _is_ack(f)})


def coverage_of(findings: tuple[Finding, ...]) -> Coverage:
    by_check: dict[str, list[Status]] = {}
    for f in findings:  # an acknowledged finding was judged: it counts as its judged status here
        by_check.setdefault(f.check, []).append(Status((f.acknowledged or {}).get("status", "pass")) if _is_ack(f) else f.status)
    judged = applicable = accepted = unknown = 0
    for statuses in by_check.values():
        if all(s == Status.SKIP for s in statuses):
            continue
        applicable += 1
        if Status.ERROR in statuses:
            unknown += 1
        elif Status.ACCEPTED in statuses:
            accepted += 1
        elif any(s not in NOT_JUDGED for s in statuses):
            judged += 1
    return Coverage(judged=judged, applicable=applicable, accepted=accepted, unknown=unknown)


@dataclass(frozen=True)
class NodeReport:
    """One node's findings and its one verdict (`status`, `reason`), which every surface shows."""

    name: str
    address: str
    outcome: str
    message: str
    duration_s: float
    findings: tuple[Finding, ...] = ()

    @functools.cached_property
    def status(self) -> Status:  # cached: a frozen report's findings never change (every surface asks, often)
        """Worst judged status. Skipped and accepted checks do not hide the others' verdict; a node
        with nothing judged is `skip`, never `pass` (pass means proven)."""
        if self.outcome != "ok":
            return Status.ERROR
        judged = [f.status for f in self.findings if f.status not in NOT_JUDGED]
        return worst(judged) if judged else Status.SKIP

    @functools.cached_property
    def coverage(self) -> Coverage:  # cached as `status` is: the report, the JSON and the TUI each ask
        return coverage_of(self.findings)

    @functools.cached_property
    def reason(self) -> str:
        """One line that says why the node has its status; the same text on every surface."""
        if self.outcome != "ok":
            return f"{self.outcome}: {self.message}".strip(": ") if self.message else self.outcome
        status = self.status
        if status == Status.PASS:
            cov = self.coverage
            acked = acknowledged_checks(self.findings)
            tail = f"; acknowledged: {', '.join(acked)}" if acked else ""
            if not cov.accepted:
                return (f"all {cov.applicable} applicable checks passed" if not acked else
                        f"{cov.applicable - len(acked)} of {cov.applicable} applicable checks passed") + tail
            accepted = sorted({f.check for f in self.findings if f.status == Status.ACCEPTED and not _is_ack(f)})
            return (f"{cov.judged - len(acked)} of {cov.applicable} applicable checks passed; "
                    f"accepted unjudged: {', '.join(accepted)}{tail}")
        if status == Status.SKIP:
            return "nothing judged: no check applies to this node"
        bad = [f for f in self.findings if f.status == status]
        checks: list[str] = []
        for f in bad:
            if f.check not in checks:
                checks.append(f.check)
        first = bad[0]
        head = f"{first.check}{' ' + first.subject if first.subject else ''}: {first.msg}".rstrip(": ")
        more = len(checks) - 1
        return head + (f" (+{more} more {'check' if more == 1 else 'checks'}: {', '.join(checks[1:4])}"
                       f"{', …' if more > 3 else ''})" if more else "")


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

    def node(self, name: str) -> NodeReport | None:
        return next((n for n in self.nodes if n.name == name), None)

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
