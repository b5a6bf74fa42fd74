"""Prefill / TTFT compute roofline, MoE all-to-all for EP, offline throughput: hand-checked numbers."""

from __future__ import annotations

import pytest

from preflight.plan import PlanOptions, load_model, memory_per_gpu
from preflight.plan.estimate import (
    COMPUTE_EFFICIENCY,
    DECODE_EFFICIENCY,
    _attn_keys,
    alltoall_bytes_per_token_per_layer,
    decode_estimates,
    moe_alltoall_estimate,
    offline_throughput,
    peak_tflops,
    prefill_estimates,
    prefill_flops,
)
from preflight.reference import gpu_specs

H100 = next(s for s in gpu_specs() if s["id"] == "h100-sxm")
A100 = next(s for s in gpu_specs() if s["id"] == "a100-sxm-80gb")


def test_peak_tflops_follows_the_weight_precision() -> None:
    assert peak_tflops(H100, "fp8")[0] == 1979  # gpus.yaml h100-sxm fp8_tflops
    assert peak_tflops(H100, "bf16")[0] == 989
    assert peak_tflops(H100, "int4")[0] == 989  # weight-only quantisation computes in bf16
    assert peak_tflops(A100, "fp8")[0] == 312  # no FP8 tensor cores: bf16 peak
    assert peak_tflops(None, "bf16") == (None, "GPU not in gpus.yaml")


def test_causal_keys_and_window() -> None:
    assert _attn_keys(4, None) == 1 + 2 + 3 + 4
    assert _attn_keys(6, 2) == 1 + 2 + 2 + 2 + 2 + 2
    assert _attn_keys(3, 8) == 6


def test_prefill_flops_llama_8b() -> None:
    m = load_model("llama-3.1-8b")
    lin, att = prefill_flops(m, 1000)
    emb = 2 * 128256 * 4096
    assert lin == pytest.approx(2 * (m.params - emb) * 1000 + 2 * 128256 * 4096)
    # 32 layers × 2 × 32 heads × (128 + 128) × 1000·1001/2 keys = 262.4 GFLOP
    assert att == pytest.approx(32 * 2 * 32 * 256 * 500500)
    assert att == pytest.approx(262.38e9, rel=1e-3)


def test_prefill_time_tp1_is_flops_over_peak_times_efficiency() -> None:
    m = load_model("llama-3.1-8b")
    lin, att = prefill_flops(m, 1000)
    (pre,) = prefill_estimates(m, tp=1, pp=1, prompt_tokens=1000, tflops=989, tflops_source="gpus.yaml h100-sxm")
    assert pre.name == "prefill_ms_per_prompt"
    assert pre.value == pytest.approx((lin + att) / (989e12 * COMPUTE_EFFICIENCY) * 1e3)
    assert "989 TFLOPS" in pre.formula and "assumed" in pre.formula


def test_prefill_tp_adds_allreduce_and_ttft_adds_a_decode_step() -> None:
    m = load_model("llama-3.1-70b")
    lin, att = prefill_flops(m, 2048)
    pre, ttft = prefill_estimates(m, tp=8, pp=1, prompt_tokens=2048, tflops=989, tflops_source="x",
                                  busbw_gbps=400.0, busbw_source="m", decode_step_s=0.02)
    msg = 2048 * 8192 * 2
    ar = 2 * 80 * msg * 2 * 7 / 8 / 400e9
    assert pre.value == pytest.approx(((lin + att) / (8 * 989e12 * COMPUTE_EFFICIENCY) + ar) * 1e3)
    assert ttft.value == pytest.approx(pre.value + 20.0)


def test_pp_does_not_shorten_one_prompt() -> None:
    m = load_model("llama-3.1-70b")
    (a,) = prefill_estimates(m, tp=4, pp=1, prompt_tokens=512, tflops=989, tflops_source="x")
    (b,) = prefill_estimates(m, tp=4, pp=2, prompt_tokens=512, tflops=989, tflops_source="x")
    assert a.value == pytest.approx(b.value)


