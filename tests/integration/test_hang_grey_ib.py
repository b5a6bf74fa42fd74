"""`preflight hang` on real sshd nodes: a ConnectX adapter's recorded mlx5_core health lines name the node
(profile mlx5-health), and `--sweeps 2` keeps the first sweep's IB counters so errors are judged as rates
(profile ib-errors: 4127 symbol errors since boot that do not move are no cause)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from preflight.collect.bundle import load_bundle

NODES = [("g-01", "mlx5-health"), ("g-02", "ib-errors")]


@pytest.fixture(scope="module")
def grey_inv(sim_fleet_factory, tmp_path_factory):
    fleet = sim_fleet_factory(NODES)
    for node, ranks in {"g-01": [0, 1], "g-02": [2, 3]}.items():
        for local, rank in enumerate(ranks):
            env = {"RANK": str(rank), "LOCAL_RANK": str(local), "WORLD_SIZE": "4", "NCCL_RAS_ENABLE": "0"}
            fleet.start_job(node, [sys.executable, "-c", "import time; time.sleep(900)", "trainG.py"], env)
    return fleet.write_inventory(tmp_path_factory.mktemp("inv") / "grey.yaml", thresholds=fleet.sandbox_thresholds())


def test_mlx5_health_and_ib_counters_across_sweeps(grey_inv, tmp_path) -> None:
    out = tmp_path / "hang.json"
    proc = subprocess.run([sys.executable, "-m", "preflight", "hang", "-i", str(grey_inv), "--job-pattern", r"trainG\.py",
                           "--ib-interval", "0.2", "--connect-timeout", "3", "--timeout", "20", "--sweeps", "2",
                           "--json", str(out), "--no-color", "--save", str(tmp_path / "g")],
                          capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doc = json.loads(out.read_text())
    first = doc["causes"][0]
    assert first["kind"] == "mlx5_health" and first["node"] == "g-01"
    assert "ConnectX adapter 0000:0d:00.0 on g-01" in first["title"] and "synd 0x1: firmware internal error" in first["title"]
    assert not [c for c in doc["causes"] if c["kind"] == "live_ib_errors_rising"]  # old totals, not rising
    saved = load_bundle(tmp_path / "g")
    kept = saved.options["ib_first_sweep"]["g-02"]["ports"]["mlx5_1/1"]
    assert kept["symbol_error"] == 4127 and kept["link_downed"] == 3
    assert any("NCCL_RAS_ENABLE=0" in n for n in doc["notes"])  # RAS not asked: the job turned it off
