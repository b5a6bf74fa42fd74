"""A wedged driver: nvidia-smi never answers and ignores SIGTERM (profile smi-hung, a planted fault).

The node must fail on that (gpu.driver.responsive), never pass, and leave nothing running: every
probe's process group is killed (SIGKILL after the probe's timeout, or at the collector's deadline),
later nvidia-smi probes are not started once one hung, and the plain-shell fallback (no python3)
bounds its probes the same way (`timeout -k`). Real sshd daemons on 127.0.0.1; nothing mocked.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from tests.integration.conftest import judge_sim_fleet

NODES = [("hung-py", "smi-hung"), ("hung-sh", "smi-hung-no-python"), ("ok-01", "h100-healthy")]


def _stand_in_processes(root: Path) -> list[int]:
    """Live processes whose command line runs a stand-in under `root` (the hung nvidia-smi and its sleep)."""
    found = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
        except OSError:
            continue
        if str(root / "bin") in cmd or (cmd.startswith("sleep 3600") and _under(int(d.name), root)):
            found.append(int(d.name))
    return found


def _under(pid: int, root: Path) -> bool:
    try:
        return str(root) in os.readlink(f"/proc/{pid}/cwd") or str(root) in (
            Path(f"/proc/{pid}/environ").read_bytes().decode("utf-8", "replace"))
    except OSError:
        return False


@pytest.fixture(scope="module")
def hung_run(sim_fleet_factory, tmp_path_factory):
    t0 = time.monotonic()
    report, fleet = judge_sim_fleet(sim_fleet_factory, tmp_path_factory.mktemp("inv"), NODES)
    return report, fleet, time.monotonic() - t0


def _node(report, name):
    return next(n for n in report.nodes if n.name == name)


@pytest.mark.parametrize("name", ["hung-py", "hung-sh"])
def test_hung_nvidia_smi_fails_the_node_and_no_gpu_check_passes(hung_run, name) -> None:
    report, _, _ = hung_run
    node = _node(report, name)
    assert node.outcome == "ok"  # the collector came back: the hang was bounded per probe
    assert node.status.value == "fail", node.reason
    assert node.reason.startswith("gpu.driver.responsive: nvidia-smi did not answer"), node.reason
    passed = {f.check for f in node.findings if f.status.value == "pass"}
    assert not {c for c in passed if c.startswith(("gpu.", "nvlink.", "topology."))}, passed
    assert node.coverage.unknown > 10, node.coverage


def test_healthy_neighbour_still_passes(hung_run) -> None:
    assert _node(hung_run[0], "ok-01").status.value == "pass"


def test_later_nvidia_smi_probes_are_not_started_once_one_hung(hung_run) -> None:
    """11 nvidia-smi probes at 10-30 s each would be minutes; the first timeouts stop the rest."""
    _, _, elapsed = hung_run
    assert elapsed < 90, elapsed


def test_nothing_the_probes_started_outlives_the_run(hung_run) -> None:
    _, fleet, _ = hung_run
    deadline = time.monotonic() + 5  # SIGKILL is asynchronous: allow the kernel a moment to reap
    for name, _profile in NODES:
        root = fleet.host_root(name).parent
        left = _stand_in_processes(root)
        while left and time.monotonic() < deadline:
            time.sleep(0.2)
            left = _stand_in_processes(root)
        assert left == [], (name, left)
