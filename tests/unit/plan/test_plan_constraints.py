"""vLLM's layout rules and the fleet checks, each reason naming the fact it came from."""

from __future__ import annotations

from _planfleet import fleet, node

from preflight.plan import PlanOptions, load_model
from preflight.plan.constraints import fleet_reasons, model_reasons


def codes(reasons, severity: str | None = None) -> set[str]:
    return {r.code for r in reasons if severity is None or r.severity == severity}


def mr(name: str, *, tp: int = 1, pp: int = 1, dp: int = 1, ep: int = 1, **opts):
    return model_reasons(load_model(name), tp=tp, pp=pp, dp=dp, ep=ep, opts=PlanOptions(**opts))


def fr(name: str, nodes, *, tp: int = 1, pp: int = 1, dp: int = 1, ep: int = 1, internode: float | None = 360.0, **opts):
    return fleet_reasons(load_model(name), tp=tp, pp=pp, dp=dp, ep=ep, nodes=tuple(nodes),
                         fleet=fleet(*nodes, internode=internode), opts=PlanOptions(**opts))


def test_a_64_head_model_cannot_run_tp6() -> None:
    r = mr("llama-3.1-70b", tp=6)
    assert "tp.heads" in codes(r, "unsafe")
    assert next(x for x in r if x.code == "tp.heads").fact_source == "models.yaml meta-llama/Llama-3.1-70B: num_attention_heads=64"
    assert "tp.heads" not in codes(mr("llama-3.1-70b", tp=8))


def test_kv_heads_must_divide_or_be_divided_by_tp() -> None:
    assert "tp.kv_heads" in codes(mr("qwen2.5-7b", tp=7), "unsafe")  # 28 heads ok, 4 KV heads vs 7
    assert "tp.kv_heads" in codes(mr("qwen2.5-7b", tp=14), "unsafe")  # 14 is not a multiple of 4
    r = mr("qwen2.5-7b", tp=28)
    assert "tp.kv_heads" not in codes(r) and "kv.replicated" in codes(r, "info")
    assert not codes(mr("qwen2.5-7b", tp=4), "unsafe")


def test_tp8_on_a_node_with_an_nvlink_link_down_is_unsafe() -> None:
    r = fr("llama-3.1-70b", [node("gpu-04", domain=7)], tp=8)
    bad = [x for x in r if x.code == "tp.nvlink"]
    assert bad and bad[0].severity == "unsafe"
    assert bad[0].fact_source == "gpu-04: nvlink domain 7 (topology) (bundle demo/gpu-04)"
    assert not fr("llama-3.1-70b", [node("gpu-04", domain=7)], tp=4)
    assert not fr("llama-3.1-70b", [node("gpu-01", domain=8)], tp=8)


def test_tp_over_pcie_is_risky_above_two() -> None:
    pcie = [node("l40s-1", model="NVIDIA L40S", mib=46068, domain=1)]
    assert "tp.pcie" in codes(fr("llama-3.1-8b", pcie, tp=4), "risky")
    assert "tp.pcie" in codes(fr("llama-3.1-8b", pcie, tp=2), "info")
    assert not fr("llama-3.1-8b", pcie, tp=1)


def test_tp_across_nodes_is_unsafe() -> None:
    r = fr("llama-3.1-405b", [node("gpu-01"), node("gpu-02")], tp=16)
    assert "tp.cross_node" in codes(r, "unsafe")


def test_ep_is_rejected_for_a_dense_model() -> None:
    assert "ep.dense" in codes(mr("llama-3.1-70b", tp=4, dp=2, ep=8), "unsafe")
    assert "ep.dense" not in codes(mr("qwen3-235b-a22b", tp=4, dp=2, ep=8))


def test_ep_must_be_tp_times_dp_and_split_the_experts() -> None:
    assert "ep.size" in codes(mr("mixtral-8x7b", tp=2, dp=2, ep=2), "unsafe")
    assert "ep.experts" in codes(mr("mixtral-8x7b", tp=4, dp=4, ep=16), "unsafe")  # 8 experts over 16
    assert not codes(mr("mixtral-8x7b", tp=4, dp=2, ep=8), "unsafe")


