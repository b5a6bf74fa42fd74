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


def _run_plain(inv, out):
    """No --min-busbw and no --pairs: what a run proves on its own (the old code passed both runs below)."""
    return subprocess.run([sys.executable, "-m", "preflight", "nccl-multinode", "-i", str(inv), "--gpus-per-node", "1",
                           "--json", str(out), "--timeout", "30"], capture_output=True, text=True, timeout=120)


def test_mpi_launcher_recordings_do_not_show_their_network(sim_fleet_factory, tmp_path) -> None:
    fleet = sim_fleet_factory([("gpu-01", "mpi-launcher"), ("gpu-02", "h100-healthy"), ("gpu-03", "h100-healthy")])
    proc = _run_plain(fleet.write_inventory(tmp_path / "inv.yaml"), tmp_path / "mn.json")
    doc = json.loads((tmp_path / "mn.json").read_text())
    assert " -x NCCL_DEBUG=INFO " in doc["command"]
    assert doc["status"] == "warn" and doc["reasons"][0] == "transport not shown (NCCL_DEBUG=INFO lines absent)"
    assert proc.returncode == 0, proc.stdout + proc.stderr  # a warning, not a failure: and not a plain pass


def test_socket_fallback_fails_with_the_nccl_lines(sim_fleet_factory, tmp_path) -> None:
    fleet = sim_fleet_factory([("gpu-01", "nccl-socket-fallback"), ("gpu-02", "h100-healthy")])
    proc = _run_plain(fleet.write_inventory(tmp_path / "inv.yaml"), tmp_path / "mn.json")
    doc = json.loads((tmp_path / "mn.json").read_text())
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert doc["status"] == "fail" and doc["transport"] == ["Socket"] and doc["busbw"] == 1.01
    assert doc["reasons"][0] == ("NCCL ran over NET/Socket (TCP, no RDMA) between the nodes after failing to open "
                                 "libibverbs")
    assert any("misc/ibvwrap.cc:63 NCCL WARN Failed to open libibverbs.so[.1]" in e for e in doc["evidence"])
    assert any("Ring 00 : 1 -> 0 [receive] via NET/Socket/0" in e for e in doc["evidence"])
    assert "fail" in proc.stdout and "NET/Socket" in proc.stdout
    # the same run where the inventory says sockets are the fabric: a pass that says so
    inv2 = fleet.write_inventory(tmp_path / "inv2.yaml", expectations={"nccl_net": "socket"})
    ok = _run_plain(inv2, tmp_path / "ok.json")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "expect.nccl_net: socket" in json.loads((tmp_path / "ok.json").read_text())["reasons"][0]


def test_nccl_tests_without_mpi_fails(sim_fleet_factory, tmp_path) -> None:
    fleet = sim_fleet_factory([("gpu-01", "nccl-no-mpi"), ("gpu-02", "h100-healthy")])
    proc = _run_plain(fleet.write_inventory(tmp_path / "inv.yaml"), tmp_path / "mn.json")
    doc = json.loads((tmp_path / "mn.json").read_text())
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert doc["status"] == "fail"
    assert doc["reasons"][0].startswith("nccl-tests ran 2 independent single-rank jobs: built without MPI?")
    assert any("Rank  0 Pid   2066 on ip-172-31-22-230" in e for e in doc["evidence"])


def test_the_measurement_joins_the_run_bundle(sim_fleet_factory, tmp_path) -> None:
    """`run --save B` then `nccl-multinode --save B`: the fabric's measurement sits beside the node facts."""
    from preflight.collect.bundle import load_bundle

    fleet = sim_fleet_factory([("gpu-01", "nccl-socket-fallback"), ("gpu-02", "h100-healthy")])
    inv = fleet.write_inventory(tmp_path / "inv.yaml", expectations={"nccl_net": "socket"})
    run = subprocess.run([sys.executable, "-m", "preflight", "run", "-i", str(inv), "--headless", "-q",
                          "--save", str(tmp_path / "b")], capture_output=True, text=True, timeout=120)
    assert (tmp_path / "b" / "bundle.json").exists(), run.stderr
    mn = subprocess.run([sys.executable, "-m", "preflight", "nccl-multinode", "-i", str(inv), "--gpus-per-node", "1",
                         "--timeout", "30", "--save", str(tmp_path / "b")], capture_output=True, text=True, timeout=120)
    assert mn.returncode == 0, mn.stdout + mn.stderr
    assert "measurement saved" in mn.stderr
    bundle = load_bundle(tmp_path / "b")
    assert len(bundle.nodes) == 2  # the run's node facts are still there
    (record,) = bundle.options["multinode"]
    assert record["busbw"] == 1.01 and record["transport"] == ["Socket"] and record["status"] == "pass"
    assert record["hosts"] == ["gpu-01", "gpu-02"] and record["gpus_per_node"] == 1
