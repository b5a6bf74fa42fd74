"""The whole plan: enumeration, verdicts, degraded-node handling and ranked recommendations."""

from __future__ import annotations

import json

import pytest
from _planfleet import fleet, node

from preflight.plan import PlanError, PlanOptions, evaluate, load_model, plan


def find(p, tp: int, pp: int = 1, dp: int = 1, ep: int = 1):
    return next(c for c in p.candidates if (c.tp, c.pp, c.dp, c.ep) == (tp, pp, dp, ep))


def test_llama_8b_on_one_node_recommends_safe_configs_only() -> None:
    p = plan(fleet(node()), load_model("llama-3.1-8b"), PlanOptions())
    assert p.recommend_latency and p.recommend_throughput
    assert all(c.verdict == "safe" for c in p.recommend_latency + p.recommend_throughput)
    assert find(p, 1).verdict == "safe"
    rates = [c.estimate("decode_tokens_per_s_per_seq") for c in p.recommend_latency]
    assert rates == sorted(rates, reverse=True)


def test_unsafe_layouts_stay_in_the_table_with_reasons() -> None:
    p = plan(fleet(node()), load_model("llama-3.1-70b"), PlanOptions())
    tp6 = find(p, 6)
    assert tp6.verdict == "unsafe" and "tp.heads" in {r.code for r in tp6.reasons}
    tp1 = find(p, 1)
    assert tp1.verdict == "unsafe" and "memory.fit" in {r.code for r in tp1.reasons}
    assert all(c.gpus <= 8 for c in p.candidates)
    assert tp6 not in p.recommend_latency and tp1 not in p.recommend_throughput


def test_dense_models_get_no_ep_layouts_and_moe_models_do() -> None:
    dense = plan(fleet(node()), load_model("llama-3.1-70b"), PlanOptions())
    assert all(c.ep == 1 for c in dense.candidates)
    moe = plan(fleet(node(model="NVIDIA H200", mib=143771)), load_model("qwen3-235b-a22b"), PlanOptions(weight_dtype="fp8"))
    assert find(moe, 8, 1, 1, 8).verdict == "safe"  # EP keeps each expert whole: 1536 % 128 == 0
    assert find(moe, 8).verdict == "unsafe"  # 1536 / 8 = 192


def test_degraded_node_makes_tp8_unsafe_until_it_is_excluded() -> None:
    m, opts = load_model("llama-3.1-70b"), PlanOptions()
    degraded = fleet(node("gpu-01"), node("gpu-04", domain=7))
    both = evaluate(degraded, m, opts, tp=8, dp=2)
    assert both.verdict == "unsafe" and "tp.nvlink" in {r.code for r in both.reasons}
    one = evaluate(degraded, m, opts, tp=8, dp=1)
    assert one.nodes_used == ("gpu-01",) and one.verdict == "safe"  # placed on the healthy node
    healthy = fleet(node("gpu-01"), excluded=(("gpu-04", "nvlink.links: 1 link down"),))
    p = plan(healthy, m, opts)
    assert find(p, 8).verdict == "safe"
    assert p.excluded == (("gpu-04", "nvlink.links: 1 link down"),)


def test_multi_node_candidate_with_driver_mismatch_is_unsafe() -> None:
    f = fleet(node("gpu-01", driver="550.54.15"), node("gpu-02", driver="535.161.08"))
    p = plan(f, load_model("llama-3.1-405b"), PlanOptions(weight_dtype="fp8"))
    c = find(p, 8, 2)
    assert c.nodes_used == ("gpu-01", "gpu-02")
    assert c.verdict == "unsafe" and "fleet.driver" in {r.code for r in c.reasons if r.severity == "unsafe"}
    assert all(len(c.nodes_used) == 1 for c in p.recommend_latency + p.recommend_throughput)


def test_deepseek_v3_on_two_h200_nodes() -> None:
    h200 = dict(model="NVIDIA H200", mib=143771)
    p = plan(fleet(node("gpu-01", **h200), node("gpu-02", **h200)), load_model("deepseek-v3"),
             PlanOptions(weight_dtype="fp8", context=32768, seqs=32))
    tp8pp2, tp8dp2 = find(p, 8, 2), find(p, 8, 1, 2, 16)
    assert tp8pp2.verdict == "safe" and tp8dp2.verdict == "safe"
    # MLA: DP splits the sequences, so DP2+EP16 holds half the KV per GPU of TP8 alone.
    assert tp8dp2.memory.kv == pytest.approx(find(p, 8).memory.kv / 2)
    assert p.recommend_throughput


def test_enumeration_is_bounded() -> None:
    nodes = [node(f"gpu-{i:02d}") for i in range(16)]
    p = plan(fleet(*nodes), load_model("deepseek-v3"), PlanOptions(weight_dtype="fp8"))
    n = 128
    bound = (8 + 1) * (n.bit_length() + 2) ** 2 * 2  # planner.py docstring
    assert 0 < len(p.candidates) <= bound
    assert len({(c.tp, c.pp, c.dp, c.ep) for c in p.candidates}) == len(p.candidates)
    assert max(c.tp for c in p.candidates) == 16  # one cross-node TP example, no more


def test_max_nodes_limits_the_fleet() -> None:
    p = plan(fleet(node("gpu-01"), node("gpu-02")), load_model("llama-3.1-8b"), PlanOptions(max_nodes=1))
    assert all(c.nodes_used == ("gpu-01",) for c in p.candidates)


def test_no_healthy_nodes_is_a_plan_error() -> None:
    with pytest.raises(PlanError, match="no healthy nodes"):
        plan(fleet(excluded=(("gpu-01", "ecc"),)), load_model("llama-3.1-8b"), PlanOptions())


def test_to_dict_is_json_with_placement() -> None:
    p = plan(fleet(node()), load_model("llama-3.1-8b"), PlanOptions())
    d = json.loads(json.dumps(p.to_dict()))
    assert d["model"]["id"] == "meta-llama/Llama-3.1-8B"
    assert d["recommend_latency"][0] == p.recommend_latency[0].label
    c = next(x for x in d["candidates"] if x["label"] == "TP4 PP1 DP1")
    assert c["placement"] == [{"node": "gpu-01", "gpus": [0, 1, 2, 3], "cuda_visible_devices": "0,1,2,3"}]
    assert c["memory"]["verdict"] == "fits" and c["memory"]["formulas"]