def test_qwen3_235b_fp8_block_fails_at_tp8() -> None:
    # models.yaml has moe_intermediate_size 1536; an FP8 checkpoint uses 128x128 blocks:
    # 1536 / 8 = 192 is not a multiple of 128 (vllm-project/vllm#17569).
    r = mr("qwen3-235b-a22b", tp=8, weight_dtype="fp8")
    bad = [x for x in r if x.code == "quant.block"]
    assert bad and bad[0].severity == "unsafe" and "192" in bad[0].text
    assert "moe_intermediate_size=1536" in bad[0].fact_source
    assert "quant.block" not in codes(mr("qwen3-235b-a22b", tp=4, weight_dtype="fp8"))  # 384 = 3 × 128
    assert "quant.block" not in codes(mr("qwen3-235b-a22b", tp=8, weight_dtype="bf16"))
    assert "quant.block" not in codes(mr("qwen3-235b-a22b", tp=8, dp=1, ep=8, weight_dtype="fp8"))  # EP: experts whole
    assert "quant.block" in codes(mr("qwen3-235b-a22b", tp=4, dp=2, weight_dtype="fp8"))  # experts over TP·DP = 8


def test_deepseek_fp8_is_aligned_at_tp8_but_not_tp32() -> None:
    assert "quant.block" not in codes(mr("deepseek-v3", tp=8, weight_dtype="fp8"))
    assert "quant.block" in codes(mr("deepseek-v3", tp=32, weight_dtype="fp8"))  # 18432/32 = 576 (sglang#3345)


def test_mla_replication_is_noted() -> None:
    assert "kv.mla_replicated" in codes(mr("deepseek-v3", tp=8), "info")
    assert "kv.mla_replicated" not in codes(mr("deepseek-v3", tp=1))


def test_multi_node_driver_mismatch_is_unsafe_and_names_both_nodes() -> None:
    nodes = [node("gpu-01", driver="550.54.15"), node("gpu-02", driver="535.161.08")]
    r = fr("llama-3.1-70b", nodes, tp=8, pp=2)
    bad = [x for x in r if x.code == "fleet.driver"]
    assert bad and bad[0].severity == "unsafe"
    assert "gpu-01: driver 550.54.15" in bad[0].fact_source and "gpu-02: driver 535.161.08" in bad[0].fact_source
    assert not codes(fr("llama-3.1-70b", [node("gpu-01"), node("gpu-02")], tp=8, pp=2), "unsafe")


def test_mixed_gpu_models_are_unsafe() -> None:
    nodes = [node("gpu-01"), node("gpu-09", model="NVIDIA H200", mib=143771)]
    assert "fleet.gpu_mix" in codes(fr("llama-3.1-70b", nodes, tp=8, pp=2), "unsafe")


def test_pp_across_nodes_needs_fabric_evidence() -> None:
    two = [node("gpu-01"), node("gpu-02")]
    assert not codes(fr("llama-3.1-70b", two, tp=8, pp=2), "risky")
    # issue 14: healthy ports without a measurement give an estimate (labelled), no longer "risky"
    est = fr("llama-3.1-70b", two, tp=8, pp=2, internode=None)
    assert not codes(est, "risky") and "fabric.estimated" in codes(est)
    assert "fabric.unmeasured" in codes(fr("llama-3.1-70b", [node("gpu-01", ib=None), node("gpu-02", ib=None)],
                                           tp=8, pp=2, internode=None), "risky")
    slow = [node("gpu-01", ib=50.0), node("gpu-02", ib=50.0)]
    assert "fabric.slow" in codes(fr("llama-3.1-70b", slow, tp=8, pp=2), "risky")
    none = [node("gpu-01", ib=None), node("gpu-02", ib=None)]
    assert "fabric.none" in codes(fr("llama-3.1-70b", none, tp=8, pp=2), "risky")


def test_dp_replicas_inside_nodes_do_not_need_the_fabric() -> None:
    none = [node("gpu-01", ib=None), node("gpu-02", ib=None)]
    r = fr("llama-3.1-70b", none, tp=8, dp=2, internode=None)  # two independent TP8 servers
    assert not codes(r, "risky") and "fabric.independent" in codes(r)
    # the same nodes with PP across them do need it
    assert "fabric.none" in codes(fr("llama-3.1-70b", none, tp=8, pp=2, internode=None), "risky")
    # an MoE model's expert layers span TP x DP ranks even without EP: its DP is not independent
    assert "fabric.none" in codes(fr("deepseek-v3", none, tp=8, dp=2, internode=None), "risky")


def test_fp8_needs_ada_or_hopper() -> None:
    a100 = [node("a100-1", model="NVIDIA A100-SXM4-80GB")]
    assert "gpu.dtype" in codes(fr("llama-3.1-8b", a100, weight_dtype="fp8"), "unsafe")
    assert "gpu.dtype" not in codes(fr("llama-3.1-8b", a100, weight_dtype="bf16"))


def test_context_beyond_max_position_embeddings_is_unsafe() -> None:
    assert "context.max" in codes(mr("qwen3-32b", context=65536), "unsafe")  # 40960
    assert "context.max" not in codes(mr("qwen3-32b", context=32768))
