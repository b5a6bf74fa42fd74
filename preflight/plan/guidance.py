"""When nothing fits or nothing is safe: the smallest changes that would fix it, each with its numbers.

Each hint is the plan computed again with one thing changed (FP8 KV cache, FP8 weights, a shorter
context, fewer sequences, more nodes like the ones there are) and reports the layout that change
makes fit or safe; a fabric that was not measured gets the `nccl-multinode` command that would.
Pure: the same planner, other options.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from .dtypes import kv_bytes
from .errors import PlanError
from .memory import GB, kv_elems_per_token_per_layer_per_gpu
from .models import ModelSpec
from .planner import Candidate, Plan, plan
from .shapes import FleetShape, PlanOptions

MIN_CONTEXT = 1024
MAX_EXTRA_NODES = 64  # how far "N more nodes" looks before giving up
FABRIC_CODES = ("fabric.unmeasured", "fabric.none", "ep.cross_node")


@dataclass(frozen=True)
class Hint:
    change: str  # what to change, e.g. "--kv-dtype fp8"
    result: str  # what it gives, e.g. "TP8 PP2 DP1 fits (safe), 12 sequences"
    formula: str = ""


def kv_per_sequence(model: ModelSpec, opts: PlanOptions) -> tuple[float, str]:
    """Whole-model KV cache bytes for one full-context sequence (before TP/PP split), and its formula."""
    elems = kv_elems_per_token_per_layer_per_gpu(model, 1)
    b = kv_bytes(opts.kv_dtype)
    total = model.layers * elems * opts.context * b
    return total, (f"{model.layers} layers × {elems} values per token per layer × {opts.context} tokens × {b:g} B "
                   f"({opts.kv_dtype}) = {total / GB:.1f} GB per sequence")


def _best(p: Plan, want: str) -> Candidate | None:
    """The best layout of a plan: a safe one, else (want == 'fit') one that fits."""
    if p.recommend_throughput:
        return p.recommend_throughput[0]
    if want == "fit":
        return p.best_risky[0] if p.best_risky else None
    return None


def _describe(c: Candidate) -> str:
    return f"{c.label} {c.verdict_label}, {c.capacity} full-context sequences fit"


def _try(fleet: FleetShape, model: ModelSpec, opts: PlanOptions, want: str) -> Candidate | None:
    try:
        return _best(plan(fleet, model, opts), want)
    except PlanError:
        return None


def _option_hints(fleet: FleetShape, model: ModelSpec, opts: PlanOptions, want: str) -> list[Hint]:
    out: list[Hint] = []
    tries: list[tuple[str, PlanOptions]] = []
    if kv_bytes(opts.kv_dtype) > 1:
        tries.append(("--kv-dtype fp8", replace(opts, kv_dtype="fp8")))
    if opts.weight_dtype.lower() in ("bf16", "fp16"):
        tries.append(("--weights fp8", replace(opts, weight_dtype="fp8")))
    for change, o in tries:
        c = _try(fleet, model, o, want)
        if c is not None:
            out.append(Hint(change, _describe(c)))
    ctx = opts.context // 2
    while ctx >= MIN_CONTEXT:
        c = _try(fleet, model, replace(opts, context=ctx), want)
        if c is not None:
            out.append(Hint(f"--context {ctx}", _describe(c)))
            break
        ctx //= 2
    return out


def _fewer_seqs(p: Plan, opts: PlanOptions) -> list[Hint]:
    """Layouts whose weights fit but not the requested sequences: how many would."""
    room = [c for c in p.candidates if c.memory.verdict == "does-not-fit" and 0 < c.capacity < opts.seqs
            and all(r.code == "memory.fit" for r in c.reasons if r.severity == "unsafe")]
    if not room:
        return []
    c = max(room, key=lambda c: c.capacity)
    return [Hint(f"--seqs {c.capacity}", f"{c.label}: {c.capacity} full-context sequences fit (asked {opts.seqs})")]


def _more_nodes(fleet: FleetShape, model: ModelSpec, opts: PlanOptions, want: str) -> list[Hint]:
    """The fewest extra nodes like the first one that make a layout fit (or safe), doubling then bisecting."""
    like = fleet.nodes[0]

    def grown(k: int) -> FleetShape:
        extra = tuple(replace(like, name=f"{like.name}+{i}", facts_source=f"hypothetical: like {like.name}")
                      for i in range(1, k + 1))
        return replace(fleet, nodes=fleet.nodes + extra)

    def ok(k: int) -> Candidate | None:
        return _try(grown(k), model, opts, want)

    hi = 1
    while hi <= MAX_EXTRA_NODES and ok(hi) is None:
        hi *= 2
    if hi > MAX_EXTRA_NODES:
        return []
    lo = hi // 2  # ok(lo) failed (or lo == 0)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if ok(mid) is not None else (mid, hi)
    c = ok(hi)
    assert c is not None
    return [Hint(f"{hi} more node(s) like {like.name} ({hi * like.gpus} GPUs)", _describe(c))]


def _fabric_hint(p: Plan, fleet: FleetShape, multinode_command: str) -> list[Hint]:
    risky = p.best_risky[0] if p.best_risky else None
    if risky is None or not any(r.code in FABRIC_CODES for r in risky.reasons):
        return []
    if all(n.described for n in fleet.nodes):
        return [Hint("describe the fabric: add ,ib=NICSxGBITS to --fleet (e.g. ,ib=8x400)",
                     f"{risky.label} could then be judged on an estimate")]
    return [Hint(f"measure the fabric: {multinode_command}",
                 f"then `preflight plan --bundle DIR` judges {risky.label} on the measured busbw")]


def guidance(fleet: FleetShape, model: ModelSpec, opts: PlanOptions, p: Plan, *,
             multinode_command: str = "preflight nccl-multinode -i INVENTORY --save DIR") -> tuple[Hint, ...]:
    """Hints only when the plan has no safe layout; () otherwise."""
    if p.recommend_throughput:
        return ()
    want = "fit" if not any(c.memory.verdict != "does-not-fit" for c in p.candidates) else "safe"
    kv, formula = kv_per_sequence(model, opts)
    out = [Hint("(fact)", f"KV cache per full-context sequence: {kv / GB:.1f} GB", formula)]
    out += _fewer_seqs(p, opts) if want == "fit" else []
    out += _fabric_hint(p, fleet, multinode_command)
    out += _option_hints(fleet, model, opts, want)
    if len(fleet.nodes) <= MAX_EXTRA_NODES:  # each try is a whole plan; a 1,000-node fleet is not short of nodes
        out += _more_nodes(fleet, model, opts, want)
    return tuple(out)
