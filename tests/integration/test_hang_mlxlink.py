"""`preflight hang` on real sshd nodes reads `mlxlink -m -c --json` per IB port where mlxlink is installed and names
the grey link: profile ib-link-degraded answers mlx5_0 with a real healthy recording and mlx5_1 with the same
recording carrying a planted fault (its `change:` header); h100-healthy has no mlxlink, which is a note, not health."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

NODES = [("m-01", "h100-healthy"), ("m-02", "ib-link-degraded")]


@pytest.fixture(scope="module")
def mlx_inv(sim_fleet_factory, tmp_path_factory):
    fleet = sim_fleet_factory(NODES)
    for node, ranks in {"m-01": [0, 1], "m-02": [2, 3]}.items():
        for local, rank in enumerate(ranks):
            env = {"RANK": str(rank), "LOCAL_RANK": str(local), "WORLD_SIZE": "4", "NCCL_RAS_ENABLE": "0"}
            fleet.start_job(node, [sys.executable, "-c", "import time; time.sleep(900)", "trainM.py"], env)
    return fleet.write_inventory(tmp_path_factory.mktemp("inv") / "mlx.yaml", thresholds=fleet.sandbox_thresholds())


def test_hang_names_the_grey_link_node_device_and_port(mlx_inv, tmp_path) -> None:
    out = tmp_path / "hang.json"
    proc = subprocess.run([sys.executable, "-m", "preflight", "hang", "-i", str(mlx_inv), "--job-pattern", r"trainM\.py",
                           "--ib-interval", "0.2", "--connect-timeout", "3", "--timeout", "30", "--json", str(out),
                           "--no-color"], capture_output=True, text=True, timeout=180)
    assert proc.returncode in (0, 2), proc.stdout + proc.stderr
    doc = json.loads(out.read_text())
    links = [c for c in doc["causes"] if c["kind"] == "link_quality"]
    assert len(links) == 1, links  # mlx5_0's recording is healthy: no cause for it
    c = links[0]
    assert c["node"] == "m-02" and c["title"].startswith("fail: mlx5_1 port 1 on m-02 (400G, Active): grey link")
    assert "effective (post-FEC) BER 4E-11 > 1E-12" in c["title"]
    assert "module temperature 83 C >= its high threshold 80 C" in c["title"]
    assert "6 link downs since the counters were cleared 2718.1 min ago" in c["title"]
    assert any("ibdiagnet" in e and "10^-12" in e for e in c["evidence"])  # the threshold's source
    assert "mlxlink -d mlx5_1 -p 1 -m -c" in c["next_command"] and "check cooling" in c["next_command"]
    assert "reseat, then replace the cable or transceiver" in c["next_command"]
    assert any(n.startswith("mlxlink not installed on m-01") and "not judged" in n for n in doc["notes"])


def test_run_mlxlink_judges_each_port(mlx_inv, tmp_path) -> None:
    out = tmp_path / "run.json"
    proc = subprocess.run([sys.executable, "-m", "preflight", "run", "-i", str(mlx_inv), "--mlxlink", "--checks",
                           "ib.link_quality", "--connect-timeout", "3", "--timeout", "60", "--json", str(out),
                           "--no-color"], capture_output=True, text=True, timeout=180)
    assert proc.returncode != 0, proc.stdout + proc.stderr  # a failing check
    doc = json.loads(out.read_text())
    got = {(n["name"], f.get("subject")): f for n in doc["nodes"] for f in n["findings"]
           if f["check"] == "ib.link_quality"}
    assert got[("m-02", "mlx5_0/1")]["status"] == "pass"
    assert got[("m-02", "mlx5_1/1")]["status"] == "fail"
    assert "effective (post-FEC) BER 4E-11 > 1E-12" in got[("m-02", "mlx5_1/1")]["msg"]
    m01 = [f for (n, _), f in got.items() if n == "m-01"]
    assert m01 and all(f["status"] == "error" and "mlxlink not installed" in f["msg"] for f in m01), m01
