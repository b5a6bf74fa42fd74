"""Model catalog and config.json loading; parameter counts cross-checked against the cards."""

from __future__ import annotations

import json

import pytest

from preflight.plan import PlanError, catalog, load_model

CARDED = [m for m in catalog() if m.params_card]


@pytest.mark.parametrize("model", CARDED, ids=lambda m: m.short_name)
def test_computed_params_match_the_published_card(model) -> None:
    # param_check.py lands within 1.5% for every entry (planner-notes §7); Scout's card adds vision.
    tol = 0.015
    assert abs(model.params / model.params_card - 1) < tol, (model.params, model.params_card)


def test_llama_70b_fields_and_params() -> None:
    m = load_model("meta-llama/Llama-3.1-70B")
    assert (m.layers, m.hidden, m.heads, m.kv_heads, m.head_dim) == (80, 8192, 64, 8, 128)
    assert not m.is_moe and not m.is_mla
    assert m.params == 70_553_706_496  # 2·V·d + 80·(attn + 2 norms + 3·d·f) + final norm
    assert m.source == "models.yaml meta-llama/Llama-3.1-70B"


@pytest.mark.parametrize("name", ["llama-3.1-70b", "LLAMA-3.1-70B", "Meta-Llama/llama-3.1-70b"])
def test_short_and_case_insensitive_names(name: str) -> None:
    assert load_model(name).id == "meta-llama/Llama-3.1-70B"


def test_deepseek_short_name_is_mla_moe() -> None:
    m = load_model("deepseek-v3")
    assert m.id == "deepseek-ai/DeepSeek-V3"
    assert m.is_mla and m.is_moe
    assert (m.kv_lora_rank, m.qk_rope_head_dim, m.n_routed_experts, m.first_k_dense) == (512, 64, 256, 3)
    assert m.moe_layers == 58 and m.dense_layers == 3
    assert abs(m.active_params / 37e9 - 1) < 0.02


def test_ambiguous_name_lists_the_matches() -> None:
    with pytest.raises(PlanError, match="ambiguous") as exc:
        load_model("llama-3.1")
    assert "meta-llama/Llama-3.1-8B" in str(exc.value) and "meta-llama/Llama-3.1-70B" in str(exc.value)


def test_unknown_name_suggests_close_matches() -> None:
    with pytest.raises(PlanError, match="unknown model") as exc:
        load_model("llama-3.2-70b")
    assert "Llama-3.1-70B" in str(exc.value)


def _write(tmp_path, cfg: dict):
    p = tmp_path / "config.json"
    p.write_text(json.dumps(cfg))
    return p


def test_config_json_path_and_folder(tmp_path) -> None:
    cfg = {"architectures": ["LlamaForCausalLM"], "num_hidden_layers": 32, "hidden_size": 4096,
           "intermediate_size": 14336, "num_attention_heads": 32, "num_key_value_heads": 8,
           "vocab_size": 128256, "max_position_embeddings": 131072, "_name_or_path": "my/llama-8b"}
    p = _write(tmp_path, cfg)
    m = load_model(str(p))
    assert m.id == "my/llama-8b" and m.head_dim == 128  # head_dim derived: hidden / heads
    assert m.params == load_model("llama-3.1-8b").params
    assert load_model(tmp_path).params == m.params
    assert m.source == f"config.json {p}"


def test_config_json_quantization_block_is_read(tmp_path) -> None:
    cfg = {"num_hidden_layers": 2, "hidden_size": 1024, "intermediate_size": 3072, "num_attention_heads": 8,
           "vocab_size": 1000, "quantization_config": {"quant_method": "fp8", "weight_block_size": [128, 128]}}
    m = load_model(_write(tmp_path, cfg))
    assert (m.quant_method, m.quant_block) == ("fp8", 128)


def test_config_json_missing_key_is_named(tmp_path) -> None:
    cfg = {"num_hidden_layers": 32, "num_attention_heads": 32, "vocab_size": 1000, "intermediate_size": 10}
    with pytest.raises(PlanError, match="'hidden_size'"):
        load_model(_write(tmp_path, cfg))


def test_config_json_mla_missing_rank_is_named(tmp_path) -> None:
    cfg = {"num_hidden_layers": 2, "hidden_size": 1024, "intermediate_size": 3072, "num_attention_heads": 8,
           "vocab_size": 1000, "kv_lora_rank": 512}
    with pytest.raises(PlanError, match="qk_rope_head_dim"):
        load_model(_write(tmp_path, cfg))


def test_bad_json_is_a_plan_error(tmp_path) -> None:
    p = tmp_path / "config.json"
    p.write_text("{not json")
    with pytest.raises(PlanError, match="not a readable config.json"):
        load_model(p)
    with pytest.raises(PlanError, match="no such config.json"):
        load_model(tmp_path / "missing" / "config.json")
