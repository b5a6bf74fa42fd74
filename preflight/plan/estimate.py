"""Decode, prefill and MoE all-to-all estimates from the fleet's numbers (rooflines).

Decode is memory bound: each step reads this GPU's weights once and the KV of every sequence
it serves, at DECODE_EFFICIENCY × the HBM bandwidth (the one constant fitted to published
measurements, docs/planner-calibration.md). TP adds 2 all-reduces per layer at the measured bus
bandwidth; PP runs stages one after another for a token, and idles (pipeline bubble) while it
fills. Prefill is compute bound: 2 × active parameters per token plus causal attention, at
COMPUTE_EFFICIENCY × the dense peak TFLOPS of gpus.yaml. EP adds an all-to-all (dispatch and
combine) per MoE layer over the link the EP group crosses. Every value says it is an estimate and
carries its formula; a missing measurement gives None, never a guess.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .memory import MemoryBreakdown
from .models import ModelSpec

ACT_BYTES = 2  # bf16 activations on the wire

# Fraction of the HBM roofline decode reaches: the one constant fitted, as the median of
# measured / roofline over the published results in docs/planner-calibration.md (bench/calibrate.py).
DECODE_EFFICIENCY = 0.59
DECODE_EFFICIENCY_SOURCE = "docs/planner-calibration.md"
# Assumed, not fitted: fraction of dense peak TFLOPS that prefill GEMMs + attention reach (model
# FLOPs utilisation). GEMM benchmarks reach about 55 % of the dense FP8 peak (Azure ND GB200 v6:
# 2,744 of 5,000 TFLOPS); attention, norms and launch gaps take more, hence 0.5.
COMPUTE_EFFICIENCY = 0.5


# A formula is text for people: a plan sizes ~1,000 layouts and shows a few, so the hot paths pass a
# function that renders the text on first read (bench/plan_scale.py) instead of the text itself.
Text = str | Callable[[], str]


def render(t: Text) -> str:
    return t if isinstance(t, str) else t()


@dataclass(frozen=True)
class Estimate:
    name: str
    value: float | None
    unit: str
    text: Text = field(repr=False, compare=False)
    kind: str = "estimate"

    @property
    def formula(self) -> str:
        return render(self.text)

    def to_dict(self) -> dict[str, object]:
        return {"name": self.name, "value": self.value, "unit": self.unit, "formula": self.formula, "kind": self.kind}


def allreduce_seconds(message_bytes: float, ranks: int, busbw_gbps: float, latency_us: float | None) -> float:
    """nccl-tests: busbw = algbw × 2(n−1)/n, so time = bytes × 2(n−1)/n / busbw (+ fixed latency)."""
    t = message_bytes * 2 * (ranks - 1) / ranks / (busbw_gbps * 1e9)
    return t + (latency_us or 0.0) * 1e-6


def pp_bubble(stages: int, microbatches: int) -> float:
    return (stages - 1) / (microbatches + stages - 1)


def _tp_allreduce(
    model: ModelSpec, b: int, tp: int, busbw_gbps: float | None, busbw_source: str, latency_us: float | None,
) -> tuple[float | None, Estimate, Text]:
    """2 all-reduces per layer of the step's activations (hidden × 2 B × seqs) at the measured busbw."""
    msg = model.hidden * ACT_BYTES * b
    if not busbw_gbps:
        return (None, Estimate("tp_allreduce_ms_per_step", None, "ms",
                               "TP all-reduce not estimated: intra-node all-reduce bandwidth not measured"),
                "TP all-reduce not included (not measured)")
    ar_s = 2 * model.layers * allreduce_seconds(msg, tp, busbw_gbps, latency_us)

    def f() -> str:
        lat = f" + {latency_us:g} µs" if latency_us else ""
        return (f"2 × {model.layers} layers × ({msg:,.0f} B × 2({tp}−1)/{tp} / {busbw_gbps:g} GB/s{lat}) "
                f"= {ar_s * 1e3:.3f} ms per step (busbw: {busbw_source})")
    return ar_s, Estimate("tp_allreduce_ms_per_step", ar_s * 1e3, "ms", f), lambda: f"TP all-reduce {ar_s * 1e3:.3f} ms"


def _pp_parts(model: ModelSpec, b: int, pp: int, p2p_gbps: float | None, p2p_source: str,
              parts: list[Text], out: list[Estimate]) -> float:
    """PP send/recv of the step's activations between adjacent stages, and the pipeline bubble."""
    msg = model.hidden * ACT_BYTES * b
    p2p_s = 0.0
    if p2p_gbps:
        p2p_s = (pp - 1) * msg / (p2p_gbps * 1e9)
        parts.append(lambda: f"PP send/recv {(pp - 1)} × {msg:,.0f} B / {p2p_gbps:g} GB/s ({p2p_source})")
    else:
        parts.append("PP send/recv not included (link not measured)")
    m = pp  # vLLM keeps one batch in flight per stage
    bub = pp_bubble(pp, m)
    out.append(Estimate("pp_bubble_fraction", bub, "fraction",
                        lambda: f"(stages−1)/(microbatches+stages−1) = ({pp}−1)/({m}+{pp}−1) = {bub:.3f}"))
    return p2p_s


