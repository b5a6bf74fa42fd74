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

import bisect
import contextlib
import gc
import itertools
import math
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from .constraints import Reason, fleet_reasons, model_reasons, spec_for
from .errors import PlanError
from .estimate import Estimate, decode_estimates, peak_tflops
from .fabric import fabric_evidence, largest_domain_gpus
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


def _signature(n: NodeShape) -> tuple[object, ...]:
    """Everything but the name a judgement reads: nodes alike are judged once."""
    return (n.gpus, n.gpu_model, n.gpu_memory_mib, n.nvlink_domain, n.hbm_gbps, n.intra_busbw_gbps,
            n.small_msg_latency_us, n.ib_gbps, n.ib_ports, n.driver, n.cuda, n.nccl, n.described)


@dataclass
class _Order:
    """The nodes in the order TP groups of one size take them, with running capacity for bisecting."""

    nodes: tuple[NodeShape, ...]
    names: tuple[str, ...]
    cum: list[int]  # cumulative units (TP groups, or GPUs when no node holds a group) through node i
    caps: list[int]  # units node i holds
    per_group: int  # GPUs per unit
    firsts: tuple[int, ...]  # index of the first node of each kind, in order
    pool: Pool
    full: list[Placement] = field(default_factory=list)  # node i's placement when filled, built as layouts reach it

    def filled(self, k: int) -> list[Placement]:
        """The first k nodes' placements when filled (built once, on first need: most layouts use few nodes)."""
        for i in range(len(self.full), k):
            self.full.append(self.pool.placement(self.nodes[i], self.caps[i] * self.per_group))
        return self.full[:k]


class _Later:
    """A placement built on first call and kept: shared by the layouts that place as many TP groups."""

    __slots__ = ("_args", "_got")

    def __init__(self, pool: Pool, order: _Order, need: int, k: int) -> None:
        self._args: tuple[Pool, _Order, int, int] | None = (pool, order, need, k)
        self._got: tuple[Placement, ...] = ()

    def __call__(self) -> tuple[Placement, ...]:
        if self._args is not None:
            pool, order, need, k = self._args
            self._got, self._args = pool._place(order, need, k), None
        return self._got


