"""`preflight node-check` run by the real local Slurm on a simulated node (srun into the node's wrapper, whose
PATH has the stand-in tools): a node with a fault drains itself with preflight's reason; a healthy one stays up.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time

import pytest
import yaml

from preflight.sim.fleet import SimFleet
from preflight.sim.slurm import SlurmCluster, missing_binaries

NODES = [("nc1", "h100-healthy"), ("nc2", "gpu-missing"), ("nc3", "gpu-missing")]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    missing = missing_binaries()
    if missing:
        pytest.skip(f"Slurm/munge not installed (missing {', '.join(missing)}; run scripts/install-test-deps.sh)")
    c = SlurmCluster(tmp_path_factory.mktemp("slurm-nc"), NODES)
    try:
        c.start(timeout_s=30)
        yield c
    finally:
        c.stop()


@pytest.fixture(scope="module")
def expect_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("nc") / "node.yaml"
    path.write_text(yaml.safe_dump({"expect": {"gpus_per_node": 8}, "thresholds": SimFleet.sandbox_thresholds()}))
    return path


def _node_check(cluster, node, expect_file, *extra):
    """srun one task on `node`; the task becomes the simulated node, then runs preflight node-check there."""
    scontrol = shutil.which("scontrol", path=cluster.env()["PATH"])
    script = ('PATH="$PATH:/usr/bin:/bin:/usr/sbin:/sbin"; export PATH\n'  # stand-ins first, then the system
              f'exec {sys.executable} -m preflight node-check --expect {expect_file} --timeout 60 '
              f'--node-name "$SLURMD_NODENAME" --scontrol {scontrol} {" ".join(extra)}\n')
    proc = subprocess.run(["srun", "-N1", "-n1", f"--nodelist={node}", "--partition", cluster.partition,
                           "--time=2", "--kill-on-bad-exit=0", *cluster.node_command],
                          input=script, capture_output=True, text=True, timeout=120, env=cluster.env())
    return proc


def _show(cluster, node):
    return subprocess.run(["scontrol", "show", "node", node], capture_output=True, text=True, timeout=10,
                          env=cluster.env()).stdout


def test_faulty_node_drains_itself_with_preflights_reason(cluster, expect_file):
    t0 = time.monotonic()
    proc = _node_check(cluster, "nc2", expect_file, "--drain-self")
    took = time.monotonic() - t0
    assert proc.returncode == 2, proc.stdout + proc.stderr  # 2: unhealthy
    assert "preflight node-check nc2: fail" in proc.stdout and "gpu.count" in proc.stdout
    shown = _show(cluster, "nc2")
    assert "DRAIN" in shown, shown
    assert "Reason=preflight: gpu.count" in shown, shown
    assert took < 60, f"node-check took {took:.1f} s"


def test_healthy_node_stays_up(cluster, expect_file):
    proc = _node_check(cluster, "nc1", expect_file, "--drain-self")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "preflight node-check nc1: pass" in proc.stdout
    assert "DRAIN" not in _show(cluster, "nc1").split("State=")[1].split()[0]


def test_a_persons_drain_is_not_overwritten(cluster, expect_file):
    """nc3 is drained by hand first: node-check still exits 2, and the person's reason stays."""
    cluster.drain("nc3", "bob replacing a fan")
    try:
        # A drained node takes no new job step, so this runs on the controller itself as nc3 (an epilog's view):
        # this host has no nvidia-smi, so gpu.count cannot judge (error): unhealthy, exit 2, and a drain is due.
        proc = subprocess.run([sys.executable, "-m", "preflight", "node-check", "--node-name", "nc3", "--drain-self",
                               "--expect", str(expect_file), "--checks", "gpu.count", "--timeout", "30"],
                              capture_output=True, text=True, timeout=90, env=cluster.env())
        assert proc.returncode == 2, proc.stdout + proc.stderr
        assert "not drained" in proc.stderr and "someone else" in proc.stderr, proc.stderr
        assert "Reason=bob replacing a fan" in _show(cluster, "nc3")
    finally:
        cluster.resume("nc3")


def test_bad_expect_file_cannot_run(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("expect: {gpus_per_nod: 8}\n")
    proc = subprocess.run([sys.executable, "-m", "preflight", "node-check", "--expect", str(bad)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 3 and "gpus_per_nod" in proc.stderr