def _compute_floor(model: ModelSpec, b: int, tp: int, tflops: float, source: str, mem_s: float, parts: list[Text]) -> float:
    """A decode step takes at least its FLOPs (2 × active params × seqs / TP) at COMPUTE_EFFICIENCY × peak
    (× DECODE_EFFICIENCY, which scales the whole decode roofline, memory or compute)."""
    flops = 2 * model.active_params * b / tp
    comp_s = flops / (tflops * 1e12 * COMPUTE_EFFICIENCY * DECODE_EFFICIENCY)
    if comp_s <= mem_s:
        return mem_s
    eff = f" × decode efficiency {DECODE_EFFICIENCY:g}" if DECODE_EFFICIENCY != 1.0 else ""
    parts[0] = lambda: (f"compute {flops / 1e12:.2f} TFLOP (2 × {model.active_params / 1e9:.1f}e9 active params × {b} seqs / TP {tp}) "
                        f"/ ({tflops:g} TFLOPS ({source}) × {COMPUTE_EFFICIENCY:g}{eff}), over the HBM time {mem_s * 1e3:.2f} ms")
    return comp_s


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
    ep: int = 1,
    a2a_gbps: float | None = None,
    a2a_source: str = "",
    tflops: float | None = None,
    tflops_source: str = "",
    prompt_tokens: int | None = None,
) -> tuple[Estimate, ...]:
    """Per-sequence and aggregate decode tokens/s, TP all-reduce cost and PP bubble.

    Optional (new, keyword-only in use): `ep` with the EP group's link `a2a_gbps` adds the MoE
    all-to-all per step; `tflops` (dense peak for the weight precision, `peak_tflops`) adds the
    compute floor of a decode step and, with `prompt_tokens`, the prefill / TTFT estimates.
    """
    b = mem.seqs_per_replica
    out: list[Estimate] = []
    if not hbm_gbps:
        return (Estimate("decode_tokens_per_s_per_seq", None, "tok/s", "HBM bandwidth unknown for this GPU"),)
    step_s, parts = _memory_step(model, mem, seqs, pp, hbm_gbps, hbm_source)
    if tflops:
        step_s = _compute_floor(model, b, tp, tflops, tflops_source, step_s, parts)
    step_s += _communication(model, b, tp=tp, pp=pp, dp=dp, ep=ep, busbw_gbps=busbw_gbps, busbw_source=busbw_source,
                             latency_us=latency_us, p2p_gbps=p2p_gbps, p2p_source=p2p_source, a2a_gbps=a2a_gbps,
                             a2a_source=a2a_source, parts=parts, out=out)
    per_seq = 1.0 / step_s
    out.insert(0, Estimate("decode_tokens_per_s_per_seq", per_seq, "tok/s",
                           lambda: "1 / (" + " + ".join(map(render, parts)) + f") = {per_seq:.1f} tok/s"))
    agg = dp * b / step_s
    out.insert(1, Estimate("decode_tokens_per_s_aggregate", agg, "tok/s",
                           lambda: f"DP {dp} × {b} seqs per replica × {per_seq:.1f} tok/s = {agg:.0f} tok/s "
                           "(no PP overlap credited)"))
    if tflops and prompt_tokens:
        out.extend(prefill_estimates(model, tp=tp, pp=pp, prompt_tokens=prompt_tokens, tflops=tflops,
                                     tflops_source=tflops_source, busbw_gbps=busbw_gbps, busbw_source=busbw_source,
                                     latency_us=latency_us, decode_step_s=step_s))
    return tuple(out)


def _memory_step(model: ModelSpec, mem: MemoryBreakdown, seqs: int, pp: int, hbm_gbps: float,
                 hbm_source: str) -> tuple[float, list[Text]]:
    """A decode step's HBM time (weights touched + KV read, over calibrated HBM bandwidth) and its formula."""
    touched = 1.0
    if model.is_moe and mem.expert_weights:
        k, e = model.experts_per_token, model.n_routed_experts
        touched = 1 - (1 - k / e) ** seqs  # all DP ranks' tokens pass through each expert shard
    read = mem.weights - mem.expert_weights + mem.expert_weights * touched + mem.kv
    def moe_txt() -> str:
        return f" (experts × touched {touched:.2f} = 1−(1−{model.experts_per_token}/{model.n_routed_experts})^{seqs})" if model.is_moe else ""
    eff = DECODE_EFFICIENCY
    stage_s = read / (hbm_gbps * 1e9 * eff)
    eff_txt = f" × decode efficiency {eff:g} ({DECODE_EFFICIENCY_SOURCE})" if eff != 1.0 else ""
    parts: list[Text] = [lambda: f"{pp} stage(s) × {read / 1e9:.2f} GB read{moe_txt()} / ({hbm_gbps:g} GB/s HBM ({hbm_source}){eff_txt})"]
    return pp * stage_s, parts


