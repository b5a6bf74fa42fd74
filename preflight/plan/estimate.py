"""Decode-speed estimates from the fleet's measured numbers (memory-bandwidth roofline).

Decode is memory bound: each step reads this GPU's weights once and the KV of every sequence
it serves. TP adds 2 all-reduces per layer at the measured bus bandwidth; PP runs stages one
after another for a token, and idles (pipeline bubble) while it fills. Every value says it is
an estimate and carries its formula; a missing measurement gives None, never a guess.
"""

from __future__ import annotations

from dataclasses import dataclass

from .memory import MemoryBreakdown
from .models import ModelSpec

ACT_BYTES = 2  # bf16 activations on the wire


@dataclass(frozen=True)
class Estimate:
    name: str
    value: float | None
    unit: str
    formula: str
    kind: str = "estimate"


def allreduce_seconds(message_bytes: float, ranks: int, busbw_gbps: float, latency_us: float | None) -> float:
    """nccl-tests: busbw = algbw × 2(n−1)/n, so time = bytes × 2(n−1)/n / busbw (+ fixed latency)."""
    t = message_bytes * 2 * (ranks - 1) / ranks / (busbw_gbps * 1e9)
    return t + (latency_us or 0.0) * 1e-6


def pp_bubble(stages: int, microbatches: int) -> float:
    return (stages - 1) / (microbatches + stages - 1)


def decode_estimates(
    model: ModelSpec,
    mem: MemoryBreakdown,
    *,
    tp: int,
    pp: int,
    dp: int,
    seqs: int,
    hbm_gbps: float | None,
    hbm_source: str,
    busbw_gbps: float | None,
    busbw_source: str,
    latency_us: float | None,
    p2p_gbps: float | None,
    p2p_source: str,
) -> tuple[Estimate, ...]:
    """Per-sequence and aggregate decode tokens/s, TP all-reduce cost and PP bubble."""
    b = mem.seqs_per_replica
    out: list[Estimate] = []
    touched = 1.0
    if model.is_moe and mem.expert_weights:
        k, e = model.experts_per_token, model.n_routed_experts
        touched = 1 - (1 - k / e) ** seqs  # all DP ranks' tokens pass through each expert shard
    read = mem.weights - mem.expert_weights + mem.expert_weights * touched + mem.kv
    moe_txt = f" (experts × touched {touched:.2f} = 1−(1−{model.experts_per_token}/{model.n_routed_experts})^{seqs})" if model.is_moe else ""
    if not hbm_gbps:
        return (Estimate("decode_tokens_per_s_per_seq", None, "tok/s", "HBM bandwidth unknown for this GPU"),)
    stage_s = read / (hbm_gbps * 1e9)
    step_s = pp * stage_s
    parts = [f"{pp} stage(s) × {read / 1e9:.2f} GB read{moe_txt} / {hbm_gbps:g} GB/s HBM ({hbm_source})"]

    ar_s: float | None = 0.0
    if tp > 1:
        msg = model.hidden * ACT_BYTES * b
        if busbw_gbps:
            ar_s = 2 * model.layers * allreduce_seconds(msg, tp, busbw_gbps, latency_us)
            lat = f" + {latency_us:g} µs" if latency_us else ""
            f = (f"2 × {model.layers} layers × ({msg:,.0f} B × 2({tp}−1)/{tp} / {busbw_gbps:g} GB/s{lat}) "
                 f"= {ar_s * 1e3:.3f} ms per step (busbw: {busbw_source})")
            parts.append(f"TP all-reduce {ar_s * 1e3:.3f} ms")
        else:
            ar_s = None
            f = "TP all-reduce not estimated: intra-node all-reduce bandwidth not measured"
            parts.append("TP all-reduce not included (not measured)")
        out.append(Estimate("tp_allreduce_ms_per_step", None if ar_s is None else ar_s * 1e3, "ms", f))
    p2p_s = 0.0
    if pp > 1:
        msg = model.hidden * ACT_BYTES * b
        if p2p_gbps:
            p2p_s = (pp - 1) * msg / (p2p_gbps * 1e9)
            parts.append(f"PP send/recv {(pp - 1)} × {msg:,.0f} B / {p2p_gbps:g} GB/s ({p2p_source})")
        else:
            parts.append("PP send/recv not included (link not measured)")
        m = pp  # vLLM keeps one batch in flight per stage
        bub = pp_bubble(pp, m)
        out.append(Estimate("pp_bubble_fraction", bub, "fraction",
                            f"(stages−1)/(microbatches+stages−1) = ({pp}−1)/({m}+{pp}−1) = {bub:.3f}"))
    step_s += (ar_s or 0.0) + p2p_s
    per_seq = 1.0 / step_s
    formula = "1 / (" + " + ".join(parts) + f") = {per_seq:.1f} tok/s"
    out.insert(0, Estimate("decode_tokens_per_s_per_seq", per_seq, "tok/s", formula))
    agg = dp * b / step_s
    out.insert(1, Estimate("decode_tokens_per_s_aggregate", agg, "tok/s",
                           f"DP {dp} × {b} seqs per replica × {per_seq:.1f} tok/s = {agg:.0f} tok/s "
                           "(no PP overlap credited; no compute roofline)"))
    return tuple(out)
