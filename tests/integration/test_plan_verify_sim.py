"""`preflight plan -i INV --nccl --verify` end to end against real sshd nodes.

The all_reduce_perf stand-in prints the recorded single-node 8x H100 run for any size range, so
the numbers are the recording's; what is tested is the live path: collection, the plan, the
verification commands sent over SSH to the right nodes, their parsing and the re-judged layout.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest


@pytest.fixture(scope="module")
def fleet_inv(sim_fleet_factory, tmp_path_factory):
    fleet = sim_fleet_factory([("node-01", "h100-healthy"), ("node-02", "h100-healthy"), ("node-03", "nvlink-down")])
    return fleet.write_inventory(tmp_path_factory.mktemp("inv") / "plan.yaml", thresholds=fleet.sandbox_thresholds())


def test_plan_verify_runs_the_layouts_tests_on_its_nodes(fleet_inv, tmp_path) -> None:
    out = tmp_path / "plan.json"
    proc = subprocess.run([sys.executable, "-m", "preflight", "plan", "--model", "llama-3.1-70b", "-i", str(fleet_inv),
                           "--nccl", "--verify", "--layout", "TP8 PP1 DP2", "--connect-timeout", "5",
                           "--json", str(out), "--no-color"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doc = json.loads(out.read_text())
    assert [e["node"] for e in doc["excluded"]] == ["node-03"]  # its NVLink is down
    v = doc["verify"]
    assert v["layout"] == "TP8 PP1 DP2" and v["passed"] is True
    assert [(t["kind"], t["node"]) for t in v["tests"]] == [("tp_allreduce", "node-01"), ("tp_allreduce", "node-02")]
    assert v["tests"][0]["command"].startswith("env CUDA_VISIBLE_DEVICES=0,1,2,3,4,5,6,7 all_reduce_perf -b 131072 -e 134217728")  # 16 seqs over DP 2
    assert v["tests"][0]["busbw_gbps"] == pytest.approx(479.72)  # parsed from what the node printed
    assert v["estimates_measured"]["tp_allreduce_ms_per_step"] > v["estimates_before"]["tp_allreduce_ms_per_step"]
    assert "verify: node-02: env CUDA_VISIBLE_DEVICES" in proc.stderr  # progress of each test on stderr


def test_verify_of_a_layout_on_an_unreachable_node_fails_cleanly(fleet_inv, tmp_path) -> None:
    proc = subprocess.run([sys.executable, "-m", "preflight", "plan", "--model", "llama-3.1-70b", "-i", str(fleet_inv),
                           "--verify", "--layout", "TP8 PP9 DP9", "-q"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 3 and "is not a layout of this plan" in proc.stderr


@pytest.fixture(scope="module")
def launcher_inv(sim_fleet_factory, tmp_path_factory):
    fleet = sim_fleet_factory([("gpu-01", "mpi-launcher"), ("gpu-02", "h100-healthy")])
    return fleet.write_inventory(tmp_path_factory.mktemp("inv") / "pp.yaml", thresholds=fleet.sandbox_thresholds())


def test_pipeline_stages_across_nodes_send_recv_through_mpirun(launcher_inv, tmp_path) -> None:
    out = tmp_path / "pp.json"
    proc = subprocess.run([sys.executable, "-m", "preflight", "plan", "--model", "llama-3.1-70b", "-i", str(launcher_inv),
                           "--nccl", "--verify", "--layout", "TP8 PP2 DP1", "--json", str(out), "-q"],
                          capture_output=True, text=True, timeout=300)
    doc = json.loads(out.read_text())
    tests = doc["verify"]["tests"]
    assert [t["kind"] for t in tests] == ["tp_allreduce", "tp_allreduce", "pp_sendrecv"], proc.stderr
    pp = tests[2]
    assert pp["node"] == "gpu-01" and pp["command"].startswith("mpirun --allow-run-as-root -np 2 -H gpu-01:1,gpu-02:1")
    assert "sendrecv_perf" in pp["command"]
    assert pp["busbw_gbps"] == pytest.approx(72.88)  # the recorded sendrecv run's 2 GB row, parsed
    assert doc["verify"]["passed"] is True and proc.returncode == 0
