"""A layout's link rates come from one node of each kind, but whether it crosses nodes or leaves an
NVLink domain depends on every node it uses. Two mistakes this guards against (both found while
speeding the planner up, issue 14): the at-capacity throughput of a multi-node layout on identical
nodes priced its PP hand-offs at the intra-node rate, and an EP group spanning two NVL72 domains had
its all-to-all priced at NVLink speed because its one representative node sat inside a domain.
"""

from __future__ import annotations

from preflight.plan import PlanOptions, load_model
from preflight.plan.described import described_fleet
from preflight.plan.planner import evaluate


def _est(c: object, name: str) -> object:
    return next(e for e in c.estimates if e.name == name)  # type: ignore[attr-defined]


def test_at_capacity_throughput_of_a_multinode_layout_uses_the_fabric() -> None:
    fleet = described_fleet(["2x8:h100-sxm,ib=8x400"])
    model = load_model("llama-3.1-405b")
    c = evaluate(fleet, model, PlanOptions(seqs_given=False), tp=8, pp=2)
    assert c is not None and len(c.nodes_used) == 2 and c.memory.max_seqs > 0
    at_cap = _est(c, "decode_tokens_per_s_at_capacity").value  # type: ignore[attr-defined]
    # "at capacity" means: the aggregate rate with --seqs set to the layout's capacity, fabric and all
    full = evaluate(fleet, model, PlanOptions(seqs=c.memory.max_seqs), tp=8, pp=2)
    assert full is not None
    assert at_cap == _est(full, "decode_tokens_per_s_aggregate").value  # type: ignore[attr-defined]


def test_ep_across_two_nvl72_domains_is_not_priced_at_nvlink_speed() -> None:
    fleet = described_fleet(["36x4:gb200,nvl=72,ib=4x400"])
    assert len(fleet.nvlink_domains) == 2
    model = load_model("deepseek-v3")
    opts = PlanOptions(weight_dtype="fp8")
    inside = evaluate(fleet, model, opts, tp=4, dp=18, ep=72)
    across = evaluate(fleet, model, opts, tp=4, dp=36, ep=144)
    assert inside is not None and across is not None
    assert len(inside.nodes_used) == 18 and len(across.nodes_used) == 36
    a_in = _est(inside, "ep_alltoall_ms_per_step").formula  # type: ignore[attr-defined]
    a_out = _est(across, "ep_alltoall_ms_per_step").formula  # type: ignore[attr-defined]
    assert "estimate" not in a_in and "estimate" in a_out, (a_in, a_out)
