"""Multi-node NCCL command lines and the slow-node analysis (the runner is a recorded-output player)."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from preflight.multinode import LaunchSpec, build_command, find_slow_nodes, locate_slow_nodes, ring_pairs, shell_line
from preflight.parse.common import strip_corpus_header

CORPUS = Path(__file__).resolve().parents[2] / "fixtures" / "corpus"


def rec(rel: str) -> str:
    return strip_corpus_header((CORPUS / rel).read_text())[1]


def test_mpirun_command_one_rank_per_gpu() -> None:
    argv = build_command(LaunchSpec(hosts=("gpu-01", "gpu-02"), gpus_per_node=8, extra_env={"NCCL_IB_HCA": "mlx5"}))
    assert argv[:5] == ["mpirun", "--allow-run-as-root", "-np", "16", "-H"]
    assert argv[5] == "gpu-01:8,gpu-02:8"
    assert "NCCL_IB_HCA=mlx5" in argv and argv[-9:] == ["all_reduce_perf", "-b", "8", "-e", "8G", "-f", "2", "-g", "1"]


def test_srun_command() -> None:
    argv = build_command(LaunchSpec(hosts=("a", "b", "c"), gpus_per_node=4, launcher="srun"))
    assert argv[:5] == ["srun", "--nodes=3", "--ntasks-per-node=4", "--gpus-per-node=4", "--nodelist=a,b,c"]


def test_hostile_names_are_quoted() -> None:
    line = shell_line(build_command(LaunchSpec(hosts=("gpu-01;rm -rf /",), gpus_per_node=1)))
    assert shlex.split(line)[5] == "gpu-01;rm -rf /:1"  # one word, not a second command


def test_bad_specs_are_refused() -> None:
    with pytest.raises(ValueError):
        build_command(LaunchSpec(hosts=(), gpus_per_node=8))
    with pytest.raises(ValueError, match="launcher"):
        build_command(LaunchSpec(hosts=("a",), gpus_per_node=8, launcher="pdsh"))


def test_ring_pairs_put_every_node_in_two_pairs() -> None:
    assert ring_pairs(["a", "b", "c", "d"]) == [("a", "b"), ("b", "c"), ("c", "d"), ("d", "a")]
    assert ring_pairs(["a", "b"]) == [("a", "b")]


def test_the_node_in_every_slow_pair_is_named() -> None:
    verdict = find_slow_nodes({("a", "b"): 180.0, ("b", "c"): 40.0, ("c", "d"): 38.0, ("d", "a"): 181.0}, threshold=100)
    assert verdict.slow == ("c",) and verdict.suspect == ("b", "d")


def test_locate_slow_nodes_with_recorded_outputs() -> None:
    """Pairs that include node c print the recorded poor-bandwidth run; the others a recorded healthy one."""
    slow = rec("nccl_tests/allreduce-2rank-mpirun-tag-output-prefix-poor-bw.txt")  # 5.3 GB/s at 512M
    fast = rec("nccl_tests/allgather-2gpu-bfloat16-linear-step.txt")  # 140 GB/s at 112M
    seen: list[list[str]] = []

    def runner(argv: list[str]) -> tuple[int, str, str]:
        seen.append(argv)
        hosts = argv[argv.index("-H") + 1]
        return 0, (slow if "c:" in hosts else fast), ""

    verdict, outcomes = locate_slow_nodes(["a", "b", "c", "d"], 1, threshold=50.0, runner=runner)
    assert verdict.slow == ("c",)
    assert len(seen) == 4 and all(o.result is not None for o in outcomes)


def test_unparseable_output_counts_as_a_failed_pair() -> None:
    verdict, outcomes = locate_slow_nodes(["a", "b"], 8, threshold=50.0,
                                          runner=lambda argv: (1, "", "mpirun: command not found"))
    assert verdict.slow == ("a", "b") and "mpirun: command not found" in outcomes[0].error


# ---- what a run proves: one job across the nodes, over the network the fabric is meant to carry -------------

GB10 = "nccl_tests/allreduce-2node-dgx-spark-gb10-version-header.txt"  # 2 hosts, one MPI job, no NCCL INFO lines
SOCKET_LOG = "nccl_logs/nccl-2.4.8-2node-ibverbs-missing-socket-legacy-ring.txt"
IB_LOG = "nccl_logs/nccl-aks-p2p-cumem-read-net-ib-gdrdma.txt"


def outcome(stdout: str, rc: int | None = 0, hosts: tuple[str, ...] = ("a", "b")):
    from preflight.multinode import run_test
    return run_test(LaunchSpec(hosts=hosts, gpus_per_node=1), lambda argv: (rc, stdout, ""))


def test_run_test_asks_every_rank_for_nccl_info() -> None:
    seen: list[list[str]] = []
    from preflight.multinode import run_test
    run_test(LaunchSpec(hosts=("a", "b"), gpus_per_node=1), lambda argv: (seen.append(argv), (0, "", ""))[1])
    assert "NCCL_DEBUG=INFO" in seen[0] and "NCCL_DEBUG" not in seen[0]
    srun = build_command(LaunchSpec(hosts=("a",), gpus_per_node=1, launcher="srun", nccl_debug="INFO"))
    assert "--export=ALL,NCCL_DEBUG=INFO" in srun
    mine = build_command(LaunchSpec(hosts=("a",), gpus_per_node=1, nccl_debug="INFO", extra_env={"NCCL_DEBUG": "WARN"}))
    assert "NCCL_DEBUG=WARN" in mine and "NCCL_DEBUG=INFO" not in mine  # the user's level wins
    assert "NCCL_DEBUG" in build_command(LaunchSpec(hosts=("a",), gpus_per_node=1))  # plan --verify: forwarded as is


def test_sockets_between_nodes_fail_with_the_lines_as_evidence() -> None:
    from preflight.multinode import judge_run
    # constructed for the test: a recorded nccl-tests table followed by a recorded 2-node socket-fallback NCCL log
    o = outcome(rec(GB10) + "\n" + rec(SOCKET_LOG))
    assert o.net.transports == ("Socket",)
    v = judge_run(o, threshold=None)
    assert v.status == "fail"
    assert v.reasons[0] == ("NCCL ran over NET/Socket (TCP, no RDMA) between the nodes after failing to open "
                            "libibverbs")
    assert any("Failed to open libibverbs.so[.1]" in e for e in v.evidence)
    assert any("Ring 00 : 1 -> 0 [receive] via NET/Socket/0" in e for e in v.evidence)
    ok = judge_run(o, threshold=None, expect_net="socket")
    assert ok.status == "pass" and "as the inventory expects (expect.nccl_net: socket)" in ok.reasons[0]


def test_ib_between_nodes_passes_and_unseen_transport_warns() -> None:
    from preflight.multinode import judge_run
    ib = judge_run(outcome(rec(GB10) + "\n" + rec(IB_LOG)), threshold=0.5)
    assert ib.status == "pass" and "inter-node transport NET/IB with GPUDirect RDMA (GDRDMA)" in ib.reasons
    unseen = judge_run(outcome(rec(GB10)), threshold=0.5)
    assert unseen.status == "warn" and unseen.reasons[0] == "transport not shown (NCCL_DEBUG=INFO lines absent)"
    wrong = judge_run(outcome(rec(GB10) + "\n" + rec(IB_LOG)), threshold=None, expect_net="socket")
    assert wrong.status == "fail" and "expects socket" in wrong.reasons[0]


def test_non_mpi_runs_and_failed_launches_are_not_a_pass() -> None:
    from preflight.multinode import judge_run
    inter = judge_run(outcome(rec("nccl_tests/allreduce-interleaved-rows-two-independent-runs.txt")), threshold=None)
    assert inter.status == "fail" and inter.reasons[0].startswith("nccl-tests ran 2 independent")
    v100 = judge_run(outcome(rec("nccl_tests/allreduce-2node-1gpu-non-mpi-rank0-on-both-hosts-v100.txt")), None)
    assert v100.status == "fail" and "built without MPI?" in " ".join(v100.reasons)
    assert any("Rank  0 Pid   2066 on ip-172-31-22-230" in e for e in v100.evidence)
    assert judge_run(outcome(rec(GB10), rc=1), None).reasons[0] == "the launcher exited with status 1"
    assert judge_run(outcome(rec(GB10), rc=None), None).status == "fail"
    low = judge_run(outcome(rec(GB10) + "\n" + rec(IB_LOG)), threshold=100.0)
    assert low.status == "fail" and "below 100" in low.reasons[0]
