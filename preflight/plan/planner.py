"""The plan: every (TP, PP, DP, EP) layout the healthy GPUs can hold, judged and ranked.

A pure function of (fleet facts, model, options). Layouts that break a rule stay in the
table with their reasons, so the user sees why TP=6 or TP=8-on-a-degraded-node is out.

Enumeration bound, with G = most GPUs on one node and N = healthy GPUs:
  TP ∈ 1..G, plus powers of two in (G, min(N, max(2G, D))] (one cross-node example, or up to the
  largest healthy multi-node NVLink domain D);
  PP ∈ powers of two ≤ N/TP, plus the node count, those above the model's layers cut to the first;  DP ∈ powers of two ≤ N/(TP·PP), plus N/(TP·PP);
  EP ∈ {1, TP·DP} for MoE models (vLLM's --enable-expert-parallel makes EP = TP·DP), {1} for dense.
So at most (G + 1) × (log2 N + 2)² × 2 layouts (about 2,200 for 64 nodes of 8 GPUs).
"""

from __future__ import annotations

import contextlib
import gc
import math
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from .constraints import Reason, fleet_reasons, model_reasons
from .errors import PlanError
from .estimate import Estimate, decode_estimates
from .fabric import largest_domain_gpus
from .memory import GB, MemoryBreakdown, memory_per_gpu
from .models import ModelSpec
from .placement import Placement, Pool, place
from .rates import rates_for
from .shapes import FleetShape, NodeShape, PlanOptions

__all__ = ["Candidate", "FleetShape", "NodeShape", "Placement", "Plan", "PlanOptions", "Pool", "evaluate", "place", "plan"]



@dataclass(frozen=True)
class Candidate:
    tp: int
    pp: int
    dp: int
    ep: int
    nodes_used: tuple[str, ...]
    # the placement, or the function that builds it on first read (one Placement per node used: a layout
    # over 1,000 nodes reads it only when shown or launched)
    placement_or_later: tuple[Placement, ...] | Callable[[], tuple[Placement, ...]] = field(repr=False, compare=False)
    memory: MemoryBreakdown
    reasons: tuple[Reason, ...]
    # the estimates, or the function that works them out on first read: an unsafe layout's are only read
    # when it is shown (`plan --all`, JSON), so a 1,000-node plan does not estimate the hundreds it rules out
    estimates_or_later: tuple[Estimate, ...] | Callable[[], tuple[Estimate, ...]] = field(repr=False, compare=False)
    verdict: str  # safe | risky | unsafe

    @property
    def placement(self) -> tuple[Placement, ...]:
        got = self.placement_or_later
        if callable(got):
            got = got()
            object.__setattr__(self, "placement_or_later", got)
        return got

    @property
    def estimates(self) -> tuple[Estimate, ...]:
        got = self.estimates_or_later
        if callable(got):
            got = got()
            object.__setattr__(self, "estimates_or_later", got)
        return got

    @property
    def gpus(self) -> int:
        return self.tp * self.pp * self.dp

    @property
    def label(self) -> str:
        return f"TP{self.tp} PP{self.pp} DP{self.dp}" + (f" EP{self.ep}" if self.ep > 1 else "")

    def estimate(self, name: str) -> float | None:
        return next((e.value for e in self.estimates if e.name == name), None)

    @property
    def evidence(self) -> str:
        """estimated when a verdict rests on a link-rate estimate of the fabric, else measured."""
        return "estimated" if any(r.code == "fabric.estimated" for r in self.reasons) else "measured"

    @property
    def verdict_label(self) -> str:
        """'safe (estimated)' when safe only on the fabric estimate; otherwise the verdict."""
        return f"{self.verdict} (estimated)" if self.verdict == "safe" and self.evidence == "estimated" else self.verdict

    @property
    def capacity(self) -> int:
        """Full-context sequences that fit, all DP replicas together."""
        return self.memory.max_seqs

    def throughput(self) -> float:
        """Aggregate decode tok/s the throughput objective ranks by: at capacity when estimated so, else at --seqs."""
        return self.estimate("decode_tokens_per_s_at_capacity") or self.estimate("decode_tokens_per_s_aggregate") or 0.0


