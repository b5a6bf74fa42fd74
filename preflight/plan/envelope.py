"""The parallelism envelope: the answer on the first screen, before any plan is asked for.

Healthy nodes, the largest clean NVLink domain (so TP <= N), what the inter-node fabric is known
by (measured > estimated > none) and so whether PP, DP and EP may cross nodes; with a model, the
top safe layouts. Pure: computed from `judged_fleet.fleet_shape` and `planner.plan`, presented by
report/console.py and the TUI's fleet screen.

FleetShape is read defensively (getattr with defaults): its multi-node NVLink domains and fabric
evidence fields are optional, so the envelope reads a shape with or without them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from preflight.facts import FleetFacts
from preflight.plan.constraints import MIN_FABRIC_GBITS
from preflight.plan.errors import PlanError
from preflight.plan.judged_fleet import fleet_shape
from preflight.plan.models import ModelSpec, load_model
from preflight.plan.planner import Candidate, plan
from preflight.plan.shapes import FleetShape, PlanOptions
from preflight.results import RunReport

EVIDENCE = ("measured", "estimated", "none")
TOP_LAYOUTS = 3


@dataclass(frozen=True)
class Crossing:
    """May this kind of parallelism span nodes: yes | estimated | no | n/a, and why in a few words."""

    axis: str  # PP | DP | EP | TP
    verdict: str
    why: str


@dataclass(frozen=True)
class LayoutLine:
    label: str
    verdict: str
    gpus: int
    nodes: int
    max_seqs: int
    tokens_per_s: float | None  # aggregate decode tok/s estimate
    note: str = ""  # e.g. the first risk of a risky layout


@dataclass(frozen=True)
class Envelope:
    nodes: int  # judged nodes
    healthy_nodes: int
    healthy_gpus: int
    excluded: tuple[tuple[str, str], ...]
    tp_max: int  # largest clean NVLink domain among the healthy nodes (GPUs): TP <= tp_max
    tp_where: str  # the node(s) holding it
    tp_spans_nodes: bool  # the domain is a multi-node NVLink domain (NVL72)
    tp_min: int  # the smallest healthy node's clean domain: one TP for every node stays <= this
    fabric: str  # measured | estimated | none | n/a (one healthy node)
    fabric_detail: str
    crossings: tuple[Crossing, ...]
    model: str | None = None
    layouts: tuple[LayoutLine, ...] = ()
    model_note: str = ""  # why no layout is listed (model not found, nothing safe, ...)

    def crossing(self, axis: str) -> Crossing | None:
        return next((c for c in self.crossings if c.axis == axis), None)


def _domains(shape: FleetShape) -> list[tuple[int, tuple[str, ...]]]:
    """(GPUs, member nodes) of every healthy multi-node NVLink domain (absent field: none)."""
    healthy = {n.name: n for n in shape.nodes}
    out = []
    for d in getattr(shape, "nvlink_domains", ()) or ():
        if not getattr(d, "healthy", True):
            continue
        members = tuple(m for m in getattr(d, "nodes", ()) or () if m in healthy)
        gpus = sum(healthy[m].gpus for m in members) if members else int(getattr(d, "gpus", 0) or 0)
        if len(members) > 1 and gpus > 0:
            out.append((min(gpus, int(getattr(d, "gpus", gpus) or gpus)), members))
    return out


def _nvlink(shape: FleetShape) -> tuple[int, str, bool, int]:
    """(largest clean domain, where, spans nodes, smallest node domain)."""
    if not shape.nodes:
        return 0, "no healthy node", False, 0
    per_node = [(max(1, n.nvlink_domain), n.name) for n in shape.nodes]
    best, where = max(per_node, key=lambda dw: (dw[0], [-ord(c) for c in dw[1]]))
    same = [name for dom, name in per_node if dom == best]
    where = same[0] if len(same) == 1 else f"{same[0]} and {len(same) - 1} more"
    small = min(dom for dom, _ in per_node)
    spans = False
    for gpus, members in _domains(shape):
        if gpus > best:
            best, where, spans = gpus, f"{members[0]}…{members[-1]} ({len(members)} nodes)", True
    return best, where, spans, small


def _fabric(shape: FleetShape) -> tuple[str, str]:
    """measured > estimated > none, with what it rests on."""
    if len(shape.nodes) <= 1:
        return "n/a", "one healthy node: nothing crosses nodes"
    level = getattr(shape, "fabric_evidence", None) or getattr(shape, "internode_evidence", None)
    busbw = getattr(shape, "internode_busbw_gbps", None)
    source = getattr(shape, "internode_source", None)
    if busbw is not None and level in (None, "measured"):
        return "measured", f"all-reduce busbw {busbw:g} GB/s ({source or 'multi-node nccl-tests'})"
    rates = [n.ib_gbps for n in shape.nodes]
    if level == "estimated" or (level is None and all(r is not None and r >= MIN_FABRIC_GBITS for r in rates)):
        est = getattr(shape, "internode_estimate_gbps", None)
        low = min((r or 0.0) for r in rates)
        what = f"≈{est:g} GB/s " if isinstance(est, (int, float)) else ""
        return "estimated", f"{what}link rates only: ≥{low:g} Gb/s IB/RoCE per node"
    slow = min(shape.nodes, key=lambda n: n.ib_gbps or 0.0)
    if not slow.ib_gbps:
        return "none", f"no active IB/RoCE port on {slow.name}"
    return "none", f"{slow.name}: {slow.ib_gbps:g} Gb/s IB/RoCE (< {MIN_FABRIC_GBITS:g} Gb/s)"


def _crossings(fabric: str, tp_spans: bool) -> tuple[Crossing, ...]:
    if fabric == "n/a":
        return tuple(Crossing(a, "n/a", "one node") for a in ("PP", "DP", "EP"))
    word = {"measured": "yes", "estimated": "estimated", "none": "no"}[fabric]
    why = {"measured": "fabric measured", "estimated": "link-rate estimate", "none": "fabric unknown or slow"}[fabric]
    ep_word = "yes" if fabric == "measured" or tp_spans else ("risky" if fabric == "estimated" else "no")
    ep_why = "inside the NVLink domain" if tp_spans else ("all-to-all needs a measured fabric" if ep_word == "risky" else why)
    return (Crossing("PP", word, why), Crossing("DP", word, why + "; replicas inside one node need none"),
            Crossing("EP", ep_word, ep_why))


def _line(c: Candidate) -> LayoutLine:
    risks = [r.text for r in c.reasons if r.severity in ("unsafe", "risky")]
    return LayoutLine(c.label, c.verdict, c.gpus, len(set(c.nodes_used)), c.memory.max_seqs,
                      c.estimate("decode_tokens_per_s_aggregate"), risks[0] if risks and c.verdict != "safe" else "")


def top_layouts(cands: Sequence[Candidate], latency: Sequence[Candidate], throughput: Sequence[Candidate],
                limit: int = TOP_LAYOUTS) -> tuple[LayoutLine, ...]:
    """The latency pick, then the throughput picks, each once; no safe one: the best risky one."""
    seen: dict[int, Candidate] = {}
    for c in (*latency[:1], *throughput):
        seen.setdefault(id(c), c)
        if len(seen) >= limit:
            break
    if not seen:
        risky = [c for c in cands if c.verdict == "risky" and c.memory.verdict != "does-not-fit"]
        risky.sort(key=lambda c: (-(c.estimate("decode_tokens_per_s_aggregate") or 0.0), c.gpus))
        return tuple(_line(c) for c in risky[:1])
    return tuple(_line(c) for c in seen.values())


def _model_lines(shape: FleetShape, model: ModelSpec | str, opts: PlanOptions) -> tuple[str, tuple[LayoutLine, ...], str]:
    try:
        spec = load_model(model) if isinstance(model, str) else model
    except PlanError as exc:
        return str(model), (), str(exc)
    if not shape.nodes:
        return spec.id, (), "no healthy node to plan on"
    try:
        p = plan(shape, spec, opts)
    except PlanError as exc:
        return spec.id, (), str(exc)
    lines = top_layouts(p.candidates, p.recommend_latency, p.recommend_throughput)
    if p.recommend_throughput:
        note = ""
    elif lines:
        note = "no safe layout: the best risky one"
    elif all(c.memory.verdict == "does-not-fit" for c in p.candidates):
        note = f"no layout fits in memory on {shape.total_gpus} GPUs at context {opts.context}"
    else:
        note = "no safe layout"
    return spec.id, lines, note


def envelope(report: RunReport, facts: FleetFacts, model: ModelSpec | str | None = None, *,
             opts: PlanOptions | None = None, source: str = "", **shape_args: Any) -> Envelope:
    """The envelope of a judged run; `model` (a ModelSpec, catalog id or config.json) adds its top safe layouts.

    `shape_args` go to `fleet_shape` (e.g. `internode=(busbw, source)`).
    """
    shape = fleet_shape(report, facts, source=source, **shape_args)
    tp_max, where, spans, small = _nvlink(shape)
    fabric, detail = _fabric(shape)
    env = Envelope(
        nodes=len(report.nodes), healthy_nodes=len(shape.nodes), healthy_gpus=shape.total_gpus,
        excluded=tuple(shape.excluded), tp_max=tp_max, tp_where=where, tp_spans_nodes=spans, tp_min=small,
        fabric=fabric, fabric_detail=detail, crossings=_crossings(fabric, spans),
    )
    if model is None:
        return env
    name, lines, note = _model_lines(shape, model, opts or PlanOptions())
    return Envelope(**{**env.__dict__, "model": name, "layouts": lines, "model_note": note})
