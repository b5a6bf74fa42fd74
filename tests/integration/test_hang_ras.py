"""`preflight hang` asks the job's NCCL RAS service, on real sshd nodes.

The node of rank 0 runs the `ncclras-mismatch` profile: an `ncclras` stand-in printing the NCCL user guide's
recorded MISMATCH report (ranks 0, 2, 3, 4, 5, 7 on 172.16.64.210 behind at operation 6649). The other node has
no RAS client and no RAS service, so a query there would fail: the test proves the one node of the lowest rank is
asked, and that the ranks and node RAS names reach the verdict.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

NODES = [("ras-01", "ncclras-mismatch"), ("ras-02", "h100-healthy")]


@pytest.fixture(scope="module")
def ras_inv(sim_fleet_factory, tmp_path_factory):
    fleet = sim_fleet_factory(NODES)
    for node, ranks in {"ras-01": [0, 1], "ras-02": [2, 3]}.items():
        for local, rank in enumerate(ranks):
            env = {"RANK": str(rank), "LOCAL_RANK": str(local), "WORLD_SIZE": "4", "NCCL_DEBUG": "INFO"}
            fleet.start_job(node, [sys.executable, "-c", "import time; time.sleep(900)", "trainR.py"], env)
    return fleet.write_inventory(tmp_path_factory.mktemp("inv") / "ras.yaml", thresholds=fleet.sandbox_thresholds())


def test_ras_mismatch_names_the_ranks_and_node_it_reports(ras_inv, tmp_path) -> None:
    out = tmp_path / "hang.json"
    proc = subprocess.run([sys.executable, "-m", "preflight", "hang", "-i", str(ras_inv), "--job-pattern", r"trainR\.py",
                           "--ib-interval", "0.2", "--connect-timeout", "3", "--timeout", "20", "--json", str(out),
                           "--no-color", "--save", str(tmp_path / "g")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doc = json.loads(out.read_text())
    ras = [c for c in doc["causes"] if c["kind"] == "ras_mismatch"]
    assert ras, doc["causes"]
    assert ras[0]["ranks"] == [0, 2, 3, 4, 5, 7] and "172.16.64.210" in ras[0]["title"]
    assert "launched up to operation 6649 while 26 rank(s) reached operation 6650" in ras[0]["title"]
    assert any("asked on ras-01 (rank 0)" in n for n in doc["notes"])
    assert "ncclras: asked on ras-01 (rank 0)" in proc.stderr
    assert "ncclras" in proc.stdout  # the console shows the RAS cause
    again = subprocess.run([sys.executable, "-m", "preflight", "hang", "--bundle", str(tmp_path / "g"), "--json", "-"],
                           capture_output=True, text=True, timeout=120)
    replay = json.loads(again.stdout)
    assert [c["title"] for c in replay["causes"]] == [c["title"] for c in doc["causes"]]  # the answer is saved
