"""`preflight nccl-multinode` end to end: inventory → SSH to the launcher node → mpirun stand-in → verdict.

The mpirun stand-in on gpu-01 prints recorded nccl-tests outputs (see the mpi-launcher profile):
pairs with gpu-03 reach 1.01 GB/s, the others 5.33 GB/s.
"""

from __future__ import annotations

import json
import subprocess
import sys


def _run(inv, out, threshold):
    return subprocess.run([sys.executable, "-m", "preflight", "nccl-multinode", "-i", str(inv), "--gpus-per-node", "1",
                           "--min-busbw", str(threshold), "--pairs", "--json", str(out), "--timeout", "30"],
                          capture_output=True, text=True, timeout=120)


def test_pairs_name_the_slow_node(sim_fleet_factory, tmp_path) -> None:
    fleet = sim_fleet_factory([("gpu-01", "mpi-launcher"), ("gpu-02", "h100-healthy"), ("gpu-03", "h100-healthy")])
    inv = fleet.write_inventory(tmp_path / "inv.yaml")
    out = tmp_path / "mn.json"
    proc = _run(inv, out, 2.0)
    doc = json.loads(out.read_text())
    assert doc["launcher"] == "gpu-01" and doc["via"] == "mpirun"
    assert doc["command"].startswith("mpirun --allow-run-as-root -np 3 -H gpu-01:1,gpu-02:1,gpu-03:1")
    assert doc["busbw"] == 5.33 and proc.returncode == 0, proc.stdout + proc.stderr
    assert doc["slow"] == ["gpu-03"] and doc["suspect"] == ["gpu-01", "gpu-02"]
    assert {tuple(p["hosts"]): p["busbw"] for p in doc["pairs"]} == {
        ("gpu-01", "gpu-02"): 5.33, ("gpu-02", "gpu-03"): 1.01, ("gpu-03", "gpu-01"): 1.01}


def test_whole_fleet_below_threshold_exits_2(sim_fleet_factory, tmp_path) -> None:
    fleet = sim_fleet_factory([("gpu-01", "mpi-launcher"), ("gpu-02", "h100-healthy"), ("gpu-03", "h100-healthy")])
    inv = fleet.write_inventory(tmp_path / "inv.yaml")
    proc = _run(inv, tmp_path / "mn.json", 100.0)
    assert proc.returncode == 2
    assert json.loads((tmp_path / "mn.json").read_text())["slow"] == ["gpu-01", "gpu-02", "gpu-03"]
