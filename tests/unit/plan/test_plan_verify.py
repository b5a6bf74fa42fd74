"""plan --verify: the tests built for a layout (commands, message sizes) and their feedback, on recorded outputs."""

from __future__ import annotations

from pathlib import Path

import pytest

from preflight.cli import demo_bundle_path
from preflight.collect.bundle import load_bundle
from preflight.engine import judge
from preflight.parse.common import strip_corpus_header
from preflight.plan.models import load_model
from preflight.plan.result import build_plan
from preflight.plan.shapes import PlanOptions
from preflight.plan.verify import feed_back, message_sizes, run_tests, verify_tests

RECORDED = Path(__file__).resolve().parents[3] / "preflight" / "sim" / "profiles" / "h100-healthy" / "all-reduce-perf.txt"


@pytest.fixture(scope="module")
def result():
    report, facts = judge(load_bundle(demo_bundle_path()))
    return build_plan(report, facts, load_model("llama-3.1-70b"), PlanOptions(context=32768, seqs=8), source="demo")


def _cand(result, label):
    return next(c for c in result.plan.candidates if c.label == label)


def test_message_sizes_follow_the_model_and_layout(result) -> None:
    c = _cand(result, "TP8 PP1 DP2")
    decode, prefill = message_sizes(result.plan.model, c, result.plan.options)
    assert decode == 8192 * 2 * 4  # hidden x 2 B x 4 sequences per replica (8 over DP 2)
    assert prefill == 8192 * 2 * 8192  # hidden x 2 B x max_num_batched_tokens


def test_tp_groups_run_in_one_process_per_node(result) -> None:
    tests = verify_tests(_cand(result, "TP8 PP1 DP2"), result.plan.model, result.plan.options)
    assert [(t.kind, t.node) for t in tests] == [("tp_allreduce", "gpu-01"), ("tp_allreduce", "gpu-02")]
    assert tests[0].argv == ("env", "CUDA_VISIBLE_DEVICES=0,1,2,3,4,5,6,7", "all_reduce_perf", "-b", "65536",
                             "-e", "134217728", "-f", "2", "-g", "8")


def test_pp_across_nodes_uses_the_launcher(result) -> None:
    tests = verify_tests(_cand(result, "TP8 PP2 DP1"), result.plan.model, result.plan.options, launcher="srun")
    sendrecv = [t for t in tests if t.kind == "pp_sendrecv"]
    assert len(sendrecv) == 1 and sendrecv[0].nodes == ("gpu-01", "gpu-02")
    assert sendrecv[0].argv[0] == "srun" and "--nodelist=gpu-01,gpu-02" in sendrecv[0].argv
    assert "sendrecv_perf" in sendrecv[0].argv
    assert len([t for t in tests if t.kind == "tp_allreduce"]) == 2


def test_ep_layout_gets_an_alltoall() -> None:
    report, facts = judge(load_bundle(demo_bundle_path()))
    r = build_plan(report, facts, load_model("deepseek-v3"), PlanOptions(weight_dtype="fp8", kv_dtype="fp8",
                                                                         context=16384, seqs=32), source="demo",
                   internode=(362.5, "test"))
    c = next(c for c in r.plan.candidates if c.ep == 16 and c.tp == 8)  # TP8 DP2 EP16 over gpu-01 + gpu-02
    a2a = [t for t in verify_tests(c, r.plan.model, r.plan.options) if t.kind == "ep_alltoall"]
    assert len(a2a) == 1 and a2a[0].argv[0] == "mpirun" and "alltoall_perf" in a2a[0].argv


def test_recorded_run_feeds_the_estimates_and_failures_are_results(result) -> None:
    c = _cand(result, "TP8 PP1 DP1")
    body = strip_corpus_header(RECORDED.read_text())[1]

    def runner(node, argv):
        return (0, body, "") if node == "gpu-01" else (None, "", "timeout: no answer")

    results = run_tests(verify_tests(c, result.plan.model, result.plan.options), runner)
    assert results[0].ok and results[0].busbw_gbps == pytest.approx(479.72) and results[0].small_time_us == pytest.approx(33.18)  # the recording's first (8 B) row
    again = feed_back(result.fleet, result.plan.model, result.plan.options, c, results)
    est = next(e for e in again.estimates if e.name == "tp_allreduce_ms_per_step")
    before = next(e for e in c.estimates if e.name == "tp_allreduce_ms_per_step")
    assert est.value > before.value  # the measured 1.1 ms small-message time now counts per all-reduce
    broken = run_tests(verify_tests(c, result.plan.model, result.plan.options), lambda n, a: (1, "garbage", "boom"))
    assert not broken[0].ok and "boom" in broken[0].error
