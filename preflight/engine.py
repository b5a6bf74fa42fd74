"""Judge a bundle: parse every node, run the selected checks, assemble the report.

Live runs and replays take the same path (`judge`), so a saved bundle reproduces the live
verdicts exactly. No I/O here: this is a pure function of the bundle and the check set.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from preflight import __version__
from preflight.collect.bundle import Bundle
from preflight.facts import FleetFacts, NodeFacts, majority
from preflight.parse.node import build_node_facts
from preflight.registry import CheckSpec, all_checks
from preflight.results import Finding, NodeReport, RunReport, Status


@dataclass
class CheckContext:
    """What a check may know besides facts: its thresholds and where expectations come from."""

    spec: CheckSpec
    fleet: FleetFacts
    node: NodeFacts | None = None
    overrides: dict[str, Any] = field(default_factory=dict)

    def skip(self, node: NodeFacts, msg: str, **kw: Any) -> Finding:
        """This check cannot judge this node, and why (a fact missing from the collected outputs)."""
        return Finding(check=self.spec.id, node=node.name, status=Status.SKIP, msg=msg, **kw)

    def threshold(self, name: str) -> tuple[Any, str]:
        """(value, source) of a threshold: inventory override, else the check's documented default."""
        if self.node is not None:
            per = self.node.thresholds.get(self.spec.id, {})
            if isinstance(per, dict) and name in per:
                return per[name], f"inventory thresholds.{self.spec.id}.{name}"
        if name in self.overrides:
            return self.overrides[name], "inventory thresholds"
        return self.spec.thresholds.get(name), self.spec.threshold_sources.get(name, f"default of {self.spec.id}")

    def expected(self, node: NodeFacts, key: str) -> tuple[Any, str | None]:
        """A pinned expectation for this node from the inventory, with its source; (None, None) if unpinned."""
        value = node.expect.get(key)
        if value is None:
            return None, None
        return value, node.expect_sources.get(key, "inventory")


def _needs_unmet(spec: CheckSpec, node: NodeFacts) -> Finding | None:
    for key in spec.needs:
        if getattr(node, key, None) is None:
            reason = node.missing.get(key, "not collected")
            status = Status.ERROR if key in node.unparseable else Status.SKIP
            return Finding(check=spec.id, node=node.name, status=status, msg=f"no {key} facts: {reason}")
    return None


def _guard(spec: CheckSpec, produce: Iterable[Finding], node: str | None) -> list[Finding]:
    """A crashing check becomes an `error` finding for that check, never a crashed run."""
    try:
        return list(produce)
    except Exception as exc:
        return [Finding(check=spec.id, node=node, status=Status.ERROR, msg=f"check crashed: {type(exc).__name__}: {exc}")]


def _facts_of(raw: Any) -> NodeFacts:
    """Facts parsed while the run was still collecting (preflight.live), when still valid; else parse now."""
    pre = getattr(raw, "_prebuilt", None)
    if pre is not None and pre[0] == raw.facts_key():
        return pre[1]
    return build_node_facts(raw)


def judge(bundle: Bundle, specs: list[CheckSpec] | None = None) -> tuple[RunReport, FleetFacts]:
    specs = all_checks() if specs is None else specs
    nodes = tuple(_facts_of(raw) for raw in bundle.nodes)
    fleet = FleetFacts(nodes=nodes, expect=dict(bundle.inventory.get("expect") or {}))
    per_node: dict[str, list[Finding]] = {n.name: [] for n in nodes}
    fleet_only: list[Finding] = []
    for spec in specs:
        if spec.scope == "node":
            for node in fleet.reachable:
                unmet = _needs_unmet(spec, node)
                if unmet is not None:
                    per_node[node.name].append(unmet)
                    continue
                ctx = CheckContext(spec=spec, fleet=fleet, node=node)
                per_node[node.name].extend(_guard(spec, spec.fn(node, ctx), node.name))
        else:
            ready = []
            for node in fleet.reachable:
                unmet = _needs_unmet(spec, node)
                if unmet is not None:
                    per_node[node.name].append(unmet)
                else:
                    ready.append(node)
            sub = FleetFacts(nodes=tuple(ready), expect=fleet.expect)
            ctx = CheckContext(spec=spec, fleet=sub)
            for f in _guard(spec, spec.fn(sub, ctx), None):
                (per_node[f.node] if f.node in per_node else fleet_only).append(f)
    reports = tuple(
        NodeReport(
            name=raw.name,
            address=raw.address,
            outcome=raw.outcome,
            message=raw.message,
            duration_s=raw.duration_s,
            findings=tuple(per_node[raw.name]),
        )
        for raw in bundle.nodes
    )
    meta = {
        "tool_version": __version__,
        "bundle_created": bundle.created,
        "bundle_label": bundle.label,
        "judged": time.time(),
        "checks": [s.id for s in specs],
        "inventory": bundle.inventory.get("path"),
    }
    return RunReport(nodes=reports, fleet_findings=tuple(fleet_only), meta=meta), fleet


def consistency(
    fleet: FleetFacts,
    ctx: CheckContext,
    key: str,
    values: dict[str, Any],
    *,
    label: str,
    hint: str,
    evidence: dict[str, tuple[str, ...]] | None = None,
    missing_status: Status = Status.SKIP,
) -> list[Finding]:
    """Shared logic of fleet consistency checks: pinned value if the inventory has one, else majority.

    Each reachable node gets one finding; a mismatch names the value → nodes table in `msg`.
    """
    out: list[Finding] = []
    evidence = evidence or {}
    maj = majority(values)
    groups: dict[Any, list[str]] = {}
    for name, v in values.items():
        groups.setdefault(v, []).append(name)
    table = "; ".join(f"{v if v is not None else 'unknown'} → {', '.join(sorted(ns))}" for v, ns in groups.items())
    known = sum(1 for v in values.values() if v is not None)
    for node in fleet.reachable:
        observed = values.get(node.name)
        pinned, source = ctx.expected(node, key)
        if pinned is not None:
            expected, exp_source = pinned, source
        elif maj is not None:
            expected = maj[0]
            exp_source = f"fleet majority ({maj[1]} of {known} nodes)"
        else:
            expected, exp_source = None, None
        if observed is None:
            reason = node.missing.get(key, f"{label} not reported")
            out.append(Finding(check=ctx.spec.id, node=node.name, status=missing_status, expected=expected,
                               expected_source=exp_source, msg=f"{label} unknown: {reason}"))
            continue
        if expected is None or str(observed) == str(expected):
            out.append(Finding(check=ctx.spec.id, node=node.name, status=Status.PASS, observed=observed,
                               expected=expected, expected_source=exp_source, msg=f"{label} {observed}",
                               evidence=evidence.get(node.name, ())))
        else:
            out.append(Finding(check=ctx.spec.id, node=node.name, status=Status.FAIL, observed=observed,
                               expected=expected, expected_source=exp_source,
                               msg=f"{label} {observed} differs from {expected} ({exp_source}); fleet: {table}",
                               evidence=evidence.get(node.name, ()), hint=hint))
    return out
