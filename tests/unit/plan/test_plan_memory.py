"""Per-GPU memory against the hand-worked numbers of issue 4 and planner-notes §4."""

from __future__ import annotations

import pytest

from preflight.plan import PlanOptions, load_model, memory_per_gpu
from preflight.plan.memory import GIB, pp_layer_split

H100_BYTES = 81559 * 2**20


def mem(name: str, *, tp: int = 1, pp: int = 1, dp: int = 1, ep: int = 1, gpu: float = H100_BYTES, **opts):
    return memory_per_gpu(load_model(name), tp=tp, pp=pp, dp=dp, ep=ep, gpu_memory_bytes=gpu, opts=PlanOptions(**opts))


def test_llama_70b_bf16_weights_are_about_141_gb() -> None:
    m = mem("llama-3.1-70b")
    assert m.weights == load_model("llama-3.1-70b").params * 2
    assert m.weights == pytest.approx(70.6e9 * 2, rel=0.005)  # issue 4: ~141 GB


def test_llama_70b_kv_at_32k_8_seqs_fp16() -> None:
    # Issue 4 writes "2 × 80 × 8 × 128 × 32768 × 8 × 2 B ≈ 42.9 GB", but that product is 85.9 GB
    # (327,680 B/token, planner-notes §7, × 32768 × 8); 42.9 GB is the same cache in fp8 (1 B).
    m = mem("llama-3.1-70b", context=32768, seqs=8, kv_dtype="fp16")
    assert m.kv == 2 * 80 * 8 * 128 * 32768 * 8 * 2 == 85_899_345_920
    assert mem("llama-3.1-70b", context=32768, seqs=8, kv_dtype="fp8").kv == 42_949_672_960
    assert mem("llama-3.1-70b", tp=2, context=32768, seqs=8, kv_dtype="fp16").kv == 42_949_672_960
    assert m.verdict == "does-not-fit"  # 141 GB of weights on one 80 GB GPU


def test_gqa_kv_shards_by_tp_then_replicates_past_the_kv_heads() -> None:
    kv = {tp: mem("llama-3.1-70b", tp=tp, context=32768, seqs=8).kv for tp in (1, 2, 8, 16)}
    assert kv[2] == kv[1] / 2
    assert kv[8] == kv[1] / 8
    assert kv[16] == kv[8]  # 8 KV heads: TP 16 keeps one whole head per GPU


def test_dp_splits_sequences_and_pp_splits_layers() -> None:
    base = mem("llama-3.1-70b", tp=8, seqs=16)
    assert mem("llama-3.1-70b", tp=8, dp=2, seqs=16).kv == base.kv / 2
    assert mem("llama-3.1-70b", tp=8, dp=3, seqs=16).seqs_per_replica == 6  # ceil(16 / 3)
    assert mem("llama-3.1-70b", tp=4, pp=2, seqs=16).kv == base.kv  # half the layers, twice the heads


def test_deepseek_v3_mla_cache_is_not_sharded_by_tp() -> None:
    one = mem("deepseek-v3", tp=1, context=8192, seqs=1, weight_dtype="fp8")
    eight = mem("deepseek-v3", tp=8, context=8192, seqs=1, weight_dtype="fp8")
    per_token = (512 + 64) * 61 * 2
    assert per_token == 70_272  # planner-notes §1.2
    assert one.kv_per_seq == per_token * 8192
    assert eight.kv_per_seq == one.kv_per_seq
    assert "not sharded by TP" in eight.formulas[1]


def test_deepseek_v3_pp_splits_mla_cache_by_vllm_layer_split() -> None:
    assert pp_layer_split(61, 2) == [31, 30]  # vLLM get_pp_indices (planner-notes §3.2)
    assert pp_layer_split(61, 4) == [15, 15, 16, 15]
    m = mem("deepseek-v3", tp=8, pp=2, context=8192, seqs=1, weight_dtype="fp8")
    assert m.kv_per_seq in (31 * 576 * 2 * 8192, 30 * 576 * 2 * 8192)


def test_llama_8b_fits_tp1_on_an_80gb_h100() -> None:
    m = mem("llama-3.1-8b")
    assert m.verdict == "fits"
    assert m.weights / GIB == pytest.approx(15.0, abs=0.1)  # planner-notes §4 row 1
    assert m.usable == H100_BYTES * 0.9


def test_notes_worked_example_llama_70b_tp4() -> None:
    assert mem("llama-3.1-70b", tp=4).weights / GIB == pytest.approx(32.9, abs=0.1)  # planner-notes §4


def test_moe_experts_split_over_tp_times_dp() -> None:
    a = mem("qwen3-235b-a22b", tp=8, dp=1)
    b = mem("qwen3-235b-a22b", tp=8, dp=2)
    assert b.expert_weights == a.expert_weights / 2
    assert b.weights - b.expert_weights == pytest.approx(a.weights - a.expert_weights)  # attention replicated per DP
    assert a.weights / GIB == pytest.approx(54.7, abs=0.3)  # planner-notes §4


def test_fp8_weights_about_half_of_bf16() -> None:
    bf16 = mem("llama-3.1-70b", tp=8).weights
    fp8 = mem("llama-3.1-70b", tp=8, weight_dtype="fp8").weights
    assert 0.5 < fp8 / bf16 < 0.53  # 1.004 B/param, embeddings kept in bf16


def test_tight_is_under_ten_percent_headroom_and_one_more_sequence_does_not_fit() -> None:
    cap = mem("llama-3.1-8b", context=8192, seqs=1).max_seqs
    at_cap = mem("llama-3.1-8b", context=8192, seqs=cap)
    assert at_cap.verdict == "tight" and 0 <= at_cap.headroom < 0.1 * at_cap.usable
    assert mem("llama-3.1-8b", context=8192, seqs=cap + 1).verdict == "does-not-fit"
    assert mem("llama-3.1-8b", context=8192, seqs=cap // 2).verdict == "fits"


def test_formulas_show_the_numbers() -> None:
    f = mem("llama-3.1-70b", tp=8, context=32768, seqs=8).formulas
    assert any("max(1, 8 kv_heads // TP 8)" in s and "32768 tokens" in s for s in f)
    assert any("gpu_memory_utilization 0.9" in s for s in f)
