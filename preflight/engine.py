"""Judge a bundle: parse every node, run the selected checks, assemble the report.

Live runs and replays take the same path (`judge`), so a saved bundle reproduces the live
verdicts exactly. No I/O here: this is a pure function of the bundle and the check set.
"""

from __future__ import annotations

import dataclasses
import fnmatch
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

    def na(self, node: NodeFacts, msg: str, **kw: Any) -> Finding:
        """This check does not apply to this node, for the reason given (`skip`): never a gap in the evidence."""
        return Finding(check=self.spec.id, node=node.name, status=Status.SKIP, msg=msg, **kw)

    def unknown(self, node: NodeFacts, msg: str, **kw: Any) -> Finding:
        """This check applies but cannot judge this node (a fact missing, partial or unparseable): `error`."""
        kw.setdefault("hint", ACCEPT_HINT)
        return Finding(check=self.spec.id, node=node.name, status=Status.ERROR, msg=msg, **kw)

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


ACCEPT_HINT = ("Fix the probe (install the tool, give it time, run with the rights it needs); or, where this fact "
               "cannot be had by design, say so once: inventory `expect: {accept: {CHECK_OR_FACT: why}}` or "
               "`--accept CHECK_OR_FACT=why`.")


def _needs_unmet(spec: CheckSpec, node: NodeFacts) -> Finding | None:
    """A needed fact is absent: `skip` when it provably does not apply, else `error` (never a pass)."""
    for key in spec.needs:
        if getattr(node, key, None) is None:
            reason = node.missing.get(key, "not collected")
            if key in node.not_applicable:
                return Finding(check=spec.id, node=node.name, status=Status.SKIP, msg=f"does not apply: {reason}")
            return Finding(check=spec.id, node=node.name, status=Status.ERROR, msg=f"no {key} facts: {reason}",
                           hint=ACCEPT_HINT)
    return None


def _acceptance(spec: CheckSpec, node: NodeFacts) -> tuple[str, str] | None:
    """(why, who said so) when the operator accepted this check's gap on this node, by check id/glob or fact key."""
    accepted = node.expect.get("accept")
    if not isinstance(accepted, dict):
        return None
    for key, why in accepted.items():
        if fnmatch.fnmatchcase(spec.id, str(key)) or key in spec.needs or key == spec.group:
            return str(why), node.expect_sources.get(f"accept.{key}", node.expect_sources.get("accept", "inventory"))
    return None


def _apply_accept(spec: CheckSpec, node: NodeFacts | None, findings: list[Finding]) -> list[Finding]:
    """An `error` (could not judge) the operator accepted becomes `accepted`, saying who accepted it and why.

    Only gaps are accepted: a pass, warn or fail stays what it is, and so does a crashed check.
    """
    if node is None or not any(f.status == Status.ERROR for f in findings):
        return findings
    acc = _acceptance(spec, node)
    if acc is None:
        return findings
    why, who = acc
    return [dataclasses.replace(f, status=Status.ACCEPTED, hint=None, expected_source=who,
                                msg=f"accepted ({who}): {why}; not judged: {f.msg}")
            if f.status == Status.ERROR and not f.msg.startswith("check crashed") else f for f in findings]


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
    by_name = {n.name: n for n in nodes}
    per_node: dict[str, list[Finding]] = {n.name: [] for n in nodes}
    fleet_only: list[Finding] = []
    for spec in specs:
        produced: dict[str, list[Finding]] = {}
        if spec.scope == "node":
            for node in fleet.reachable:
                unmet = _needs_unmet(spec, node)
                if unmet is not None:
                    produced.setdefault(node.name, []).append(unmet)
                    continue
                ctx = CheckContext(spec=spec, fleet=fleet, node=node)
                produced.setdefault(node.name, []).extend(_guard(spec, spec.fn(node, ctx), node.name))
        else:
            ready = []
            for node in fleet.reachable:
                unmet = _needs_unmet(spec, node)
                if unmet is not None:
                    produced.setdefault(node.name, []).append(unmet)
                else:
                    ready.append(node)
            sub = FleetFacts(nodes=tuple(ready), expect=fleet.expect)
            ctx = CheckContext(spec=spec, fleet=sub)
            for f in _guard(spec, spec.fn(sub, ctx), None):
                if f.node in per_node:
                    produced.setdefault(f.node, []).append(f)
                else:
                    fleet_only.append(f)
        for name, found in produced.items():
            per_node[name].extend(_apply_accept(spec, by_name.get(name), found))
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
    not_applicable: dict[str, str] | None = None,
) -> list[Finding]:
    """Shared logic of fleet consistency checks: pinned value if the inventory has one, else majority.

    Each reachable node gets one finding; a mismatch names the value → nodes table in `msg`. A node
    without a value is `error` (unknown is never consistent) unless `not_applicable` gives the reason
    the value does not exist there (e.g. no HCA firmware on a node without IB ports): then `skip`.
    """
    not_applicable = not_applicable or {}
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
            if node.name in not_applicable:
                out.append(Finding(check=ctx.spec.id, node=node.name, status=Status.SKIP,
                                   msg=f"does not apply: {not_applicable[node.name]}"))
                continue
            reason = node.missing.get(key, f"{label} not reported")
            out.append(Finding(check=ctx.spec.id, node=node.name, status=Status.ERROR, expected=expected,
                               expected_source=exp_source, msg=f"{label} unknown: {reason}", hint=ACCEPT_HINT))
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