@dataclass(frozen=True)
class Plan:
    model: ModelSpec
    options: PlanOptions
    candidates: tuple[Candidate, ...]
    excluded: tuple[tuple[str, str], ...]
    recommend_latency: tuple[Candidate, ...]  # safe only, highest decode tok/s per sequence first
    recommend_throughput: tuple[Candidate, ...]  # safe only, most aggregate tok/s, then most sequences
    notes: tuple[str, ...] = field(default=())
    recommend_capacity: tuple[Candidate, ...] = ()  # safe only, most full-context sequences first
    best_risky: tuple[Candidate, ...] = ()  # risky layouts, best throughput first (shown when nothing is safe)
    described: bool = False  # planned on a described fleet (--fleet), not a measured one

    def recommended(self, objective: str) -> tuple[Candidate, ...]:
        return {"latency": self.recommend_latency, "throughput": self.recommend_throughput,
                "capacity": self.recommend_capacity}[objective]

    def to_dict(self) -> dict[str, Any]:
        def cand(c: Candidate) -> dict[str, Any]:
            d: dict[str, Any] = {"tp": c.tp, "pp": c.pp, "dp": c.dp, "ep": c.ep, "nodes_used": list(c.nodes_used),
                                 "placement": None, "memory": c.memory.to_dict(), "reasons": [asdict(r) for r in c.reasons],
                                 "estimates": [e.to_dict() for e in c.estimates], "verdict": c.verdict}
            d["label"], d["gpus"], d["verdict_label"], d["capacity"] = c.label, c.gpus, c.verdict_label, c.capacity
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
            "recommend_capacity": [c.label for c in self.recommend_capacity],
            "objective": self.options.objective or None,
            "described_fleet": self.described,
            "notes": list(self.notes),
        }


def _powers_of_two(limit: int) -> list[int]:
    return [2**k for k in range(limit.bit_length()) if 2**k <= limit]