def _communication(model: ModelSpec, b: int, *, tp: int, pp: int, dp: int, ep: int, busbw_gbps: float | None,
                   busbw_source: str, latency_us: float | None, p2p_gbps: float | None, p2p_source: str,
                   a2a_gbps: float | None, a2a_source: str, parts: list[Text], out: list[Estimate]) -> float:
    """Seconds per decode step spent in TP all-reduce, PP hand-offs and EP all-to-all (formulas appended)."""
    ar_s: float | None = 0.0
    if tp > 1:
        ar_s, ar_est, ar_part = _tp_allreduce(model, b, tp, busbw_gbps, busbw_source, latency_us)
        parts.append(ar_part)
        out.append(ar_est)
    p2p_s = _pp_parts(model, b, pp, p2p_gbps, p2p_source, parts, out) if pp > 1 else 0.0
    a2a = moe_alltoall_estimate(model, ep=ep, dp=dp, seqs_per_replica=b, link_gbps=a2a_gbps, link_source=a2a_source)
    a2a_s = 0.0
    if a2a is not None:
        out.append(a2a)
        a2a_s = (a2a.value or 0.0) / 1e3
        parts.append((lambda: f"EP all-to-all {a2a_s * 1e3:.3f} ms") if a2a.value is not None
                     else "EP all-to-all not included (link unknown)")
    return (ar_s or 0.0) + p2p_s + a2a_s


def peak_tflops(spec: dict[str, Any] | None, weight_dtype: str) -> tuple[float | None, str]:
    """Dense peak TFLOPS of a gpus.yaml entry for the GEMMs the weights run: FP8 for fp8 weights
    (W8A8 on Hopper and later), else BF16 (bf16/fp16, and int4/mxfp4 dequantised to bf16)."""
    if not spec:
        return None, "GPU not in gpus.yaml"
    key = "fp8_tflops" if weight_dtype.lower() == "fp8" and spec.get("fp8_tflops") else "bf16_tflops"
    v = spec.get(key)
    return (float(v), f"gpus.yaml {spec.get('id')}: {key}={v}") if v else (None, f"gpus.yaml {spec.get('id')}: no {key}")


def _attn_keys(tokens: int, window: int | None) -> int:
    """Keys attended over a causal prompt of `tokens`: Σ_t min(t, window)."""
    if not window or window >= tokens:
        return tokens * (tokens + 1) // 2
    return window * (window + 1) // 2 + (tokens - window) * window


@functools.lru_cache(maxsize=1024)
def prefill_flops(model: ModelSpec, tokens: int) -> tuple[float, float]:
    """(linear, attention) FLOPs of one prompt: 2 × active non-embedding params × tokens + the LM head
    for the last token; attention 2 × heads × (d_qk + d_v) × keys attended, per layer (causal, windowed)."""
    linear = 2.0 * (model.active_params - model.embedding_params) * tokens + 2.0 * model.vocab * model.hidden
    if model.is_mla:
        dqk, dv = (model.qk_nope_head_dim or 0) + (model.qk_rope_head_dim or 0), model.v_head_dim or 0
    else:
        dqk = dv = model.head_dim
    attn = sum(2.0 * model.heads * (dqk + dv) * _attn_keys(tokens, model.layer_window(i)) for i in range(model.layers))
    return linear, attn


