"""The run as the TUI holds it: raw nodes so far, their judged reports and facts (no Textual here).

A node's raw result carries a version; a judged report is applied only when it was computed from
that node's newest raw result, so a slow fleet re-judge never overwrites a fresher node re-run.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import Any

from preflight.collect.bundle import Bundle, NodeRaw
from preflight.engine import all_checks
from preflight.facts import FleetFacts, NodeFacts
from preflight.registry import GROUPS, CheckSpec
from preflight.results import Finding, NodeReport, RunReport, Status, worst


def group_map() -> dict[str, str]:
    """check id -> group."""
    return {s.id: s.group for s in all_checks()}


def specs_by_scope(scope: str) -> list[CheckSpec]:
    return [s for s in all_checks() if s.scope == scope]


def cell_status(report: NodeReport, group: str, groups_of: dict[str, str]) -> Status | None:
    """Worst judged status of a node's findings in a group; a skip does not hide the others' verdict."""
    statuses = [f.status for f in report.findings if groups_of.get(f.check) == group]
    if not statuses:
        return None
    judged = [s for s in statuses if s != Status.SKIP]
    return worst(judged) if judged else Status.SKIP


def group_statuses(report: NodeReport, groups: tuple[str, ...] | list[str],
                   groups_of: dict[str, str]) -> list[Status | None]:
    """`cell_status` of every group in `groups`, in one pass over the findings."""
    by_group: dict[str, list[Status]] = {}
    for f in report.findings:
        g = groups_of.get(f.check)
        if g is not None:
            by_group.setdefault(g, []).append(f.status)
    out: list[Status | None] = []
    for g in groups:
        statuses = by_group.get(g)
        if not statuses:
            out.append(None)
            continue
        judged = [st for st in statuses if st != Status.SKIP]
        out.append(worst(judged) if judged else Status.SKIP)
    return out


def node_verdict(report: NodeReport) -> str:
    """pass | warn | fail | error | skip | unreachable: the node's one verdict (`NodeReport.status`), as counted."""
    if report.outcome != "ok":
        return "unreachable"
    s = report.status
    return "skip" if s == Status.ACCEPTED else s.value


@dataclass
class Pending:
    """A node with no answer yet: queued, or started at `since` (monotonic)."""

    since: float | None = None
    note: str = ""


@dataclass
class RunState:
    order: list[str]
    template: Bundle
    raws: dict[str, NodeRaw] = field(default_factory=dict)
    version: dict[str, int] = field(default_factory=dict)
    applied: dict[str, int] = field(default_factory=dict)
    reports: dict[str, NodeReport] = field(default_factory=dict)
    facts: dict[str, NodeFacts] = field(default_factory=dict)
    pending: dict[str, Pending] = field(default_factory=dict)
    fleet_findings: tuple[Finding, ...] = ()
    fleet_judged_at: dict[str, int] = field(default_factory=dict)  # versions the last fleet judge saw
    meta: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_bundle(cls, bundle: Bundle) -> RunState:
        st = cls(order=[n.name for n in bundle.nodes], template=dataclasses.replace(bundle, nodes=[]))
        for raw in bundle.nodes:
            st.add_raw(raw)
            st.pending[raw.name] = Pending(note="judging")
        return st

    @classmethod
    def for_nodes(cls, names: list[str], template: Bundle) -> RunState:
        st = cls(order=list(names), template=template)
        for n in names:
            st.pending[n] = Pending(note="queued")
        return st

    def add_raw(self, raw: NodeRaw) -> int:
        if raw.name not in self.order:
            self.order.append(raw.name)
        self.raws[raw.name] = raw
        self.version[raw.name] = self.version.get(raw.name, 0) + 1
        return self.version[raw.name]

    def bundle(self) -> Bundle:
        """The nodes answered so far, in inventory order, with the run's metadata."""
        return dataclasses.replace(self.template, nodes=[self.raws[n] for n in self.order if n in self.raws])

    def snapshot(self) -> tuple[Bundle, dict[str, int]]:
        return self.bundle(), dict(self.version)

    def apply(self, report: RunReport, fleet: FleetFacts | None, versions: dict[str, int], *,
              fleet_scope: bool = True) -> list[str]:
        """Take the node reports computed from current raws; returns the names whose report changed."""
        changed: list[str] = []
        facts = {f.name: f for f in (fleet.nodes if fleet is not None else ())}
        for nr in report.nodes:
            v = versions.get(nr.name, 0)
            if v < self.version.get(nr.name, 0) or v < self.applied.get(nr.name, 0):
                continue  # computed from an older raw result
            if fleet_scope is False and self.fleet_judged_at.get(nr.name) == v and nr.name in self.reports:
                continue  # a node-only judgement must not drop the fleet findings already applied for this raw
            old = self.reports.get(nr.name)
            self.applied[nr.name] = v
            if fleet_scope:
                self.fleet_judged_at[nr.name] = v
            self.reports[nr.name] = nr
            if nr.name in facts:
                self.facts[nr.name] = facts[nr.name]
            was_pending = self.pending.pop(nr.name, None) is not None
            if old != nr or was_pending:
                changed.append(nr.name)
        if fleet_scope:
            self.fleet_findings = report.fleet_findings
            self.meta = dict(report.meta)
        return changed

    def replace_check(self, check_id: str, report: RunReport) -> list[str]:
        """Swap one check's findings for those of a fresh judgement of it (re-run a check)."""
        new_by_node: dict[str, list[Finding]] = {}
        for nr in report.nodes:
            new_by_node[nr.name] = [f for f in nr.findings if f.check == check_id]
        changed = []
        for name, old in list(self.reports.items()):
            if name not in new_by_node:
                continue
            kept = tuple(f for f in old.findings if f.check != check_id)
            new = dataclasses.replace(old, findings=kept + tuple(new_by_node[name]))
            if new != old:
                changed.append(name)
            self.reports[name] = new
        self.fleet_findings = tuple(f for f in self.fleet_findings if f.check != check_id) + tuple(
            f for f in report.fleet_findings if f.check == check_id)
        return changed

    def run_report(self) -> RunReport:
        """Judged nodes so far, in inventory order (pending nodes are not in it)."""
        nodes = tuple(self.reports[n] for n in self.order if n in self.reports)
        return RunReport(nodes=nodes, fleet_findings=self.fleet_findings, meta=dict(self.meta))

    def fleet_facts(self) -> FleetFacts:
        return FleetFacts(nodes=tuple(self.facts[n] for n in self.order if n in self.facts),
                          expect=dict(self.template.inventory.get("expect") or {}))

    def counts(self) -> dict[str, int]:
        c = {"pass": 0, "warn": 0, "fail": 0, "error": 0, "skip": 0, "unreachable": 0, "waiting": 0}
        for n in self.order:
            if n in self.reports:
                c[node_verdict(self.reports[n])] += 1
            else:
                c["waiting"] += 1
        return c

    def waiting_label(self, name: str, now: float | None = None) -> str:
        p = self.pending.get(name)
        if p is None:
            return ""
        if p.since is None:
            return p.note or "queued"
        return f"waiting {int((now if now is not None else time.monotonic()) - p.since)} s"


__all__ = ["GROUPS", "Pending", "RunState", "cell_status", "group_map", "group_statuses", "node_verdict",
           "specs_by_scope"]
