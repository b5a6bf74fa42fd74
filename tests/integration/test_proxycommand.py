"""An Ansible INI inventory whose nodes are reached through a ProxyCommand (`ssh -W %h:%p` via a bastion that is
itself a simulated sshd): every node judged, host keys verified on both hops, nothing left running."""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import time

import pytest

from preflight.inventory import load_inventory
from preflight.session import collect
from preflight.transport.fanout import FanoutOptions
from preflight.transport.ssh import SshOptions, expand_proxy_command

pytestmark = pytest.mark.skipif(shutil.which("ssh") is None, reason="the OpenSSH client (ssh -W) is not installed")


@pytest.fixture(scope="module")
def fleet(sim_fleet_factory):
    return sim_fleet_factory([("bastion", "h100-healthy"), ("gpu01", "h100-healthy"), ("gpu02", "h100-healthy")])


def _proxy(fleet, known_hosts) -> str:
    bastion = fleet.nodes["bastion"]
    return (f"ssh -F /dev/null -q -o BatchMode=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile={known_hosts} "
            f"-o IdentitiesOnly=yes -i {fleet.client_key} -p {bastion.port} -W %h:%p {fleet.user}@127.0.0.1")


def _inventory(fleet, tmp_path, known_hosts) -> object:
    lines = ["# the simulated fleet behind a bastion, as DeepOps's [all:vars] configures one", "[gpu]"]
    for name in ("gpu01", "gpu02"):
        lines.append(f"{name} ansible_host=127.0.0.1 ansible_port={fleet.nodes[name].port}")
    lines += ["[all:vars]", f"ansible_user={fleet.user}", f"ansible_ssh_private_key_file={fleet.client_key}",
              f"ansible_ssh_common_args='-o ProxyCommand=\"{_proxy(fleet, known_hosts)}\"'", "ansible_ssh_timeout=5"]
    path = tmp_path / "inventory"
    path.write_text("\n".join(lines) + "\n")
    return load_inventory(path)


def _run(nodes, known_hosts):
    opts = FanoutOptions(ssh=SshOptions(known_hosts=(str(known_hosts),), use_default_known_hosts=False))
    return collect([dataclasses.replace(n, command_timeout_s=30.0) for n in nodes], opts).nodes


def test_every_node_is_judged_through_the_proxycommand(fleet, tmp_path) -> None:
    from preflight.engine import judge

    inv = _inventory(fleet, tmp_path, fleet.known_hosts)
    assert all(n.proxy_command and "%h:%p" in n.proxy_command for n in inv.nodes)
    session = collect([dataclasses.replace(n, command_timeout_s=30.0) for n in inv.nodes],
                      FanoutOptions(ssh=SshOptions(known_hosts=(str(fleet.known_hosts),),
                                                   use_default_known_hosts=False)))
    assert [r.outcome for r in session.nodes] == ["ok", "ok"], [r.message for r in session.nodes]
    report, _ = judge(session)
    assert {n.name for n in report.nodes} == {"gpu01", "gpu02"}
    assert all(n.findings and n.outcome == "ok" for n in report.nodes)


def test_the_node_key_is_verified_through_the_proxy(fleet, tmp_path) -> None:
    """The bastion's key is known to the ProxyCommand's ssh, but a node's key missing from preflight's known_hosts
    is refused: the proxy carries bytes, it does not vouch for the node."""
    inv = _inventory(fleet, tmp_path, fleet.known_hosts)
    gpu01 = fleet.nodes["gpu01"].port
    only_others = tmp_path / "kh"
    only_others.write_text("\n".join(ln for ln in fleet.known_hosts.read_text().splitlines()
                                     if f"]:{gpu01} " not in ln) + "\n")
    raws = {r.name: r for r in _run(inv.nodes, only_others)}
    assert raws["gpu01"].outcome == "hostkey_rejected", raws["gpu01"].message
    assert raws["gpu02"].outcome == "ok", raws["gpu02"].message


