"""The simulated fleet itself, checked with the real OpenSSH client: stand-ins, host keys, hangs, cleanup."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

from preflight.sim.fleet import PROFILES, SimFleet

pytestmark = pytest.mark.skipif(shutil.which("ssh") is None, reason="OpenSSH client not installed")


def ssh(fleet: SimFleet, name: str, *command: str, timeout: float = 20) -> subprocess.CompletedProcess[str]:
    node = fleet.nodes[name]
    return subprocess.run(
        ["ssh", "-i", str(fleet.client_key), "-o", f"UserKnownHostsFile={fleet.known_hosts}",
         "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-o", "ConnectTimeout=3",
         "-p", str(node.port), f"{fleet.user}@127.0.0.1", *command],
        capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def fleet(sim_fleet_factory):
    return sim_fleet_factory([("a", "h100-healthy"), ("b", "changed-hostkey"), ("c", "no-python"), ("d", "h100-healthy")])


def _body(rel: str) -> str:
    text = (PROFILES / rel).read_text()
    return text.split("\n\n", 1)[1]


def test_stand_in_prints_the_recorded_body(fleet) -> None:
    proc = ssh(fleet, "a", "nvidia-smi", "topo", "-m")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == _body("h100-healthy/topo.txt")
    assert "# source" not in proc.stdout


def test_unrecorded_arguments_fail_like_a_tool(fleet) -> None:
    proc = ssh(fleet, "a", "nvidia-smi", "--query-gpu=name", "--format=csv")
    assert proc.returncode == 2 and "no recording" in proc.stderr


def test_path_and_host_root_apply_to_exec_commands(fleet) -> None:
    proc = ssh(fleet, "a", "sh", "-c", "'command -v nvidia-smi; echo $PREFLIGHT_HOST_ROOT'")
    lines = proc.stdout.split()
    assert lines[0] == str(fleet.nodes["a"].root / "bin" / "nvidia-smi")
    assert lines[1] == str(fleet.nodes["a"].root / "hostroot")


def test_no_python_node_has_no_python3(fleet) -> None:
    proc = ssh(fleet, "c", "sh", "-c", "'command -v python3 || echo none'")
    assert proc.stdout.strip() == "none"


def test_changed_host_key_is_refused_by_strict_checking(fleet) -> None:
    proc = ssh(fleet, "b", "true")
    assert proc.returncode == 255
    assert "REMOTE HOST IDENTIFICATION HAS CHANGED" in proc.stderr or "Host key verification failed" in proc.stderr


def test_paused_node_hangs_then_resumes(fleet) -> None:
    fleet.pause("d")
    try:
        with socket.create_connection(("127.0.0.1", fleet.nodes["d"].port), timeout=2) as s:
            s.settimeout(1.5)
            with pytest.raises(TimeoutError):
                s.recv(16)  # TCP is accepted by the kernel, but no SSH banner comes
    finally:
        fleet.resume("d")
    assert ssh(fleet, "d", "true").returncode == 0


def test_stop_leaves_no_sshd_behind(tmp_path) -> None:
    f = SimFleet(tmp_path / "f", [("x", "h100-healthy"), ("y", "hang")])
    f.start()
    pids = f.pids
    assert len(pids) == 2 and all(Path(f"/proc/{p}").exists() for p in pids)
    f.stop()
    for p in pids:
        assert not Path(f"/proc/{p}").exists() or "zombie" in Path(f"/proc/{p}/status").read_text().lower()


def test_unknown_profile_is_refused_before_starting(tmp_path) -> None:
    with pytest.raises(ValueError, match="unknown sim profile"):
        SimFleet(tmp_path, [("x", "no-such-profile")])