def prefill_estimates(
    model: ModelSpec, *, tp: int, pp: int, prompt_tokens: int, tflops: float, tflops_source: str,
    busbw_gbps: float | None = None, busbw_source: str = "", latency_us: float | None = None,
    decode_step_s: float | None = None,
) -> tuple[Estimate, ...]:
    """Prefill time of one prompt on an idle replica (compute roofline) and TTFT = prefill + one decode step.

    One prompt crosses the PP stages one after another, so PP does not shorten it: time =
    FLOPs / (TP × peak × COMPUTE_EFFICIENCY), plus 2 all-reduces per layer of tokens × hidden × 2 B.
    """
    lin, att = prefill_flops(model, prompt_tokens)
    comp_s = (lin + att) / (tp * tflops * 1e12 * COMPUTE_EFFICIENCY)
    ar_s = 0.0
    msg = prompt_tokens * model.hidden * ACT_BYTES
    if tp > 1 and busbw_gbps:
        ar_s = 2 * model.layers * allreduce_seconds(msg, tp, busbw_gbps, latency_us)
    pre_s = comp_s + ar_s

    def f() -> str:
        txt = (f"(2 × {(model.active_params - model.embedding_params) / 1e9:.2f}e9 active params × {prompt_tokens} tokens "
               f"+ attention {att / 1e12:.2f} TFLOP) = {(lin + att) / 1e12:.2f} TFLOP / (TP {tp} × {tflops:g} TFLOPS "
               f"({tflops_source}) × efficiency {COMPUTE_EFFICIENCY:g} assumed) = {comp_s * 1e3:.1f} ms")
        if tp > 1 and busbw_gbps:
            txt += (f" + TP all-reduce 2 × {model.layers} × {msg:,.0f} B at {busbw_gbps:g} GB/s ({busbw_source}) "
                    f"= {ar_s * 1e3:.1f} ms")
        elif tp > 1:
            txt += " (TP all-reduce not included: not measured)"
        return txt + f"; PP {pp} runs its stages in turn (no speed-up)"
    out = [Estimate("prefill_ms_per_prompt", pre_s * 1e3, "ms", f)]
    if decode_step_s is not None:
        ttft = pre_s + decode_step_s
        out.append(Estimate("ttft_ms", ttft * 1e3, "ms", lambda: f"prefill {pre_s * 1e3:.1f} ms + one decode step "
                            f"{decode_step_s * 1e3:.2f} ms = {ttft * 1e3:.1f} ms (idle replica, no queueing)"))
    return tuple(out)


def alltoall_bytes_per_token_per_layer(model: ModelSpec, ep: int) -> float:
    """Dispatch + combine: 2 × top-k × hidden × 2 B, the (EP−1)/EP share of it leaving the GPU."""
    return 2 * model.experts_per_token * model.hidden * ACT_BYTES * (ep - 1) / ep


def moe_alltoall_estimate(
    model: ModelSpec, *, ep: int, dp: int, seqs_per_replica: int, link_gbps: float | None, link_source: str,
) -> Estimate | None:
    """EP all-to-all time per decode step: every EP rank sends its share of the step's tokens
    (DP × seqs per replica / EP) to the top-k experts' ranks and takes the results back, per MoE layer."""
    if not model.is_moe or ep <= 1:
        return None
    per = alltoall_bytes_per_token_per_layer(model, ep)
    tokens = dp * seqs_per_replica / ep
    step_bytes = model.moe_layers * tokens * per
    head = (f"{model.moe_layers} MoE layers × {tokens:g} tokens per EP rank (DP {dp} × {seqs_per_replica} / EP {ep}) × "
            f"{per:,.0f} B/token/layer (2 × top-{model.experts_per_token} × hidden {model.hidden} × {ACT_BYTES} B × ({ep}−1)/{ep})")
    if not link_gbps:
        return Estimate("ep_alltoall_ms_per_step", None, "ms", head + " — link bandwidth unknown, not estimated")
    t = step_bytes / (link_gbps * 1e9)
    return Estimate("ep_alltoall_ms_per_step", t * 1e3, "ms",
                    lambda: f"{head} = {step_bytes / 1e6:.2f} MB / {link_gbps:g} GB/s ({link_source}) = {t * 1e3:.3f} ms")


def offline_throughput(
    model: ModelSpec, *, tp: int, pp: int, dp: int, seqs_per_replica: int, prompt_tokens: int, output_tokens: int,
    decode_step_s: float, tflops: float, busbw_gbps: float | None = None,
) -> Estimate:
    """Output tokens/s of an offline run (every request ISL in, OSL out; the replicas always full):
    each replica prefills b prompts (PP stages overlapping across prompts) and decodes OSL steps of b."""
    b = seqs_per_replica
    lin, att = prefill_flops(model, prompt_tokens)
    pre_s = (lin + att) / (tp * pp * tflops * 1e12 * COMPUTE_EFFICIENCY)
    if tp > 1 and busbw_gbps:
        pre_s += 2 * model.layers * allreduce_seconds(prompt_tokens * model.hidden * ACT_BYTES, tp, busbw_gbps, None) / pp
    total_s = b * pre_s + output_tokens * decode_step_s
    v = dp * b * output_tokens / total_s
    return Estimate("offline_output_tokens_per_s", v, "tok/s",
                    f"DP {dp} × {b} seqs × {output_tokens} out / ({b} × prefill {pre_s * 1e3:.2f} ms + {output_tokens} × "
                    f"decode step {decode_step_s * 1e3:.2f} ms) = {v:,.0f} tok/s")
