"""`preflight hang --dump-fr` on real sshd nodes whose ranks are flight-recorder stand-ins.

Each rank (preflight/sim/fr_job.py) does what PyTorch's DumpPipe does: it makes `<TORCH_NCCL_DEBUG_INFO_PIPE_FILE>
<rank>.pipe` under its node's root, polls it, and when written writes its dump (the fr-never-joined profile's,
derived from the PyTorch tutorial's recorded dump: rank 2 never entered all_reduce #3). The collector on each node
writes to the pipes, waits for the dumps and sends them back; the controller compares them.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from preflight.sim.fr_job import FR_PROFILE, start_rank

NODES = [("fr-01", FR_PROFILE), ("fr-02", FR_PROFILE)]
LAYOUT = {"fr-01": [0, 1], "fr-02": [2, 3]}


@pytest.fixture(scope="module")
def fr_fleet(sim_fleet_factory, tmp_path_factory):
    fleet = sim_fleet_factory(NODES)
    for node, ranks in LAYOUT.items():
        for local, rank in enumerate(ranks):
            start_rank(fleet, node, rank, 4, local)
    for node, ranks in LAYOUT.items():  # bounded: each rank makes its FIFO as it starts
        for rank in ranks:
            pipe = fleet.host_root(node) / "tmp" / "preflight-fr" / f"pipe_{rank}.pipe"
            for _ in range(300):
                if pipe.exists():
                    break
                time.sleep(0.05)
            assert pipe.exists(), pipe
    inv = fleet.write_inventory(tmp_path_factory.mktemp("inv") / "fr.yaml", thresholds=fleet.sandbox_thresholds())
    return fleet, inv


def _hang(inv, tmp_path, *extra):
    out = tmp_path / "hang.json"
    proc = subprocess.run([sys.executable, "-m", "preflight", "hang", "-i", str(inv), "--job-pattern", r"trainFR\.py",
                           "--no-pyspy", "--ib-interval", "0.2", "--connect-timeout", "3", "--timeout", "40",
                           "--json", str(out), "--no-color", *extra], capture_output=True, text=True, timeout=180)
    return proc, (json.loads(out.read_text()) if out.exists() else None)


def test_without_dump_fr_no_pipe_is_written(fr_fleet, tmp_path) -> None:
    fleet, inv = fr_fleet
    proc, doc = _hang(inv, tmp_path)
    assert doc is not None, proc.stdout + proc.stderr
    assert doc["flight_recorder"] == [] and not [c for c in doc["causes"] if c["kind"].startswith("live_fr")]
    assert not any((fleet.host_root(n) / "tmp" / "preflight-fr" / f"nccl_trace_rank_{r}").exists()
                   for n, rs in LAYOUT.items() for r in rs)


def test_dump_fr_collects_the_dumps_and_puts_the_never_joined_rank_first(fr_fleet, tmp_path) -> None:
    fleet, inv = fr_fleet
    proc, doc = _hang(inv, tmp_path, "--dump-fr", "--fr-wait", "10", "--save", str(tmp_path / "g"))
    assert proc.returncode == 0 and doc is not None, proc.stdout + proc.stderr
    outcomes = {(o["node"], o["rank"]): (o["outcome"], o["parsed"]) for o in doc["flight_recorder"]}
    assert outcomes == {(n, r): ("collected", True) for n, rs in LAYOUT.items() for r in rs}, doc["flight_recorder"]
    top = doc["causes"][0]
    assert top["kind"] == "live_fr_missing" and top["rank"] == 2 and top["node"] == "fr-02", doc["causes"]
    assert "never entered nccl:all_reduce #3" in top["title"]
    assert any(e.startswith("fr-02:/tmp/preflight-fr/nccl_trace_rank_2: rank 2 last entered") for e in top["evidence"])
    assert "rank 2 on fr-02 never entered" in " ".join(proc.stdout.split())  # the console names it too
    for node, ranks in LAYOUT.items():  # the ranks really dumped, on their own node
        for rank in ranks:
            assert (fleet.host_root(node) / "tmp" / "preflight-fr" / f"nccl_trace_rank_{rank}").stat().st_size > 0
    again = subprocess.run([sys.executable, "-m", "preflight", "hang", "--bundle", str(tmp_path / "g"), "--json", "-"],
                           capture_output=True, text=True, timeout=120)
    replay = json.loads(again.stdout)
    assert replay["causes"][0]["title"] == top["title"]  # the dumps are in the saved gather
