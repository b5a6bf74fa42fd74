"""What the planner shares or defers to plan a 1,000-node fleet in tens of milliseconds (issue 14) must
not change a single answer:

- an unsafe layout's estimates are worked out when first read, and equal what the same layout gives
  when estimated at once (`_estimates` on its own);
- a placement is built when first read, and equals `place()` on the nodes;
- reasons worked out once per part (the heads per TP size, the fleet's consistency per kinds of node)
  equal those of a layout judged on its own pool;
- the garbage collector, paused while a plan is built, is as it was after.
"""

from __future__ import annotations

import gc

from preflight.plan import PlanOptions, load_model, plan
from preflight.plan.described import described_fleet
from preflight.plan.planner import Pool, _estimates, evaluate, place
from preflight.plan.shapes import FleetShape


def _fleet() -> FleetShape:
    return described_fleet(["3x8:h100-sxm,ib=8x400", "2x8:a100-sxm-80gb,ib=4x200"])


def test_an_unsafe_layouts_estimates_are_those_it_would_get_at_once() -> None:
    fleet, model, opts = _fleet(), load_model("llama-3.1-70b"), PlanOptions()
    c = evaluate(fleet, model, opts, tp=3, pp=1, dp=2)  # TP 3 does not divide 64 heads: unsafe
    assert c is not None and c.verdict == "unsafe"
    before = callable(c.estimates_or_later)  # not worked out yet
    got = [(e.name, e.value, e.formula) for e in c.estimates]
    assert before and not callable(c.estimates_or_later)  # kept once read
    pool = Pool(fleet.nodes)
    placed = pool.place(3, 1, 2)
    assert placed is not None
    _placement, names, used = placed
    mem = c.memory
    direct = _estimates(fleet, model, mem, used, opts, tp=3, pp=1, dp=2, multinode=len(names) > 1, seqs=opts.seqs,
                        names=names)
    assert got == [(e.name, e.value, e.formula) for e in direct]
    assert any(name == "decode_tokens_per_s_per_seq" and value for name, value, _ in got)


def test_a_placement_read_later_is_the_one_place_gives() -> None:
    fleet = _fleet()
    model = load_model("llama-3.1-405b")
    p = plan(fleet, model, PlanOptions())
    assert p.candidates
    for c in p.candidates:
        assert c.placement == place(fleet.nodes, c.tp, c.pp, c.dp), c.label
        assert tuple(pl.node for pl in c.placement) == c.nodes_used


def test_reasons_shared_across_layouts_equal_those_judged_alone() -> None:
    fleet, model, opts = _fleet(), load_model("deepseek-v3"), PlanOptions(weight_dtype="fp8")
    p = plan(fleet, model, opts)
    for c in p.candidates:
        alone = evaluate(fleet, model, opts, tp=c.tp, pp=c.pp, dp=c.dp, ep=c.ep)  # its own pool, nothing shared
        assert alone is not None
        assert (alone.reasons, alone.verdict) == (c.reasons, c.verdict), c.label


def test_the_collector_is_as_it_was_after_a_plan() -> None:
    fleet, model = _fleet(), load_model("llama-3.1-70b")
    assert gc.isenabled()
    plan(fleet, model, PlanOptions())
    assert gc.isenabled()
    gc.disable()
    try:
        plan(fleet, model, PlanOptions())
        assert not gc.isenabled()  # a caller that turned it off keeps it off
    finally:
        gc.enable()