def test_the_bastion_key_is_verified_by_the_proxy_ssh(fleet, tmp_path) -> None:
    empty = tmp_path / "empty_known_hosts"
    empty.write_text("")
    inv = _inventory(fleet, tmp_path, empty)  # the ProxyCommand's ssh does not know the bastion
    t0 = time.monotonic()
    raws = _run(inv.nodes[:1], fleet.known_hosts)
    assert raws[0].outcome == "error" and "ProxyCommand" in raws[0].message, raws[0].message
    assert "exited with status 255" in raws[0].message, raws[0].message
    assert time.monotonic() - t0 < 4, "a proxy that exits fails at once, not at the banner timeout"


def test_the_proxy_process_group_ends_with_the_connection(fleet, tmp_path) -> None:
    marker = f"preflight-proxy-test-{os.getpid()}"
    inv = _inventory(fleet, tmp_path, fleet.known_hosts)
    jump = inv.nodes[0].jump_host.replace("ssh ", f"ssh -o SetEnv=X={marker} ", 1)
    node = dataclasses.replace(inv.nodes[0], jump_host=jump)
    [raw] = _run([node], fleet.known_hosts)
    assert raw.outcome == "ok", raw.message
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        left = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True).stdout.split()
        if not left:
            break
        time.sleep(0.1)
    assert not left, f"proxy processes left running: {left}"


def test_expansion_quotes_each_value() -> None:
    line = expand_proxy_command("nc %h %p # %r %%", "host name;rm", 2222, "o'neil")
    assert line == "nc 'host name;rm' 2222 # 'o'\"'\"'neil' %"
    with pytest.raises(ValueError):
        expand_proxy_command("ssh -l %u %h", "h", 22, None)


def test_preflight_run_on_the_ini_inventory_judges_every_node(fleet, tmp_path) -> None:
    """The CLI end to end: `preflight run -i inventory` (INI, ProxyCommand bastion) -> a JSON report of both nodes."""
    import json
    import sys

    inv = _inventory(fleet, tmp_path, fleet.known_hosts)
    out = tmp_path / "report.json"
    proc = subprocess.run([sys.executable, "-m", "preflight", "run", "-i", inv.path, "--known-hosts",
                           str(fleet.known_hosts), "--timeout", "30", "--json", str(out), "-q"],
                          capture_output=True, text=True, timeout=300)
    assert out.exists(), proc.stderr
    report = json.loads(out.read_text())
    nodes = {n["name"]: n for n in report["nodes"]}
    assert set(nodes) == {"gpu01", "gpu02"}, proc.stderr
    assert all(n["outcome"] == "ok" and n["findings"] for n in nodes.values()), proc.stderr


def test_shell_proxy_is_a_shell_line_with_its_own_process_group() -> None:
    import paramiko

    from preflight.transport.ssh import _ShellProxy

    proxy = _ShellProxy("printf 'abc' | cat; sleep 30 & sleep 30")
    proxy.settimeout(5)
    assert proxy.recv(3) == b"abc"
    pgid = proxy.process.pid
    proxy.close()
    time.sleep(0.2)
    group = subprocess.run(["pgrep", "-g", str(pgid)], capture_output=True, text=True).stdout.split()
    states = {pid: subprocess.run(["ps", "-o", "stat=", "-p", pid], capture_output=True, text=True).stdout.strip()
              for pid in group}
    alive = [pid for pid, st in states.items() if st and not st.startswith("Z")]  # a container's PID 1 may not reap
    assert not alive, f"left running in the proxy's process group: {alive}"
    failing = _ShellProxy("echo 'bastion: Permission denied' >&2; exit 3")
    failing.settimeout(5)
    with pytest.raises(paramiko.ProxyCommandFailure, match="exited with status 3: bastion: Permission denied"):
        failing.recv(10)
    failing.close()
