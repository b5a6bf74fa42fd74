"""nccl-tests built without MPI: N processes each ran alone. The parser says so; the nccl checks refuse to judge it."""

from __future__ import annotations

import pytest
from test_node_checks import _nccl_node, findings, rec

from preflight.parse.nccl_tests import NcclTestResult, parse_nccl_tests

V100 = "nccl_tests/allreduce-2node-1gpu-non-mpi-rank0-on-both-hosts-v100.txt"
H800 = "nccl_tests/allreduce-2node-8gpu-non-mpi-headers-repeated-h800-fragment.txt"
INTERLEAVED = "nccl_tests/allreduce-interleaved-rows-two-independent-runs.txt"


def parse(rel: str, text: str | None = None) -> NcclTestResult:
    r = parse_nccl_tests(rec(rel) if text is None else text)
    assert isinstance(r, NcclTestResult), r
    return r


def test_rank0_on_two_hosts_is_two_single_rank_jobs() -> None:
    r = parse(V100)
    assert (r.independent_runs, r.ranks_per_run, r.independent_why) == (2, 1, ("headers", "rank0"))
    assert r.independent_note is not None
    assert r.independent_note.startswith("nccl-tests ran 2 independent single-rank jobs: built without MPI?")
    assert "#   Rank  0 Pid   2066 on ip-172-31-22-230 device  0 [0x00] Tesla V100-SXM2-16GB" in r.independent_evidence
    assert r.independent_note in r.notes


def test_headers_repeated_before_any_device_line() -> None:
    r = parse(H800)
    assert r.independent_runs == 2 and r.independent_why == ("headers",) and r.ranks_per_run is None
    assert "independent single-process jobs" in str(r.independent_note)


def test_interleaved_rows_are_independent_runs() -> None:
    r = parse(INTERLEAVED)
    assert r.independent_runs == 2 and r.independent_why == ("interleaved",)


@pytest.mark.parametrize("rel", [
    "nccl_tests/allreduce-2node-dgx-spark-gb10-version-header.txt",  # one 2-rank MPI job on 2 hosts
    "nccl_tests/allreduce-16xh100-2node-azure-header-4digit-domain.txt",
    "nccl_tests/allreduce-8xh100-single-node-256M-2G-448.txt",
    "nccl_tests/sendrecv-2xa100-sxm-64gb-nvlink-8B-2G-nccl-info-interleaved.txt",
    "nccl_tests/allreduce-all-ops-non-power-of-2-sizes.txt",  # sizes restart, but in full sweeps
])
def test_one_job_is_not_flagged(rel: str) -> None:
    r = parse(rel)
    assert r.independent_runs == 0 and r.independent_note is None


def test_two_sequential_runs_on_one_node_are_not_independent() -> None:
    one = rec("nccl_tests/allreduce-8xh100-single-node-256M-2G-448.txt")
    r = parse("", one + "\n" + one)  # a script that ran the test twice: header, rows, header, rows
    assert r.runs == 2 and r.independent_runs == 0


def test_busbw_check_refuses_independent_runs() -> None:
    # the interleaved rows reach 0.02 GB/s: with a 0.01 GB/s floor the old check called this a pass
    fs = findings([_nccl_node("n1", rec(INTERLEAVED), allreduce_busbw_gbps_min=0.01)], "nccl.allreduce.busbw")
    (f,) = fs
    assert f.status.value == "error" and f.msg.startswith("nccl-tests ran 2 independent single-process jobs")
    (g,) = findings([_nccl_node("n1", rec(V100))], "nccl.allreduce.busbw")
    assert g.status.value == "error" and "built without MPI?" in g.msg and len(g.evidence) == 4
