"""The plan: every (TP, PP, DP, EP) layout the healthy GPUs can hold, judged and ranked.

A pure function of (fleet facts, model, options). Layouts that break a rule stay in the
table with their reasons, so the user sees why TP=6 or TP=8-on-a-degraded-node is out.

Enumeration bound, with G = most GPUs on one node and N = healthy GPUs:
  TP ∈ 1..G, plus powers of two in (G, min(N, 2G)] (one cross-node example);
  PP ∈ powers of two ≤ N/TP, plus the node count;  DP ∈ powers of two ≤ N/(TP·PP), plus N/(TP·PP);
  EP ∈ {1, TP·DP} for MoE models (vLLM's --enable-expert-parallel makes EP = TP·DP), {1} for dense.
So at most (G + 1) × (log2 N + 2)² × 2 layouts (about 2,200 for 64 nodes of 8 GPUs).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from ..reference import gpu_spec_for
from .constraints import Reason, fleet_reasons, model_reasons
from .errors import PlanError
from .estimate import Estimate, decode_estimates
from .memory import GB, MemoryBreakdown, memory_per_gpu
from .models import ModelSpec
from .shapes import FleetShape, NodeShape, PlanOptions

__all__ = ["Candidate", "FleetShape", "NodeShape", "Placement", "Plan", "PlanOptions", "evaluate", "plan"]


@dataclass(frozen=True)
class Placement:
    """GPUs of one node that a layout uses (index order; TP groups are consecutive runs)."""

    node: str
    gpus: tuple[int, ...]

    @property
    def cuda_visible_devices(self) -> str:
        return ",".join(map(str, self.gpus))


@dataclass(frozen=True)
class Candidate:
    tp: int
    pp: int
    dp: int
    ep: int
    nodes_used: tuple[str, ...]
    placement: tuple[Placement, ...]
    memory: MemoryBreakdown
    reasons: tuple[Reason, ...]
    estimates: tuple[Estimate, ...]
    verdict: str  # safe | risky | unsafe

    @property
    def gpus(self) -> int:
        return self.tp * self.pp * self.dp

    @property
    def label(self) -> str:
        return f"TP{self.tp} PP{self.pp} DP{self.dp}" + (f" EP{self.ep}" if self.ep > 1 else "")

    def estimate(self, name: str) -> float | None:
        return next((e.value for e in self.estimates if e.name == name), None)


@dataclass(frozen=True)
class Plan:
    model: ModelSpec
    options: PlanOptions
    candidates: tuple[Candidate, ...]
    excluded: tuple[tuple[str, str], ...]
    recommend_latency: tuple[Candidate, ...]  # safe only, highest decode tok/s per sequence first
    recommend_throughput: tuple[Candidate, ...]  # safe only, most aggregate tok/s, then most sequences
    notes: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        def cand(c: Candidate) -> dict[str, Any]:
            d = asdict(c)
            d["label"], d["gpus"] = c.label, c.gpus
            d["placement"] = [{"node": p.node, "gpus": list(p.gpus), "cuda_visible_devices": p.cuda_visible_devices}
                              for p in c.placement]
            return d

        return {
            "model": {"id": self.model.id, "source": self.model.source, "params": self.model.params,
                      "active_params": self.model.active_params},
            "options": asdict(self.options),
            "excluded": [{"node": n, "why": w} for n, w in self.excluded],
            "candidates": [cand(c) for c in self.candidates],
            "recommend_latency": [c.label for c in self.recommend_latency],
            "recommend_throughput": [c.label for c in self.recommend_throughput],
            "notes": list(self.notes),
        }


def _powers_of_two(limit: int) -> list[int]:
    return [2**k for k in range(limit.bit_length()) if 2**k <= limit]


def _layouts(model: ModelSpec, nodes: tuple[NodeShape, ...]) -> list[tuple[int, int, int, int]]:
    g = max(n.gpus for n in nodes)
    total = sum(n.gpus for n in nodes)
    tps = list(range(1, g + 1)) + [p for p in _powers_of_two(min(total, 2 * g)) if p > g]
    out = []
    for tp in tps:
        if tp > total:
            continue
        for pp in sorted(set(_powers_of_two(total // tp)) | ({len(nodes)} if len(nodes) * tp <= total else set())):
            rest = total // (tp * pp)
            for dp in sorted(set(_powers_of_two(rest)) | {rest}):
                eps = [1] + ([tp * dp] if model.is_moe and tp * dp > 1 else [])
                out += [(tp, pp, dp, ep) for ep in eps]
    return out


def place(nodes: tuple[NodeShape, ...], tp: int, pp: int, dp: int) -> tuple[Placement, ...] | None:
    """Pack PP×DP TP groups onto nodes, NVLink-capable nodes first; None if they do not fit.

    A TP group stays on one node when any node has TP GPUs; otherwise groups fill whole nodes
    in order (TP across nodes, which the constraints then call unsafe).
    """
    groups = pp * dp
    order = sorted(nodes, key=lambda n: (n.nvlink_domain < tp, n.gpus < tp))
    used: dict[str, list[int]] = {}
    if any(n.gpus >= tp for n in nodes):
        for n in order:
            # a TP group takes GPUs of the node's clean NVLink clique first (gpu_order); groups beyond the
            # clique (or on a PCIe-only node) still fit on the rest, and the NVLink constraint judges them
            cap = n.gpus // tp if tp == 1 or n.nvlink_domain <= 1 else max(n.nvlink_domain // tp, 1 if n.gpus >= tp else 0)
            take = min(cap, groups)
            if take:
                used[n.name] = list(n.placement_order()[: take * tp])
                groups -= take
            if not groups:
                break
        if groups:
            return None
    else:
        need = tp * groups
        for n in order:
            take = min(n.gpus, need)
            used[n.name] = list(n.placement_order()[:take])
            need -= take
            if not need:
                break
        if need:
            return None
    return tuple(Placement(name, tuple(g)) for name, g in used.items())


def _hbm(node: NodeShape) -> tuple[float | None, str]:
    if node.hbm_gbps:
        return node.hbm_gbps, f"{node.name}: {node.gpu_model}"
    spec = gpu_spec_for(node.gpu_model)
    if spec and spec.get("hbm_bw_tbps"):
        return float(spec["hbm_bw_tbps"]) * 1000, f"gpus.yaml {spec['id']}"
    return None, "unknown"


def _memory_reason(mem: MemoryBreakdown, node: NodeShape) -> Reason | None:
    fact = f"{node.name}: {node.gpu_memory_mib} MiB per GPU" + (f" ({node.facts_source})" if node.facts_source else "")
    if mem.verdict == "does-not-fit":
        return Reason("unsafe", "memory.fit", f"needs {mem.total / GB:.1f} GB per GPU, {mem.usable / GB:.1f} GB usable; "
                      f"{mem.max_seqs} full-context sequences would fit", fact)
    if mem.verdict == "tight":
        return Reason("risky", "memory.tight", f"headroom {mem.headroom / GB:.1f} GB is under 10% of the "
                      f"{mem.usable / GB:.1f} GB usable", fact)
    return None


def evaluate(
    fleet: FleetShape, model: ModelSpec, opts: PlanOptions, *, tp: int, pp: int = 1, dp: int = 1, ep: int = 1,
    nodes: tuple[NodeShape, ...] | None = None,
) -> Candidate | None:
    """Judge one layout on the fleet (None when the GPUs cannot hold it)."""
    pool = nodes if nodes is not None else fleet.nodes
    placement = place(pool, tp, pp, dp)
    if placement is None:
        return None
    by_name = {n.name: n for n in pool}
    used = tuple(by_name[p.node] for p in placement)
    smallest = min(used, key=lambda n: n.gpu_memory_mib)  # vLLM sizes KV by the smallest worker
    mem = memory_per_gpu(model, tp=tp, pp=pp, dp=dp, ep=ep, gpu_memory_bytes=smallest.gpu_memory_bytes, opts=opts)
    reasons = model_reasons(model, tp=tp, pp=pp, dp=dp, ep=ep, opts=opts)
    reasons += fleet_reasons(model, tp=tp, pp=pp, dp=dp, ep=ep, nodes=used, fleet=fleet, opts=opts)
    mr = _memory_reason(mem, smallest)
    if mr:
        reasons.append(mr)

    hbm, hbm_src = min((_hbm(n) for n in used), key=lambda x: x[0] or math.inf)
    slow = min(used, key=lambda n: n.intra_busbw_gbps or 0.0)
    if len(used) > 1:
        ib = min((n.ib_gbps or 0.0) for n in used)
        p2p = fleet.internode_busbw_gbps or (ib / 8 if ib else None)
        p2p_src = fleet.internode_source or (f"IB/RoCE {ib:g} Gb/s / 8" if ib else "")
    else:
        p2p, p2p_src = slow.intra_busbw_gbps, slow.intra_busbw_source or slow.name
    ests = decode_estimates(
        model, mem, tp=tp, pp=pp, dp=dp, seqs=opts.seqs, hbm_gbps=hbm, hbm_source=hbm_src,
        busbw_gbps=slow.intra_busbw_gbps, busbw_source=slow.intra_busbw_source or f"{slow.name} all-reduce",
        latency_us=max((n.small_msg_latency_us or 0.0) for n in used) or None, p2p_gbps=p2p, p2p_source=p2p_src,
    )
    sev = {r.severity for r in reasons}
    verdict = "unsafe" if "unsafe" in sev else ("risky" if "risky" in sev else "safe")
    return Candidate(tp, pp, dp, ep, tuple(p.node for p in placement), placement, mem, tuple(reasons), ests, verdict)


def plan(fleet: FleetShape, model: ModelSpec, opts: PlanOptions) -> Plan:
    """Every layout the healthy GPUs can hold, each judged, plus ranked safe recommendations."""
    nodes = fleet.nodes[: opts.max_nodes] if opts.max_nodes else fleet.nodes
    if not nodes:
        raise PlanError("no healthy nodes to plan on" + (f" ({len(fleet.excluded)} excluded)" if fleet.excluded else ""))
    cands = []
    for tp, pp, dp, ep in _layouts(model, nodes):
        c = evaluate(fleet, model, opts, tp=tp, pp=pp, dp=dp, ep=ep, nodes=nodes)
        if c is not None:
            cands.append(c)
    safe = [c for c in cands if c.verdict == "safe"]

    def per_seq(c: Candidate) -> float:
        return c.estimate("decode_tokens_per_s_per_seq") or 0.0

    def agg(c: Candidate) -> float:
        return c.estimate("decode_tokens_per_s_aggregate") or 0.0

    latency = sorted(safe, key=lambda c: (-per_seq(c), c.gpus, c.pp))
    throughput = sorted(safe, key=lambda c: (-agg(c), -c.memory.max_seqs, c.gpus))
    notes = (
        "estimates are memory-bandwidth bound (no compute roofline) and budget every sequence at full context",
        f"runtime reserve = {opts.overhead_fraction:g} × GPU memory + activations (planner-notes §1.4)",
        "PP weights per stage follow vLLM get_pp_indices; the heaviest stage is reported",
    )
    return Plan(model, opts, tuple(cands), fleet.excluded, tuple(latency), tuple(throughput), notes)