class Pool:
    """Nodes sorted once per TP size; a layout's placement is a prefix of that order (bisected, not rebuilt).

    Keeps planning over a 1,000-node fleet linear in the layouts, not in layouts × nodes: the order for
    a TP size is worked out per kind of node (nodes alike sort alike), and a node filled with the same
    number of GPUs under two TP sizes shares one Placement.
    """

    def __init__(self, nodes: tuple[NodeShape, ...]) -> None:
        self.nodes = nodes
        self._orders: dict[int, _Order] = {}
        kinds: dict[tuple[object, ...], int] = {}
        self._kind = [kinds.setdefault(_signature(n), len(kinds)) for n in nodes]
        self._kind_node = [nodes[self._kind.index(k)] for k in range(len(kinds))]  # one node of each kind
        self._placements: dict[tuple[str, int], Placement] = {}
        self._rates: dict[tuple[object, ...], _Rates] = {}
        self._keep: list[FleetShape] = []
        self._reasons: dict[tuple[object, ...], list[Reason]] = {}  # fleet_reasons' memo (keys hold ids)
        self._model_memos: dict[tuple[int, int], dict[tuple[object, ...], list[Reason]]] = {}
        self._held: list[tuple[ModelSpec | None, PlanOptions]] = []
        self._with_seqs: dict[tuple[int, int], PlanOptions] = {}
        self._sorted: dict[tuple[tuple[bool, bool], ...], tuple[list[int], tuple[NodeShape, ...], tuple[str, ...],
                                                               tuple[int, ...]]] = {}
        self._full: dict[tuple[object, ...], list[Placement]] = {}
        self._placed: dict[tuple[int, int], tuple[_Later, tuple[str, ...], tuple[NodeShape, ...]]] = {}

    def with_seqs(self, opts: PlanOptions, seqs: int) -> PlanOptions:
        """`replace(opts, seqs=seqs)`, made once per sequence count (capacities repeat across layouts)."""
        key = (id(opts), seqs)
        got = self._with_seqs.get(key)
        if got is None:
            got = self._with_seqs[key] = replace(opts, seqs=seqs)
            self._held.append((None, opts))
        return got

    def model_memo(self, model: ModelSpec, opts: PlanOptions) -> dict[tuple[object, ...], list[Reason]]:
        """model_reasons' memo for one model and options (kept, so their ids stay theirs)."""
        key = (id(model), id(opts))
        got = self._model_memos.get(key)
        if got is None:
            got = self._model_memos[key] = {}
            self._held.append((model, opts))
        return got

    def reasons_memo(self, fleet: FleetShape) -> dict[tuple[object, ...], list[Reason]]:
        """fleet_reasons' memo for layouts on this pool's nodes; the fleet is kept so its id stays its own."""
        if not any(f is fleet for f in self._keep):
            self._keep.append(fleet)
        return self._reasons

    def rates(self, fleet: FleetShape, used: tuple[NodeShape, ...], weight_dtype: str, *, multinode: bool,
              in_domain: bool) -> _Rates:
        """`_rates`, once per (fleet, kinds of node used, precision, multi-node, inside a domain)."""
        key = (id(fleet), tuple(map(id, used)), weight_dtype, multinode, in_domain)
        got = self._rates.get(key)
        if got is None:
            got = self._rates[key] = _rates(fleet, used, weight_dtype, multinode=multinode, in_domain=in_domain)
            if not any(f is fleet for f in self._keep):
                self._keep.append(fleet)  # the ids in the key stay those objects' while the pool lives
        return got

    def placement(self, node: NodeShape, ngpus: int) -> Placement:
        key = (node.name, ngpus)
        got = self._placements.get(key)
        if got is None:
            got = self._placements[key] = Placement(node.name, node.placement_order()[:ngpus])
        return got

    def _order(self, tp: int) -> _Order:
        if tp in self._orders:
            return self._orders[tp]
        reps = self._kind_node
        sort_key = tuple((n.nvlink_domain < tp, n.gpus < tp) for n in reps)  # per kind; sorted() below is stable
        whole = any(n.gpus >= tp for n in reps)
        kind_cap = [self._cap(n, tp) if whole else n.gpus for n in reps]
        per = tp if whole else 1
        # TP sizes whose nodes sort alike share the order; those that also fill each node with as many
        # GPUs (TP 1, 2, 4, 8 on 8-GPU nodes) share the filled placements too
        shared = self._sorted.get(sort_key)
        if shared is None:
            idx = sorted(range(len(self.nodes)), key=[sort_key[k] for k in self._kind].__getitem__)
            nodes = tuple(self.nodes[i] for i in idx)
            seen: dict[int, int] = {}
            for pos, i in enumerate(idx):
                if len(seen) == len(reps):
                    break
                seen.setdefault(self._kind[i], pos)
            shared = self._sorted[sort_key] = (idx, nodes, tuple(n.name for n in nodes), tuple(sorted(seen.values())))
        idx, nodes, names, firsts = shared
        caps = [kind_cap[self._kind[i]] for i in idx]
        full = self._full.setdefault((sort_key, tuple(c * per for c in kind_cap)), [])
        order = _Order(nodes, names, list(itertools.accumulate(caps)), caps, per, firsts, self, full)
        self._orders[tp] = order
        return order

    @staticmethod
    def _cap(n: NodeShape, tp: int) -> int:
        # a TP group takes GPUs of the node's clean NVLink clique first (gpu_order); groups beyond the
        # clique (or on a PCIe-only node) still fit on the rest, and the NVLink constraint judges them
        if tp == 1 or n.nvlink_domain <= 1:
            return n.gpus // tp
        return max(n.nvlink_domain // tp, 1 if n.gpus >= tp else 0)

    def place(self, tp: int, pp: int, dp: int) -> tuple[tuple[Placement, ...], tuple[str, ...], tuple[NodeShape, ...]] | None:
        """(placement, every node used, one node of each kind used); None when the GPUs cannot hold it."""
        got = self.place_later(tp, pp, dp)
        return None if got is None else (got[0](), got[1], got[2])

    def place_later(self, tp: int, pp: int, dp: int) -> tuple[Callable[[], tuple[Placement, ...]], tuple[str, ...],
                                                               tuple[NodeShape, ...]] | None:
        """`place`, with the placement as a function that builds it (once) when first called."""
        o = self._order(tp)
        need = pp * dp * (tp // o.per_group)
        if not o.cum or o.cum[-1] < need:
            return None
        got = self._placed.get((tp, need))  # layouts with as many TP groups share one placement (PP2 DP4, PP4 DP2, EP)
        if got is None:
            k = bisect.bisect_left(o.cum, need)  # the last node used
            reps = tuple(o.nodes[i] for i in o.firsts if i <= k)
            got = self._placed[(tp, need)] = (_Later(self, o, need, k), o.names[: k + 1], reps)
        return got

    def _place(self, o: _Order, need: int, k: int) -> tuple[Placement, ...]:
        before = o.cum[k - 1] if k else 0
        full = o.filled(k + 1)
        last = full[k]
        if o.cum[k] != need:
            last = self.placement(o.nodes[k], (need - before) * o.per_group)
        return (*full[:k], last)


def place(nodes: tuple[NodeShape, ...], tp: int, pp: int, dp: int) -> tuple[Placement, ...] | None:
    """Pack PP×DP TP groups onto nodes, NVLink-capable nodes first; None if they do not fit.

    A TP group stays on one node when any node has TP GPUs; otherwise groups fill whole nodes
    in order (TP across nodes, which the constraints then judge).
    """
    got = Pool(nodes).place(tp, pp, dp)
    return got[0] if got else None


def _hbm(node: NodeShape) -> tuple[float | None, str]:
    if node.hbm_gbps:
        return node.hbm_gbps, f"{node.name}: {node.gpu_model}"
    spec = spec_for(node.gpu_model)
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


_Rates = tuple[float | None, str, NodeShape, float | None, str, float | None, str, float | None, str, float | None]


def _rates(fleet: FleetShape, used: tuple[NodeShape, ...], weight_dtype: str, *, multinode: bool,
           in_domain: bool) -> _Rates:
    """The rates a layout's estimates read, from one node of each kind it uses: the slowest HBM, all-reduce,
    fabric, peak TFLOPS and all-to-all link, each with its source. The same for every layout on the same
    kinds of node, so the planner works them out once per kind set (`Pool.rates`)."""
    hbm, hbm_src = min((_hbm(n) for n in used), key=lambda x: x[0] or math.inf)
    slow = min(used, key=lambda n: n.intra_busbw_gbps or 0.0)
    if multinode:
        ev = fabric_evidence(fleet, used)
        p2p, p2p_src = ev.busbw_gbps, f"{ev.level}: {ev.formula or ev.source}"
    else:
        p2p, p2p_src = slow.intra_busbw_gbps, slow.intra_busbw_source or slow.name
    # the compute roofline (prefill / TTFT, the decode step's compute floor) from the slowest GPU's peak for the
    # weight precision, and the EP all-to-all over the link that carries it (NVLink in a node, else the fabric)
    tflops, tflops_src = min((peak_tflops(spec_for(n.gpu_model), weight_dtype) for n in used),
                             key=lambda x: x[0] or math.inf)
    a2a, a2a_src = ((p2p, p2p_src) if multinode and not in_domain
                    else (slow.intra_busbw_gbps, slow.intra_busbw_source or slow.name))
    latency = max((n.small_msg_latency_us or 0.0) for n in used) or None
    return hbm, hbm_src, slow, p2p, p2p_src, tflops, tflops_src, a2a, a2a_src, latency


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
        rates = _rates(fleet, used, opts.weight_dtype, multinode=multinode, in_domain=in_domain)
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
