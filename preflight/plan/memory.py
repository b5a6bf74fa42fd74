"""Per-GPU memory for one layout: weights, KV cache, runtime reserve, against usable memory.

Formulas from planner-notes.md §1: weights split over TP x PP (routed experts over TP x DP,
which is what vLLM does with or without --enable-expert-parallel); GQA KV sharded by TP over
KV heads but never below one head per GPU; MLA's latent cache is not sharded by TP at all;
PP stages get layers as vLLM's get_pp_indices assigns them, and the heaviest stage decides.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass, field

from .dtypes import kv_bytes, weight_bytes
from .models import ModelSpec
from .shapes import PlanOptions

GB = 1e9
GIB = 1024**3
TIGHT_HEADROOM = 0.10  # "tight": headroom under 10% of usable memory
KV_BLOCK_TOKENS = 16  # vLLM DEFAULT_BLOCK_SIZE on CUDA; each sequence rounds up to whole blocks
ACTIVATION_FLOOR = 2 * GIB  # planner-notes §1.4 suggested rule: max(2 GiB, activation estimate)


@dataclass(frozen=True)
class MemoryBreakdown:
    """Bytes per GPU on the heaviest pipeline stage."""

    weights: float
    expert_weights: float  # the routed-expert part of weights (read only where tokens route)
    kv: float
    kv_per_seq: float
    activations: float
    overhead: float  # runtime reserve + activations
    total: float
    gpu_memory: float
    usable: float
    headroom: float
    seqs_per_replica: int
    max_seqs: int  # full-context sequences that fit, all DP replicas together
    verdict: str  # fits | tight | does-not-fit
    # the formulas are text for people: rendered on first read, not for each of the thousand layouts a
    # plan sizes (bench/plan_scale.py); dataclasses.replace keeps the original's, so a copy re-sized
    # for another sequence count (planner._at_capacity) still explains the layout as planned
    render: Callable[[], tuple[str, ...]] = field(default=tuple, repr=False, compare=False)

    @property
    def formulas(self) -> tuple[str, ...]:
        return self.render()

    def to_dict(self) -> dict[str, object]:
        return {k: v for k, v in vars(self).items() if k != "render"} | {"formulas": list(self.formulas)}


def pp_layer_split(layers: int, pp: int) -> list[int]:
    """Layers per stage as vLLM's get_pp_indices gives them (remainder to middle stages)."""
    parts = [layers // pp] * pp
    for i in range(2, layers % pp + 2):
        parts[-i] += 1
    return parts


def _gb(x: float) -> str:
    return f"{x / GB:.2f} GB"


def kv_elems_per_token_per_layer_per_gpu(model: ModelSpec, tp: int) -> int:
    """MLA: the whole latent on every TP rank. GQA: max(1, kv_heads // TP) heads of K and V."""
    if model.is_mla:
        return model.kv_elems_per_token_per_layer
    return 2 * max(1, model.kv_heads // tp) * model.head_dim


def kv_tokens(model: ModelSpec, layer: int, ctx: int) -> int:
    """Tokens layer `layer` keeps per sequence: the context, or for a windowed layer the window
    rounded up to whole blocks when that is shorter (vLLM v1 frees the blocks outside the window)."""
    w = model.layer_window(layer)
    return min(ctx, math.ceil(w / KV_BLOCK_TOKENS) * KV_BLOCK_TOKENS) if w else ctx


def _kv_txt(model: ModelSpec, idx: range, ctx: int, kv_seq: float, tp: int, kb: float) -> str:
    n = len(idx)
    win = sum(1 for i in idx if model.layer_window(i))
    tok = f"{ctx} tokens"
    if win:
        wt = min(ctx, math.ceil((model.sliding_window or 0) / KV_BLOCK_TOKENS) * KV_BLOCK_TOKENS)
        tok = (f"({n - win} full layers × {ctx} + {win} windowed layers × {wt}) tokens "
               f"(window {model.sliding_window}, {model.source})")
        n_txt = ""
    else:
        n_txt = f"{n} layers × "
    if model.is_mla:
        return (f"KV/seq = {n_txt}(kv_lora_rank {model.kv_lora_rank} + qk_rope_head_dim {model.qk_rope_head_dim}) "
                f"× {kb:g} B × {tok} = {_gb(kv_seq)} (MLA latent, not sharded by TP={tp})")
    return (f"KV/seq = 2 × {n_txt}max(1, {model.kv_heads} kv_heads // TP {tp}) × head_dim {model.head_dim} "
            f"× {kb:g} B × {tok} = {_gb(kv_seq)}")


def _stages(model: ModelSpec, pp: int, ctx: int) -> tuple[tuple[int, int, range, int, int, int, int, int], ...]:
    """The PP stages that can differ in bytes: (stage index, layers, their indices, MoE layers among them,
    KV tokens summed over them at `ctx`, and its non-expert, embedding/LM-head and expert parameters), the
    first stage of each distinct composition only (first and
    last stages also hold the embedding/LM head), so sizing a 61-stage layout looks at a handful.
    The same for every TP/DP/EP and GPU of a plan, so computed once per (model, PP, context) and kept on
    the model (a cache keyed by the model itself would hash all its fields on every call)."""
    cache = model.stage_cache
    got = cache.get((pp, ctx))
    if got is not None:
        return got
    out = []
    seen: set[tuple[int, int, int, bool, bool]] = set()
    start = 0
    for s, n in enumerate(pp_layer_split(model.layers, pp)):
        idx = range(start, start + n)
        start += n
        moe_n, kv_sum = sum(1 for i in idx if model.is_moe_layer(i)), sum(kv_tokens(model, i, ctx) for i in idx)
        key = (n, moe_n, kv_sum, s == 0, s == pp - 1)
        if key not in seen:  # a later stage like an earlier one never wins the strict "heaviest" below
            seen.add(key)
            non_exp = (n * model.attention_per_layer + (n - moe_n) * model.dense_mlp_per_layer
                       + moe_n * model.moe_shared_per_layer + (model.hidden if s == pp - 1 else 0))  # final norm
            emb = (model.vocab * model.hidden * ((s == 0) + (s == pp - 1)) if (pp > 1 or not model.tie_embeddings)
                   else model.embedding_params)
            out.append((s, n, idx, moe_n, kv_sum, non_exp, emb, moe_n * model.n_routed_experts * model.expert_params))
    cache[(pp, ctx)] = got = tuple(out)
    return got


@functools.lru_cache(maxsize=64)
def _bytes(weight_dtype: str, kv_dtype: str) -> tuple[float, float, float, float]:
    """(weight, embedding/LM head, non-expert, KV) bytes per element for these precisions.

    Quantized checkpoints keep embeddings/LM head (and for MXFP4 everything but experts) in bf16."""
    wb = weight_bytes(weight_dtype)
    return wb, 2.0 if wb < 2 else wb, 2.0 if weight_dtype.lower() == "mxfp4" else wb, kv_bytes(kv_dtype)


def memory_per_gpu(
    model: ModelSpec, *, tp: int, pp: int, dp: int, ep: int, gpu_memory_bytes: float, opts: PlanOptions
) -> MemoryBreakdown:
    """Memory on one GPU of the layout (EP changes placement, not bytes: vLLM's EP = TP x DP)."""
    wb, eb, nb, kb = _bytes(opts.weight_dtype, opts.kv_dtype)
    expert_shards = tp * dp
    seqs_rep = math.ceil(opts.seqs / dp)
    ctx = math.ceil(opts.context / KV_BLOCK_TOKENS) * KV_BLOCK_TOKENS
    kv_elems = kv_elems_per_token_per_layer_per_gpu(model, tp)

    best: tuple[float, float, int, int, int, range, int, int] | None = None
    for s, n, idx, _moe_n, kv_tokens_sum, non_exp, emb, exp in _stages(model, pp, ctx):
        w = (non_exp * nb + emb * eb) / tp + exp * wb / expert_shards
        kv_seq = kv_elems * kb * kv_tokens_sum
        if best is None or w + kv_seq * seqs_rep > best[0] + best[1] * seqs_rep:
            best = (w, kv_seq, non_exp, emb, exp, idx, s, n)
    assert best is not None
    w, kv_seq, non_exp, emb, exp, best_idx, stage, n_layers = best
    kv = kv_seq * seqs_rep

    mlp_w = model.dense_mlp_width if model.dense_layers else model.expert_width * model.experts_per_token
    act_est = opts.max_num_batched_tokens * (model.hidden + mlp_w / tp) * 2 * 4
    activations = max(ACTIVATION_FLOOR, act_est)
    reserve = opts.overhead_fraction * gpu_memory_bytes
    overhead = reserve + activations
    total = w + kv + overhead
    usable = gpu_memory_bytes * opts.gpu_memory_utilization
    headroom = usable - total
    room = usable - w - overhead
    max_seqs = max(0, int(room // kv_seq)) * dp if kv_seq > 0 else 0
    verdict = "does-not-fit" if headroom < 0 else ("tight" if headroom < TIGHT_HEADROOM * usable else "fits")

    # a partial, not a closure: a closure here would make ~20 cells per layout sized
    render = functools.partial(_formulas, model, opts, tp, pp, dp, stage, n_layers, non_exp, emb, exp, best_idx, w, kv,
                               kv_seq, overhead, total, usable, headroom, max_seqs, verdict, gpu_memory_bytes)

    return MemoryBreakdown(
        weights=w, expert_weights=exp * wb / expert_shards, kv=kv, kv_per_seq=kv_seq, activations=activations, overhead=overhead, total=total,
        gpu_memory=gpu_memory_bytes, usable=usable, headroom=headroom, seqs_per_replica=seqs_rep,
        max_seqs=max_seqs, verdict=verdict, render=render,
    )


def _formulas(model: ModelSpec, opts: PlanOptions, tp: int, pp: int, dp: int, stage: int, n_layers: int,
              non_exp: float, emb: float, exp: float, idx: range, w: float, kv: float, kv_seq: float, overhead: float,
              total: float, usable: float, headroom: float, max_seqs: int, verdict: str,
              gpu_memory_bytes: float) -> tuple[str, ...]:
    """The lines that show memory_per_gpu's work, every number with where it came from."""
    wb = weight_bytes(opts.weight_dtype)
    eb = 2.0 if wb < 2 else wb
    nb = 2.0 if opts.weight_dtype.lower() == "mxfp4" else wb
    kb = kv_bytes(opts.kv_dtype)
    expert_shards = tp * dp
    seqs_rep = math.ceil(opts.seqs / dp)
    ctx = math.ceil(opts.context / KV_BLOCK_TOKENS) * KV_BLOCK_TOKENS
    mlp_w = model.dense_mlp_width if model.dense_layers else model.expert_width * model.experts_per_token
    where = f"PP stage {stage} ({n_layers} of {model.layers} layers)" if pp > 1 else f"all {model.layers} layers"
    exp_txt = f" + experts {exp / 1e9:.2f}e9 × {wb:g} B / (TP·DP={expert_shards})" if exp else ""
    kv_txt = _kv_txt(model, idx, ctx, kv_seq, tp, kb)
    return (
        f"weights ({where}) = (non-expert {non_exp / 1e9:.2f}e9 × {nb:g} B + embedding/LM head "
        f"{emb / 1e9:.2f}e9 × {eb:g} B) / TP {tp}{exp_txt} = {_gb(w)}",
        kv_txt,
        f"KV = KV/seq × {seqs_rep} seqs per DP replica (ceil({opts.seqs} / DP {dp})) = {_gb(kv)}",
        f"overhead = {opts.overhead_fraction:g} × {_gb(gpu_memory_bytes)} reserve + activations "
        f"max(2 GiB, {opts.max_num_batched_tokens} tok × ({model.hidden} + {mlp_w}/{tp}) × 2 B × 4) = {_gb(overhead)}",
        f"total = {_gb(w)} + {_gb(kv)} + {_gb(overhead)} = {_gb(total)}",
        f"usable = {_gb(gpu_memory_bytes)} × gpu_memory_utilization {opts.gpu_memory_utilization:g} = {_gb(usable)}; "
        f"headroom {_gb(headroom)} ({verdict}; tight below {TIGHT_HEADROOM:.0%} of usable)",
        f"capacity = floor(({_gb(usable)} − {_gb(w)} − {_gb(overhead)}) / {_gb(kv_seq)}) × DP {dp} = {max_seqs} seqs at {ctx} tokens",
    )
