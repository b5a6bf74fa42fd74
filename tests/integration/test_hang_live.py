"""`preflight hang` against real sshd nodes running real stand-in job processes.

Each simulated node's job ranks are real processes (python3 sleeping, with the rank variables in
their environment) whose /proc entries only that node's collector sees. Faults are real process
facts: a rank that never started (a missing RANK) and a rank frozen with SIGSTOP (state T).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from preflight.parse.common import strip_corpus_header

NODES = [("node-01", "h100-healthy"), ("node-02", "h100-healthy"), ("node-03", "h100-healthy"), ("node-04", "hang")]
CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "corpus"


def _job(fleet, script: str, ranks: dict[str, list[int]], *, world: int, stopped: int | None = None) -> None:
    for node, rs in ranks.items():
        for local, rank in enumerate(rs):
            env = {"RANK": str(rank), "LOCAL_RANK": str(local), "WORLD_SIZE": str(world), "LOCAL_WORLD_SIZE": "2",
                   "MASTER_ADDR": "node-01", "NCCL_DEBUG": "INFO", "NCCL_SOCKET_IFNAME": "eth0",
                   "NCCL_DEBUG_FILE": "/var/log/nccl/%h.%p.log", "HF_TOKEN": "hf_secret_do_not_leak"}
            pid = fleet.start_job(node, [sys.executable, "-c", "import time; time.sleep(900)", script, "--rank", str(rank),
                                         "--api-key", "sk-argv-secret-do-not-leak"],
                                  env, stopped=(rank == stopped))
            if rank == 0:  # rank 0 wrote a real NCCL INFO log (recorded lines) to its NCCL_DEBUG_FILE
                import socket

                log = fleet.host_root(node) / "var" / "log" / "nccl" / f"{socket.gethostname()}.{pid}.log"
                log.parent.mkdir(parents=True, exist_ok=True)
                log.write_text(strip_corpus_header((CORPUS / "nccl_logs" / "nccl-h100-setting-affinity-ignore-cpu-affinity.txt").read_text())[1])


@pytest.fixture(scope="module")
def fleet_inv(sim_fleet_factory, tmp_path_factory):
    fleet = sim_fleet_factory(NODES)
    layout = {"node-01": [0, 1], "node-02": [2, 3], "node-03": [4, 5]}
    _job(fleet, "trainA.py", {**layout, "node-03": [4]}, world=6)  # rank 5 never started / died
    _job(fleet, "trainB.py", layout, world=6, stopped=3)  # rank 3 frozen
    inv = fleet.write_inventory(tmp_path_factory.mktemp("inv") / "hang.yaml", thresholds=fleet.sandbox_thresholds())
    return fleet, inv


def _hang(inv, pattern, tmp_path, *extra):
    out = tmp_path / "hang.json"
    proc = subprocess.run([sys.executable, "-m", "preflight", "hang", "-i", str(inv), "--job-pattern", pattern,
                           "--ib-interval", "0.2", "--connect-timeout", "3", "--timeout", "20", "--json", str(out),
                           "--no-color", *extra], capture_output=True, text=True, timeout=120)
    return proc, (json.loads(out.read_text()) if out.exists() else None)


def test_a_missing_rank_is_the_culprit(fleet_inv, tmp_path) -> None:
    _fleet, inv = fleet_inv
    proc, doc = _hang(inv, r"trainA\.py", tmp_path, "-l", "node-0[1-3]")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    first = doc["causes"][0]
    assert first["kind"] == "live_missing_rank" and first["rank"] == 5 and first["node"] == "node-03"
    ranks = sorted(r["rank"] for r in doc["live_ranks"])
    assert ranks == [0, 1, 2, 3, 4]
    assert "CULPRIT" in proc.stdout and "rank 5 of 6 has no process" in proc.stdout


def test_a_frozen_rank_is_named_with_its_state(fleet_inv, tmp_path) -> None:
    _fleet, inv = fleet_inv
    proc, doc = _hang(inv, r"trainB\.py", tmp_path, "-l", "node-0[1-3]")
    first = doc["causes"][0]
    assert first["kind"] == "live_state" and first["rank"] == 3 and first["node"] == "node-02"
    assert any("State: T" in e for e in first["evidence"])
    r0 = next(r for r in doc["live_ranks"] if r["rank"] == 0)
    assert r0["nccl_env"]["NCCL_SOCKET_IFNAME"] == "eth0" and r0["gpu"] == 0
    assert (r0["gpu_util"], r0["gpu_mem_mib"]) == (0, 1)  # GPU 0 in the recorded nvidia-smi table: 0%, 1MiB used
    assert "hf_secret_do_not_leak" not in json.dumps(doc) and "HF_TOKEN" not in json.dumps(doc)  # allow-listed env only
    assert "sk-argv-secret-do-not-leak" not in json.dumps(doc) and "--api-key [redacted]" in r0["cmdline"]
    assert any(f["kinds"] == ["nccl_log"] for f in doc["files"])  # rank 0's NCCL_DEBUG_FILE was read and analysed


def test_a_hung_node_is_a_cause_and_the_gather_finishes(fleet_inv, tmp_path) -> None:
    _fleet, inv = fleet_inv
    proc, doc = _hang(inv, r"trainB\.py", tmp_path)  # node-04's sshd is frozen (profile 'hang')
    assert proc.returncode == 0
    kinds = {(c["kind"], c["node"]) for c in doc["causes"]}
    assert ("live_unreachable", "node-04") in kinds and ("live_state", "node-02") in kinds


def test_a_saved_gather_replays_to_the_same_verdict(fleet_inv, tmp_path) -> None:
    _fleet, inv = fleet_inv
    _proc, live = _hang(inv, r"trainB\.py", tmp_path, "-l", "node-0[1-3]", "--save", str(tmp_path / "g"))
    again = subprocess.run([sys.executable, "-m", "preflight", "hang", "--bundle", str(tmp_path / "g"), "--json", "-"],
                           capture_output=True, text=True, timeout=120)
    doc = json.loads(again.stdout)
    assert [(c["kind"], c["rank"], c["node"]) for c in doc["causes"]] == [(c["kind"], c["rank"], c["node"]) for c in live["causes"]]


@pytest.fixture(scope="module")
def stacks_inv(sim_fleet_factory, tmp_path_factory):
    fleet = sim_fleet_factory([("s-01", "pyspy-collective"), ("s-02", "pyspy-collective"), ("s-03", "pyspy-dataloader")])
    _job(fleet, "trainC.py", {"s-01": [0, 1], "s-02": [2, 3], "s-03": [4, 5]}, world=6)
    return fleet.write_inventory(tmp_path_factory.mktemp("inv") / "stacks.yaml", thresholds=fleet.sandbox_thresholds())


def test_ranks_outside_the_collective_are_named_from_their_py_spy_stacks(stacks_inv, tmp_path) -> None:
    proc, doc = _hang(stacks_inv, r"trainC\.py", tmp_path)
    assert proc.returncode == 0, proc.stderr
    top = doc["causes"][:2]
    assert {(c["kind"], c["node"], c["rank"]) for c in top} == {("live_stack", "s-03", 4), ("live_stack", "s-03", 5)}
    assert "not in a collective (in wait (threading.py:306))" in top[0]["title"] and "all_reduce" in top[0]["title"]
    waiting = [r for r in doc["live_ranks"] if r["in_collective"]]
    assert len(waiting) == 4 and waiting[0]["top_frame"].startswith("all_reduce (torch/distributed/distributed_c10d.py")


def test_later_sweeps_reuse_the_open_connections(fleet_inv, tmp_path) -> None:
    _fleet, inv = fleet_inv
    proc, doc = _hang(inv, r"trainB\.py", tmp_path, "-l", "node-0[1-3]", "--sweeps", "3")
    assert proc.returncode == 0, proc.stderr
    assert "sweep 1: " in proc.stderr and "3 connection(s) opened, 0 reused" in proc.stderr
    assert "sweep 3: " in proc.stderr and "3 connection(s) opened, 6 reused" in proc.stderr  # no new handshakes
    assert doc["causes"][0]["kind"] == "live_state"  # the verdict of the last sweep
