"""Issue 14, planner core: described fleets, fabric evidence levels, objectives, guidance, bundle records."""

from __future__ import annotations

import pytest
from _planfleet import fleet, node

from preflight.plan import PlanOptions, load_model
from preflight.plan.described import described_fleet, what_if
from preflight.plan.fabric import newest_passing
from preflight.plan.result import plan_on


def _labels(r, verdict: str) -> dict[str, str]:
    return {c.label: c.verdict_label for c in r.plan.candidates if c.verdict == verdict}


def test_described_2x8_h100_ib_gives_tp8_pp2_safe_estimated_and_tp16_unsafe() -> None:
    shape = described_fleet(["2x8:h100-sxm,ib=8x400"])
    assert [n.name for n in shape.nodes] == ["h100-sxm-01", "h100-sxm-02"] and all(n.described for n in shape.nodes)
    r = plan_on(shape, load_model("llama-3.1-405b"), PlanOptions(), source="described")
    assert _labels(r, "safe")["TP8 PP2 DP1"] == "safe (estimated)"
    tp16 = next(c for c in r.plan.candidates if c.label == "TP16 PP1 DP1")
    assert tp16.verdict == "unsafe" and any(x.code == "tp.cross_node" for x in tp16.reasons)
    est = next(x for x in r.plan.recommend_throughput[0].reasons if x.code == "fabric.estimated")
    assert "0.92" in est.text and "nccl-tests#290" in est.fact_source and "described fleet, not measured" in est.fact_source


def test_described_without_ib_is_risky_and_guidance_says_describe_the_fabric() -> None:
    r = plan_on(described_fleet(["2x8:h100-sxm"]), load_model("llama-3.1-405b"), PlanOptions(), source="d")
    assert not r.plan.recommend_throughput and r.plan.best_risky
    assert any("ib=" in h.change for h in r.guidance)


@pytest.mark.parametrize("term,needle", [("2x8:h100", "did you mean h100-sxm"), ("2x8:h100-sxm,ib=8", "ib="),
                                         ("x8:h100-sxm", "expected"), ("2x8:h100-sxm,nvl=12", "whole number")])
def test_bad_fleet_terms_are_one_line_errors(term: str, needle: str) -> None:
    with pytest.raises(ValueError, match=needle.replace("=", "=")):
        described_fleet([term])


def test_nvl_domain_lets_tp_span_nodes_inside_it() -> None:
    shape = described_fleet(["4x4:b200,nvl=16"])
    assert len(shape.nvlink_domains) == 1 and shape.nvlink_domains[0].gpus == 16
    r = plan_on(shape, load_model("llama-3.1-70b"), PlanOptions(), source="d")
    tp8 = next(c for c in r.plan.candidates if c.label == "TP8 PP1 DP1")
    assert tp8.verdict == "safe" and any(x.code == "tp.nvlink_domain" for x in tp8.reasons)


def test_mixed_fleet_numbers_nodes_per_gpu_and_mixed_layouts_are_unsafe() -> None:
    shape = described_fleet(["1x8:h100-sxm,ib=8x400", "1x8:h200-sxm,ib=8x400"])
    assert [n.name for n in shape.nodes] == ["h100-sxm-01", "h200-sxm-01"]
    r = plan_on(shape, load_model("llama-3.1-405b"), PlanOptions(weight_dtype="fp8"), source="d")
    assert any(x.code == "fleet.gpu_mix" for c in r.plan.candidates if len(set(c.nodes_used)) > 1 for x in c.reasons)


def test_what_if_without_and_plus() -> None:
    f = fleet(node("gpu-01"), node("gpu-02"))
    assert [n.name for n in what_if(f, without=["gpu-02"]).nodes] == ["gpu-01"]
    plus = what_if(f, plus=["2:gpu-01"])
    assert [n.name for n in plus.nodes][-2:] == ["gpu-01+1", "gpu-01+2"]
    with pytest.raises(ValueError, match="did you mean gpu-01"):
        what_if(f, without=["gpu-1"])


def test_objectives_and_throughput_at_capacity() -> None:
    shape = fleet(node("gpu-01"), internode=None)
    m = load_model("llama-3.1-8b")
    at_cap = plan_on(shape, m, PlanOptions(seqs_given=False), source="t").plan
    assert at_cap.recommend_throughput[0].estimate("decode_tokens_per_s_at_capacity")
    assert at_cap.recommend_capacity[0].capacity == max(c.capacity for c in at_cap.recommend_throughput)
    only = plan_on(shape, m, PlanOptions(objective="capacity"), source="t")
    assert list(only.launch) == ["capacity"]


def test_guidance_for_405b_at_131k_names_kv_per_sequence_and_what_fits() -> None:
    r = plan_on(described_fleet(["2x8:h100-sxm,ib=8x400"]), load_model("llama-3.1-405b"),
                PlanOptions(context=131072), source="d")
    assert not r.plan.recommend_throughput
    fact = r.guidance[0]
    assert "67.6 GB" in fact.result  # 126 layers x 2 x 8 heads x 128 x 131072 x 2 B
    changes = [h.change for h in r.guidance]
    assert any(c.startswith("--seqs") for c in changes) and any("more node" in c for c in changes)


def test_newest_passing_multinode_record_is_used() -> None:
    recs = [{"busbw": 300.0, "status": "pass", "transport": ["IB"], "gdrdma": True, "hosts": ["a", "b"],
             "gpus_per_node": 8, "command": "old", "created": 1.0},
            {"busbw": 350.0, "status": "pass", "transport": ["IB"], "gdrdma": True, "hosts": ["a", "b"],
             "gpus_per_node": 8, "command": "new", "created": 2.0},
            {"busbw": 10.0, "status": "fail", "transport": ["Socket"], "gdrdma": None, "hosts": ["a", "b"],
             "gpus_per_node": 8, "command": "newest but failed", "created": 3.0}]
    bw, src = newest_passing(recs)
    assert bw == 350.0 and "new" in src and "GPUDirect" in src
    assert newest_passing([{"busbw": None, "status": "pass"}]) is None and newest_passing(None) is None