def _layouts(model: ModelSpec, nodes: tuple[NodeShape, ...], *, domain_gpus: int = 0) -> list[tuple[int, int, int, int]]:
    g = max(n.gpus for n in nodes)
    total = sum(n.gpus for n in nodes)
    top = min(total, max(2 * g, domain_gpus))  # TP across nodes: one example, or up to a multi-node NVLink domain
    tps = list(range(1, g + 1)) + [p for p in _powers_of_two(top) if p > g]
    out = []
    for tp in tps:
        if tp > total:
            continue
        pps = sorted(set(_powers_of_two(total // tp)) | ({len(nodes)} if len(nodes) * tp <= total else set()))
        beyond = [pp for pp in pps if pp > model.layers]
        pps = [pp for pp in pps if pp <= model.layers] + beyond[:1]  # one PP > layers shows the rule, no more
        for pp in pps:
            rest = total // (tp * pp)
            for dp in sorted(set(_powers_of_two(rest)) | {rest}):
                eps = [1] + ([tp * dp] if model.is_moe and tp * dp > 1 else [])
                out += [(tp, pp, dp, ep) for ep in eps]
    return out



def _memory_reason(mem: MemoryBreakdown, node: NodeShape) -> Reason | None:
    fact = f"{node.name}: {node.gpu_memory_mib} MiB per GPU" + (f" ({node.facts_source})" if node.facts_source else "")
    if mem.verdict == "does-not-fit":
        return Reason("unsafe", "memory.fit", f"needs {mem.total / GB:.1f} GB per GPU, {mem.usable / GB:.1f} GB usable; "
                      f"{mem.max_seqs} full-context sequences would fit", fact)
    if mem.verdict == "tight":
        return Reason("risky", "memory.tight", f"headroom {mem.headroom / GB:.1f} GB is under 10% of the "
                      f"{mem.usable / GB:.1f} GB usable", fact)
    return None



def _estimates(fleet: FleetShape, model: ModelSpec, mem: MemoryBreakdown, used: tuple[NodeShape, ...], opts: PlanOptions,
               *, tp: int, pp: int, dp: int, multinode: bool, seqs: int, ep: int = 1,
               prefill: bool = True, names: tuple[str, ...] = (), pool: Pool | None = None) -> tuple[Estimate, ...]:
    """`used` holds one node of each kind the layout uses (what the rates depend on); `names` every node
    it uses (whether it stays inside one NVLink domain depends on all of them)."""
    in_domain = False
    if multinode and fleet.nvlink_domains:
        members = set(names) or {n.name for n in used}
        in_domain = any(d.healthy and members <= set(d.nodes) for d in fleet.nvlink_domains)
    if pool is not None:
        rates = pool.rates(fleet, used, opts.weight_dtype, multinode=multinode, in_domain=in_domain)
    else:
        rates = rates_for(fleet, used, opts.weight_dtype, multinode=multinode, in_domain=in_domain)
    hbm, hbm_src, slow, p2p, p2p_src, tflops, tflops_src, a2a, a2a_src, latency = rates
    return decode_estimates(
        model, mem, tp=tp, pp=pp, dp=dp, seqs=seqs, hbm_gbps=hbm, hbm_source=hbm_src,
        busbw_gbps=slow.intra_busbw_gbps, busbw_source=slow.intra_busbw_source or f"{slow.name} all-reduce",
        latency_us=latency, p2p_gbps=p2p, p2p_source=p2p_src,
        ep=ep, a2a_gbps=a2a, a2a_source=a2a_src, tflops=tflops, tflops_source=tflops_src,
        prompt_tokens=opts.context // 2 if opts.context and prefill else None,
    )


def _at_capacity(fleet: FleetShape, model: ModelSpec, mem: MemoryBreakdown, used: tuple[NodeShape, ...],
                 opts: PlanOptions, *, tp: int, pp: int, dp: int, ep: int, names: tuple[str, ...],
                 pool: Pool | None = None) -> Estimate | None:
    """Aggregate decode tok/s with the layout full (its own capacity), for throughput without --seqs."""
    cap = mem.max_seqs
    if cap <= 0:
        return None
    full = pool.with_seqs(opts, cap) if pool is not None else replace(opts, seqs=cap)
    if pp == 1:  # one stage: only the KV part changes with the sequence count, no second memory pass needed
        per_rep = math.ceil(cap / dp)
        mem_full = replace(mem, seqs_per_replica=per_rep, kv=mem.kv_per_seq * per_rep)
    else:  # the heaviest stage may change with the sequence count: size it again
        smallest = min(used, key=lambda n: n.gpu_memory_mib)
        mem_full = memory_per_gpu(model, tp=tp, pp=pp, dp=dp, ep=ep, gpu_memory_bytes=smallest.gpu_memory_bytes,
                                  opts=full)
    # only the aggregate decode rate is read here: the prefill/TTFT estimates (one prompt) are not sized again
    ests = _estimates(fleet, model, mem_full, used, full, tp=tp, pp=pp, dp=dp, multinode=len(names) > 1, seqs=cap,
                      ep=ep, prefill=False, names=names, pool=pool)
    agg = next((e for e in ests if e.name == "decode_tokens_per_s_aggregate"), None)
    if agg is None or agg.value is None:
        return None
    return Estimate("decode_tokens_per_s_at_capacity", agg.value, "tok/s", lambda: f"at capacity ({cap} sequences): {agg.formula}")


def evaluate(
    fleet: FleetShape, model: ModelSpec, opts: PlanOptions, *, tp: int, pp: int = 1, dp: int = 1, ep: int = 1,
    nodes: tuple[NodeShape, ...] | None = None, pool: Pool | None = None,
) -> Candidate | None:
    """Judge one layout on the fleet (None when the GPUs cannot hold it)."""
    pool = pool or Pool(nodes if nodes is not None else fleet.nodes)
    got = pool.place_later(tp, pp, dp)
    if got is None:
        return None
    placement, names, used = got
    smallest = min(used, key=lambda n: n.gpu_memory_mib)  # vLLM sizes KV by the smallest worker
    mem = memory_per_gpu(model, tp=tp, pp=pp, dp=dp, ep=ep, gpu_memory_bytes=smallest.gpu_memory_bytes, opts=opts)
    reasons = model_reasons(model, tp=tp, pp=pp, dp=dp, ep=ep, opts=opts, memo=pool.model_memo(model, opts))
    reasons += fleet_reasons(model, tp=tp, pp=pp, dp=dp, ep=ep, nodes=used, fleet=fleet, opts=opts, names=names,
                             memo=pool.reasons_memo(fleet))
    mr = _memory_reason(mem, smallest)
    if mr:
        reasons.append(mr)
    sev = {r.severity for r in reasons}
    verdict = "unsafe" if "unsafe" in sev else ("risky" if "risky" in sev else "safe")

    def estimates() -> tuple[Estimate, ...]:
        return _estimates(fleet, model, mem, used, opts, tp=tp, pp=pp, dp=dp, multinode=len(names) > 1,
                          seqs=opts.seqs, ep=ep, names=names, pool=pool)

    if verdict == "unsafe":  # ranked by nothing: estimated when shown
        return Candidate(tp, pp, dp, ep, names, placement, mem, tuple(reasons), estimates, verdict)
    ests = estimates()
    if not opts.seqs_given:
        extra = _at_capacity(fleet, model, mem, used, opts, tp=tp, pp=pp, dp=dp, ep=ep, names=names, pool=pool)
        ests = ests + ((extra,) if extra else ())
    return Candidate(tp, pp, dp, ep, names, placement, mem, tuple(reasons), ests, verdict)


def rank(cands: list[Candidate]) -> tuple[list[Candidate], list[Candidate], list[Candidate]]:
    """(latency, throughput, capacity) orders of these candidates.

    Latency: decode tok/s per sequence. Throughput: aggregate decode tok/s at --seqs, or at each
    layout's own capacity when --seqs was not given; then capacity. Capacity: full-context sequences.
    """
    def per_seq(c: Candidate) -> float:
        return c.estimate("decode_tokens_per_s_per_seq") or 0.0

    latency = sorted(cands, key=lambda c: (-per_seq(c), c.gpus, c.pp))
    throughput = sorted(cands, key=lambda c: (-c.throughput(), -c.capacity, c.gpus))
    capacity = sorted(cands, key=lambda c: (-c.capacity, -c.throughput(), c.gpus))
    return latency, throughput, capacity


@contextlib.contextmanager
def _collections_paused() -> Iterator[None]:
    """No automatic garbage collection while a plan is built.

    A plan allocates ~100 small objects per layout, all of which it keeps or frees by reference count
    (no cycles), so the collector finds nothing; but with a large heap (a judged 1,000-node run) its
    older-generation passes cost more than the plan itself (1,000 nodes, DeepSeek-V3: ~120 ms with, ~65
    without; docs/benchmarks.md). Collection resumes after; what the plan kept is scanned then, once.
    """
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def plan(fleet: FleetShape, model: ModelSpec, opts: PlanOptions) -> Plan:
    """Every layout the healthy GPUs can hold, each judged, plus ranked safe recommendations."""
    with _collections_paused():
        return _plan(fleet, model, opts)


def _plan(fleet: FleetShape, model: ModelSpec, opts: PlanOptions) -> Plan:
    nodes = fleet.nodes[: opts.max_nodes] if opts.max_nodes else fleet.nodes
    if not nodes:
        raise PlanError("no healthy nodes to plan on" + (f" ({len(fleet.excluded)} excluded)" if fleet.excluded else ""))
    pool = Pool(nodes)
    cands = []
    for tp, pp, dp, ep in _layouts(model, nodes, domain_gpus=largest_domain_gpus(fleet)):
        c = evaluate(fleet, model, opts, tp=tp, pp=pp, dp=dp, ep=ep, pool=pool)
        if c is not None:
            cands.append(c)
    latency, throughput, capacity = rank([c for c in cands if c.verdict == "safe"])
    risky = rank([c for c in cands if c.verdict == "risky"])[1]
    at = f"at --seqs {opts.seqs}" if opts.seqs_given else "at each layout's own capacity (no --seqs given)"
    described = all(n.described for n in nodes)
    notes = (
        "estimates are memory-bandwidth bound (no compute roofline) and budget every sequence at full context",
        f"runtime reserve = {opts.overhead_fraction:g} × GPU memory + activations (planner-notes §1.4)",
        "PP weights per stage follow vLLM get_pp_indices; the heaviest stage is reported",
        f"throughput ranks by aggregate decode tok/s {at}",
    ) + (("described fleet, not measured: GPU facts from gpus.yaml, fabric from --fleet",) if described else ())
    return Plan(model, opts, tuple(cands), fleet.excluded, tuple(latency), tuple(throughput), notes,
                tuple(capacity), tuple(risky), described)