def test_alltoall_deepseek_v3_ep8() -> None:
    m = load_model("deepseek-v3")
    # dispatch + combine: 2 × top-8 × 7168 × 2 B × 7/8 = 200,704 B per token per MoE layer
    assert alltoall_bytes_per_token_per_layer(m, 8) == pytest.approx(200704)
    e = moe_alltoall_estimate(m, ep=8, dp=8, seqs_per_replica=16, link_gbps=400.0, link_source="nvlink")
    assert e is not None and e.name == "ep_alltoall_ms_per_step"
    # 58 MoE layers × (8 × 16 / 8 = 16 tokens per rank) × 200,704 B / 400 GB/s = 0.4657 ms
    assert e.value == pytest.approx(58 * 16 * 200704 / 400e9 * 1e3)
    assert e.value == pytest.approx(0.4657, rel=1e-3)


def test_alltoall_absent_for_dense_or_ep1_and_none_without_link() -> None:
    assert moe_alltoall_estimate(load_model("llama-3.1-8b"), ep=8, dp=8, seqs_per_replica=4, link_gbps=400, link_source="") is None
    m = load_model("deepseek-v3")
    assert moe_alltoall_estimate(m, ep=1, dp=1, seqs_per_replica=4, link_gbps=400, link_source="") is None
    e = moe_alltoall_estimate(m, ep=8, dp=8, seqs_per_replica=4, link_gbps=None, link_source="")
    assert e is not None and e.value is None and "unknown" in e.formula


def test_decode_estimates_with_tflops_and_ep_add_the_new_rows() -> None:
    m = load_model("qwen3-30b-a3b")
    mem = memory_per_gpu(m, tp=1, pp=1, dp=8, ep=8, gpu_memory_bytes=80e9, opts=PlanOptions(seqs=64))
    ests = decode_estimates(m, mem, tp=1, pp=1, dp=8, seqs=64, hbm_gbps=3350, hbm_source="h", busbw_gbps=400,
                            busbw_source="b", latency_us=None, p2p_gbps=None, p2p_source="", ep=8, a2a_gbps=400,
                            a2a_source="nvlink", tflops=989, tflops_source="t", prompt_tokens=1024)
    names = {e.name: e for e in ests}
    assert {"ep_alltoall_ms_per_step", "prefill_ms_per_prompt", "ttft_ms"} <= set(names)
    a2a = names["ep_alltoall_ms_per_step"].value
    # 48 MoE layers × 8 tokens per rank × 2 × 8 × 2048 × 2 B × 7/8 / 400 GB/s
    assert a2a == pytest.approx(48 * 8 * 2 * 8 * 2048 * 2 * 7 / 8 / 400e9 * 1e3)
    step = 1 / names["decode_tokens_per_s_per_seq"].value
    assert names["ttft_ms"].value == pytest.approx(names["prefill_ms_per_prompt"].value + step * 1e3)


def test_decode_compute_floor_at_large_batch() -> None:
    # 2,048 sequences of 16 tokens on Llama-3.1-8B: the KV read is small, compute dominates
    m = load_model("llama-3.1-8b")
    mem = memory_per_gpu(m, tp=1, pp=1, dp=1, ep=1, gpu_memory_bytes=80e9, opts=PlanOptions(seqs=2048, context=16))
    ests = decode_estimates(m, mem, tp=1, pp=1, dp=1, seqs=2048, hbm_gbps=3350, hbm_source="h", busbw_gbps=None,
                            busbw_source="", latency_us=None, p2p_gbps=None, p2p_source="", tflops=989, tflops_source="t")
    per_seq = next(e for e in ests if e.name == "decode_tokens_per_s_per_seq")
    assert 1 / per_seq.value == pytest.approx(2 * m.active_params * 2048 / (989e12 * COMPUTE_EFFICIENCY * DECODE_EFFICIENCY))
    assert "compute" in per_seq.formula


def test_calibration_script_reproduces_the_documented_summary() -> None:
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "bench"))
    import calibrate

    data = calibrate.yaml.safe_load(calibrate.TABLE.read_text())
    assert len(data["rows"]) >= 10
    med, worst = calibrate.summary(calibrate.run(DECODE_EFFICIENCY, data))
    assert med == pytest.approx(1.0, abs=0.03) and worst < 2.5


def test_offline_throughput_hand_check() -> None:
    m = load_model("llama-3.1-8b")
    lin, att = prefill_flops(m, 128)
    pre = (lin + att) / (989e12 * COMPUTE_EFFICIENCY)
    e = offline_throughput(m, tp=1, pp=1, dp=2, seqs_per_replica=100, prompt_tokens=128, output_tokens=256,
                           decode_step_s=0.02, tflops=989)
    assert e.value == pytest.approx(2 * 100 * 256 / (100 * pre + 256 * 0.02))
