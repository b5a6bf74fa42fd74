"""The simulated fleet itself, checked with the real OpenSSH client: stand-ins, host keys, hangs, cleanup."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
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


@pytest.mark.usefixtures("needs_sshd")
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


# --- added: paramiko, profile root files, wildcard argv, usage errors, base_port, session cleanup -----------

def _paramiko_client(fleet: SimFleet):
    paramiko = pytest.importorskip("paramiko")
    client = paramiko.SSHClient()
    client.load_host_keys(str(fleet.known_hosts))
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    return paramiko, client


def _connect(fleet: SimFleet, client, name: str) -> None:
    client.connect("127.0.0.1", port=fleet.nodes[name].port, username=fleet.user,
                   key_filename=str(fleet.client_key), look_for_keys=False, allow_agent=False,
                   timeout=3, banner_timeout=3, auth_timeout=3)


def test_paramiko_exec_sees_the_stand_in_and_the_node_environment(fleet) -> None:
    _, client = _paramiko_client(fleet)
    try:
        _connect(fleet, client, "a")
        _, out, _ = client.exec_command("nvidia-smi topo -m", timeout=10)
        assert out.read().decode() == _body("h100-healthy/topo.txt")
        _, out, _ = client.exec_command("echo $PATH; echo $PREFLIGHT_SIM_NODE", timeout=10)
        path, node = out.read().decode().split()
        assert path.split(":")[0] == str(fleet.nodes["a"].root / "bin") and node == "a"
    finally:
        client.close()


def test_paramiko_reject_policy_refuses_the_changed_host_key(fleet) -> None:
    paramiko, client = _paramiko_client(fleet)
    try:
        with pytest.raises(paramiko.BadHostKeyException):
            _connect(fleet, client, "b")
    finally:
        client.close()


def test_profile_root_files_are_under_the_host_root(fleet) -> None:
    proc = ssh(fleet, "a", "cat", "$PREFLIGHT_HOST_ROOT/proc/driver/nvidia/version",
               "$PREFLIGHT_HOST_ROOT/sys/class/infiniband/mlx5_1/ports/1/state")
    assert proc.returncode == 0, proc.stderr
    assert "Kernel Module  565.57.01" in proc.stdout and proc.stdout.endswith("4: ACTIVE\n")


def test_fault_profiles_agree_across_files(sim_fleet_factory) -> None:
    f = sim_fleet_factory([("dm", "driver-mismatch"), ("ib", "ib-port-down")])
    drv = ssh(f, "dm", "sh", "-c", "'nvidia-smi | head -2; cat $PREFLIGHT_HOST_ROOT/proc/driver/nvidia/version'").stdout
    assert drv.count("535.129.03") == 3 and "565.57.01" not in drv
    ib = ssh(f, "ib", "sh", "-c", "'ibstat; cat $PREFLIGHT_HOST_ROOT/sys/class/infiniband/mlx5_1/ports/1/state'").stdout
    assert "State: Down" in ib and ib.endswith("1: DOWN\n")


def test_unrecorded_nvidia_smi_arguments_get_its_own_usage_error(fleet) -> None:
    proc = ssh(fleet, "a", "nvidia-smi", "--no-such-option")
    assert proc.returncode == 2
    assert proc.stderr.startswith("Invalid combination of input arguments. Please run 'nvidia-smi -h' for help.")


def test_tool_absent_from_the_profile_is_absent_on_the_node(fleet) -> None:
    proc = ssh(fleet, "a", "sh", "-c", "'command -v dmesg || echo none'")
    assert proc.stdout.strip() == "none"


def test_wildcard_keys_match_any_value_and_exact_keys_win(tmp_path) -> None:
    from preflight.sim.profile import stand_in_script

    rec = tmp_path / "r.txt"
    rec.write_text("# source: test\n\nwild\n")
    exact = tmp_path / "e.txt"
    exact.write_text("# source: test\n\nexact\n")
    script = tmp_path / "tool"
    script.write_text(stand_in_script("tool", {"--query-gpu=* --format=csv": (rec, 0), "-g *": (rec, 0),
                                               "--query-gpu=name --format=csv": (exact, 0)}, tmp_path))

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["sh", str(script), *args], capture_output=True, text=True, timeout=5)

    assert run("--query-gpu=index,name,uuid", "--format=csv").stdout == "wild\n"
    assert run("--query-gpu=name", "--format=csv").stdout == "exact\n"
    assert run("-g", "8").stdout == "wild\n"
    assert run("--query-gpu=name", "--format=json").returncode == 2


def _two_free_ports() -> int:
    """A base port whose next port is free too (both bound, then released), bounded tries."""
    import socket

    for _ in range(50):
        with socket.socket() as a, socket.socket() as b:
            a.bind(("127.0.0.1", 0))
            base = a.getsockname()[1]
            try:
                b.bind(("127.0.0.1", base + 1))
            except OSError:
                continue
            return base
    raise RuntimeError("no two consecutive free ports on 127.0.0.1")


def test_base_port_numbers_the_nodes(sim_fleet_factory) -> None:
    base = _two_free_ports()
    f = sim_fleet_factory([("p0", "a100-pcie-x2"), ("p1", "a100-pcie-x2")], base_port=base)
    assert [f.nodes["p0"].port, f.nodes["p1"].port] == [base, base + 1]
    assert f"[127.0.0.1]:{base + 1} " in f.known_hosts.read_text()
    assert ssh(f, "p1", "nvidia-smi").returncode == 0


@pytest.mark.usefixtures("needs_sshd")
def test_stop_also_ends_open_sessions(tmp_path) -> None:
    f = SimFleet(tmp_path / "f", [("s", "h100-healthy")])
    client = None
    below: list[int] = []
    try:
        f.start()
        _, client = _paramiko_client(f)
        _connect(f, client, "s")
        client.exec_command("sleep 30")
        from preflight.sim.processes import descendants

        for _ in range(50):  # bounded: the session's processes appear within a moment
            below = descendants(f.nodes["s"].pid)
            if any("sleep" in Path(f"/proc/{p}/cmdline").read_text(errors="replace") for p in below
                   if Path(f"/proc/{p}/cmdline").exists()):
                break
            time.sleep(0.1)
        assert below
    finally:
        f.stop()
        if client is not None:
            client.close()
    for p in below:
        assert not Path(f"/proc/{p}").exists() or "zombie" in Path(f"/proc/{p}/status").read_text().lower()
