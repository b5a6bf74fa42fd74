"""Estimates: formulas checked by hand, and missing measurements left as None."""

from __future__ import annotations

import pytest
from _planfleet import fleet, node

from preflight.plan import PlanOptions, evaluate, load_model
from preflight.plan.estimate import DECODE_EFFICIENCY, allreduce_seconds, pp_bubble


def test_allreduce_time_from_busbw() -> None:
    # 1 GB over 8 ranks at 100 GB/s busbw: 1e9 × 2·7/8 / 1e11 = 17.5 ms, + 10 µs latency
    assert allreduce_seconds(1e9, 8, 100.0, None) == pytest.approx(0.0175)
    assert allreduce_seconds(1e9, 8, 100.0, 10.0) == pytest.approx(0.01751)


def test_pp_bubble() -> None:
    assert pp_bubble(4, 4) == pytest.approx(3 / 7)
    assert pp_bubble(1, 8) == 0


def test_decode_rate_tp1_is_hbm_over_bytes_read() -> None:
    c = evaluate(fleet(node()), load_model("llama-3.1-8b"), PlanOptions(context=8192, seqs=4), tp=1)
    read = c.memory.weights + c.memory.kv
    # gpus.yaml h100-sxm 3.35 TB/s × the calibrated decode efficiency 0.59 (docs/planner-calibration.md)
    assert DECODE_EFFICIENCY == 0.59
    assert c.estimate("decode_tokens_per_s_per_seq") == pytest.approx(3350e9 * 0.59 / read)
    assert c.estimate("decode_tokens_per_s_aggregate") == pytest.approx(4 * 3350e9 * 0.59 / read)
    assert all(e.kind == "estimate" for e in c.estimates)


def test_tp_allreduce_uses_the_measured_busbw() -> None:
    m = load_model("llama-3.1-70b")
    c = evaluate(fleet(node(busbw=400.0)), m, PlanOptions(seqs=16), tp=8)
    msg = 8192 * 2 * 16
    assert c.estimate("tp_allreduce_ms_per_step") == pytest.approx(2 * 80 * msg * 2 * 7 / 8 / 400e9 * 1e3)
    slower = evaluate(fleet(node(busbw=100.0)), m, PlanOptions(seqs=16), tp=8)
    assert slower.estimate("decode_tokens_per_s_per_seq") < c.estimate("decode_tokens_per_s_per_seq")


def test_unmeasured_busbw_gives_no_allreduce_number() -> None:
    c = evaluate(fleet(node(busbw=None)), load_model("llama-3.1-70b"), PlanOptions(), tp=8)
    e = next(x for x in c.estimates if x.name == "tp_allreduce_ms_per_step")
    assert e.value is None and "not measured" in e.formula


def test_pp_bubble_reported_for_pp() -> None:
    c = evaluate(fleet(node()), load_model("llama-3.1-70b"), PlanOptions(), tp=4, pp=2)
    assert c.estimate("pp_bubble_fraction") == pytest.approx(1 / 3)
