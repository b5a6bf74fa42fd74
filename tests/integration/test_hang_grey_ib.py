"""`preflight hang --sweeps 2` on real sshd nodes keeps the first sweep's IB counters, so errors are judged as
rates (profile ib-errors: 4127 symbol errors since boot that do not move are no cause).

mlx5_core health lines are judged from real recorded kernel logs in tests/unit/hang/test_grey_ib.py: a sim
profile answering `dmesg` with one would be the project's first clean-of-Xid kernel log, which
tests/unit/checks/test_every_check_proven.py rightly allow-lists as absent for GPU nodes (the recording is
not of a GPU node)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from preflight.collect.bundle import load_bundle

NODES = [("g-01", "h100-healthy"), ("g-02", "ib-errors")]


@pytest.fixture(scope="module")
def grey_inv(sim_fleet_factory, tmp_path_factory):
    fleet = sim_fleet_factory(NODES)
    for node, ranks in {"g-01": [0, 1], "g-02": [2, 3]}.items():
        for local, rank in enumerate(ranks):
            env = {"RANK": str(rank), "LOCAL_RANK": str(local), "WORLD_SIZE": "4", "NCCL_RAS_ENABLE": "0"}
            fleet.start_job(node, [sys.executable, "-c", "import time; time.sleep(900)", "trainG.py"], env)
    return fleet.write_inventory(tmp_path_factory.mktemp("inv") / "grey.yaml", thresholds=fleet.sandbox_thresholds())


def test_ib_counters_are_kept_across_sweeps(grey_inv, tmp_path) -> None:
    out = tmp_path / "hang.json"
    proc = subprocess.run([sys.executable, "-m", "preflight", "hang", "-i", str(grey_inv), "--job-pattern", r"trainG\.py",
                           "--ib-interval", "0.2", "--connect-timeout", "3", "--timeout", "20", "--sweeps", "2",
                           "--json", str(out), "--no-color", "--save", str(tmp_path / "g")],
                          capture_output=True, text=True, timeout=180)
    assert proc.returncode in (0, 2), proc.stdout + proc.stderr
    doc = json.loads(out.read_text())
    assert not [c for c in doc["causes"] if c["kind"] == "live_ib_errors_rising"]  # old totals, not rising
    saved = load_bundle(tmp_path / "g")
    kept = saved.options["ib_first_sweep"]["g-02"]["ports"]["mlx5_1/1"]
    assert kept["symbol_error"] == 4127 and kept["link_downed"] == 3
    assert any("NCCL_RAS_ENABLE=0" in n for n in doc["notes"])  # RAS not asked: the job turned it off
