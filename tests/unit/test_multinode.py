"""Multi-node NCCL command lines and the slow-node analysis (the runner is a recorded-output player)."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from preflight.multinode import LaunchSpec, build_command, find_slow_nodes, locate_slow_nodes, ring_pairs, shell_line
from preflight.parse.common import strip_corpus_header

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "corpus"


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
