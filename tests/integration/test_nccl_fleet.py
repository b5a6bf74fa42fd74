"""nccl-tests on the simulated fleet (`--nccl`): healthy, slow and corrupting nodes, each run twice.

The all_reduce_perf stand-in prints a recorded single-node 8x H100 run (see the h100-healthy
profile); nccl-slow and nccl-wrong are derived from it. No GPU runs here: the parsing and the
verdicts are what is tested, on recorded outputs.
"""

from __future__ import annotations

import pytest
from conftest import judge_sim_fleet

from preflight.collect.probes import NCCL_PROBES

FLEET = [("n-01", "h100-healthy"), ("n-02", "h100-healthy"), ("n-03", "nccl-slow"), ("n-04", "nccl-wrong")]


@pytest.fixture(scope="module")
def report(sim_fleet_factory, tmp_path_factory):
    return judge_sim_fleet(sim_fleet_factory, tmp_path_factory.mktemp("inv"), FLEET, include_optional=NCCL_PROBES)[0]


def _findings(report, name, check_id):
    return [f for n in report.nodes if n.name == name for f in n.findings if f.check == check_id]


def test_only_the_faulty_nodes_fail(report) -> None:
    bad = {(n.name, f.check) for n in report.nodes for f in n.findings if f.status.value in ("fail", "error", "warn")}
    # n-03/n-04 answer with runs derived from the 256 MB-2 GB recording: no decode-sized rows to report, so
    # that check could not judge there (error), next to their bandwidth / wrong-result failures
    assert bad == {("n-03", "nccl.allreduce.busbw"), ("n-04", "nccl.allreduce.correct"),
                   ("n-03", "nccl.allreduce.small_messages"), ("n-04", "nccl.allreduce.small_messages")}


def test_healthy_busbw_cites_size_runs_and_reference(report) -> None:
    f = _findings(report, "n-01", "nccl.allreduce.busbw")[0]
    assert f.status.value == "pass"
    assert "479.7" in f.observed and "8G" in f.observed and "spread" in f.observed  # both runs, their spread
    assert f.expected == ">= 460 GB/s" and "azurehpc-health-checks" in (f.expected_source or "")
    assert "measured at 16G" in (f.expected_source or "")  # the reference's own message size is stated


def test_slow_node_fails_on_both_runs(report) -> None:
    f = _findings(report, "n-03", "nccl.allreduce.busbw")[0]
    assert f.status.value == "fail" and f.observed.startswith("147.1 / 147.1 GB/s at 2G")


def test_wrong_results_fail_each_run(report) -> None:
    fs = _findings(report, "n-04", "nccl.allreduce.correct")
    assert [f.status.value for f in fs] == ["fail", "fail"] and "out of bounds 7" in fs[0].observed


def test_small_messages_are_reported_from_the_full_range_recording(report) -> None:
    f = _findings(report, "n-01", "nccl.allreduce.small_messages")[0]
    assert f.status.value == "pass" and "8K: 33.09 us" in f.observed  # the recorded 8192 B row
    cut = _findings(report, "n-03", "nccl.allreduce.small_messages")[0]
    assert cut.status.value == "error" and "no rows between 8 KB and 4 MB" in cut.msg  # never a silent skip
