"""A judged run plus a model → the plan, the launch commands of its picks, and what excluded nodes cost.

Pure: (report, facts, model, options) in, a `PlanResult` out. The console, JSON and TUI render it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from preflight.facts import FleetFacts
from preflight.plan.described import what_if
from preflight.plan.errors import PlanError
from preflight.plan.guidance import Hint, guidance
from preflight.plan.judged_fleet import fleet_shape
from preflight.plan.launch import LaunchCommands, launch_commands
from preflight.plan.models import ModelSpec
from preflight.plan.planner import Candidate, Plan, plan
from preflight.plan.shapes import FleetShape, PlanOptions
from preflight.results import RunReport


@dataclass(frozen=True)
class WhatIf:
    """A layout judged with the excluded nodes put back: why it is unsafe there and the safe alternative."""

    included: tuple[str, ...]
    candidate: Candidate
    safe_instead: Candidate | None  # the same TP/PP shape on the healthy nodes, when one is safe


@dataclass(frozen=True)
class PlanResult:
    plan: Plan
    launch: dict[str, tuple[LaunchCommands, ...]] = field(default_factory=dict)  # "latency"/"throughput" -> commands
    what_if: tuple[WhatIf, ...] = ()
    source: str = ""
    fleet: FleetShape | None = None  # what the plan was computed on (verification re-judges with it)
    guidance: tuple[Hint, ...] = ()  # when nothing is safe: the smallest changes that would fix it

    def to_dict(self) -> dict[str, Any]:
        doc = self.plan.to_dict()
        doc["source"] = self.source
        doc["launch"] = {k: [c.to_dict() for c in v] for k, v in self.launch.items()}
        doc["what_if"] = [{"included": list(w.included), "layout": w.candidate.label, "nodes": list(w.candidate.nodes_used),
                           "verdict": w.candidate.verdict,
                           "reasons": [r.text for r in w.candidate.reasons if r.severity == "unsafe"],
                           "safe_instead": w.safe_instead.label if w.safe_instead else None} for w in self.what_if]
        doc["guidance"] = [{"change": h.change, "result": h.result, "formula": h.formula} for h in self.guidance]
        return doc


def _what_if(report: RunReport, facts: FleetFacts, model: ModelSpec, opts: PlanOptions, healthy: Plan,
             source: str, *, per_node: int = 3, internode: tuple[float, str] | None = None) -> tuple[WhatIf, ...]:
    """Put each reachable excluded node back alone; keep layouts that are unsafe only because of it.

    Those are the layouts its exclusion makes safe to run; `safe_instead` is the same TP/PP/EP
    shape on the healthy nodes. At most `per_node` per node, the largest first.
    """
    reachable = {f.name for f in facts.reachable}
    safe_by_shape = {(c.tp, c.pp, c.ep): c for c in reversed(healthy.recommend_throughput)}
    out: list[WhatIf] = []
    for name, _why in healthy.excluded:
        if name not in reachable:
            continue
        try:
            with_it = plan(fleet_shape(report, facts, source=source, include=(name,), internode=internode), model, opts)
        except PlanError:
            continue
        found = []
        for c in with_it.candidates:
            unsafe = [r for r in c.reasons if r.severity == "unsafe"]
            if name in c.nodes_used and c.memory.verdict != "does-not-fit" and unsafe and all(
                    name in r.fact_source or name in r.text for r in unsafe):
                found.append(WhatIf((name,), c, safe_by_shape.get((c.tp, c.pp, c.ep))))
        found.sort(key=lambda w: (-(w.candidate.tp), -w.candidate.gpus))
        out.extend(found[:per_node])
    return tuple(out)


def _launch(p: Plan, model: ModelSpec, opts: PlanOptions) -> dict[str, tuple[LaunchCommands, ...]]:
    """Commands of each objective's pick; an objective whose pick is another's shares that entry (printed once)."""
    mla = model.attention == "mla"
    objectives = (opts.objective,) if opts.objective else ("latency", "throughput")
    out: dict[str, tuple[LaunchCommands, ...]] = {}
    for kind in objectives:
        picks = p.recommended(kind)
        if picks:
            out[kind] = launch_commands(picks[0], model.id, opts, mla=mla)
    return out


def plan_on(shape: FleetShape, model: ModelSpec, opts: PlanOptions, *, source: str,
            what_if: tuple[WhatIf, ...] = (), multinode_command: str | None = None) -> PlanResult:
    """The plan, its launch commands and guidance on a FleetShape, measured or described (one code path)."""
    p = plan(shape, model, opts)
    hints = guidance(shape, model, opts, p, **({"multinode_command": multinode_command} if multinode_command else {}))
    return PlanResult(p, _launch(p, model, opts), what_if, source, shape, hints)


def build_plan(report: RunReport, facts: FleetFacts, model: ModelSpec, opts: PlanOptions, *, source: str,
               internode: tuple[float, str] | None = None, without: Sequence[str] = (), plus: Sequence[str] = (),
               multinode_command: str | None = None) -> PlanResult:
    """Raises PlanError when no healthy node has GPUs. `internode`: measured multi-node busbw (GB/s, source).

    `without` / `plus` ("N:NODE") plan a what-if of the measured fleet: nodes taken out, copies added.
    """
    shape = fleet_shape(report, facts, source=source, internode=internode)
    ports = _active_ports(facts)
    shape = replace(shape, nodes=tuple(replace(n, ib_ports=ports.get(n.name)) for n in shape.nodes))
    if without or plus:
        shape = what_if(shape, without=without, plus=plus)
        source += "".join(f" without {n}" for n in without) + "".join(f" plus {x}" for x in plus)
    result = plan_on(shape, model, opts, source=source, multinode_command=multinode_command)
    if without or plus:
        return result
    return replace(result, what_if=_what_if(report, facts, model, opts, result.plan, source, internode=internode))


def _active_ports(facts: FleetFacts) -> dict[str, int]:
    """Node -> Active IB/RoCE ports: the count behind its summed link rate (the fabric estimate says it)."""
    counts = {n.name: sum(1 for p in n.ib or () if (p.state or "").lower() == "active") for n in facts.reachable}
    return {k: v for k, v in counts.items() if v}
