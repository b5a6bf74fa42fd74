"""Sliding-window / chunked attention in KV sizing: windowed layers hold at most the window."""

from __future__ import annotations

import pytest

from preflight.plan import PlanOptions, load_model, memory_per_gpu
from preflight.plan.models import spec_from_config

GB = 80e9


def _kv_per_seq(name: str, ctx: int, tp: int = 1, pp: int = 1) -> float:
    m = load_model(name)
    return memory_per_gpu(m, tp=tp, pp=pp, dp=1, ep=1, gpu_memory_bytes=GB, opts=PlanOptions(context=ctx, seqs=1)).kv_per_seq


def test_gpt_oss_alternates_window_and_full_layers() -> None:
    m = load_model("gpt-oss-120b")
    assert m.sliding_window == 128 and m.windowed_layer_count == 18
    assert m.layer_window(0) == 128 and m.layer_window(1) is None
    # 2 × 8 kv heads × 64 head_dim × 2 B = 2048 B per token per layer;
    # 18 full layers × 131072 + 18 windowed layers × 128 tokens
    assert _kv_per_seq("gpt-oss-120b", 131072) == pytest.approx(2048 * (18 * 131072 + 18 * 128))


def test_window_longer_than_context_changes_nothing() -> None:
    # at 128 tokens of context the window caps nothing: 36 layers × 128 tokens
    assert _kv_per_seq("gpt-oss-120b", 128) == pytest.approx(2048 * 36 * 128)


def test_llama4_chunked_layers_capped_at_chunk() -> None:
    m = load_model("llama-4-scout")
    assert m.sliding_window == 8192 and m.windowed_layer_count == 36  # every 4th of 48 layers global
    assert m.layer_window(3) is None and m.layer_window(0) == 8192
    # 2 × 8 × 128 × 2 B = 4096 B per token per layer; 12 global × 131072 + 36 chunked × 8192
    assert _kv_per_seq("llama-4-scout", 131072) == pytest.approx(4096 * (12 * 131072 + 36 * 8192))


def test_dense_models_without_window_unchanged() -> None:
    # Llama-3.1-8B: 2 × 32 × 8 × 128 × 2 B × 8192 = 1.07 GB
    assert _kv_per_seq("llama-3.1-8b", 8192) == pytest.approx(2 * 32 * 8 * 128 * 2 * 8192)


def test_config_json_forms() -> None:
    base = {"num_hidden_layers": 6, "hidden_size": 1024, "num_attention_heads": 8, "vocab_size": 1000,
            "intermediate_size": 4096, "num_key_value_heads": 2}
    mistral = spec_from_config({**base, "sliding_window": 4096}, model_id="m", source="t")
    assert mistral.windowed_layer_count == 6  # Mistral-7B-v0.1: every layer windowed
    qwen = spec_from_config({**base, "sliding_window": 4096, "use_sliding_window": False}, model_id="q", source="t")
    assert qwen.sliding_window is None and qwen.windowed_layer_count == 0
    gemma3 = spec_from_config({**base, "sliding_window": 1024, "sliding_window_pattern": 6}, model_id="g", source="t")
    assert [gemma3.layer_window(i) for i in range(6)] == [1024] * 5 + [None]
    types = ["sliding_attention", "full_attention"] * 3
    listed = spec_from_config({**base, "sliding_window": 128, "layer_types": types}, model_id="o", source="t")
    assert [listed.layer_window(i) for i in range(6)] == [128, None] * 3


def test_pp_stage_sums_its_own_layers() -> None:
    # PP 2 of gpt-oss-120b: 18 layers per stage, 9 windowed + 9 full, either stage
    kv = _kv_per_seq("gpt-oss-120b", 65536, pp=2)
    assert kv == pytest.approx(2048 * (9 * 65536 + 9 * 128))


def test_formula_names_the_window() -> None:
    m = load_model("gpt-oss-120b")
    f = memory_per_gpu(m, tp=1, pp=1, dp=1, ep=1, gpu_memory_bytes=GB, opts=PlanOptions(context=131072, seqs=1)).formulas[1]
    assert "18 windowed layers × 128" in f and "window 128" in f
