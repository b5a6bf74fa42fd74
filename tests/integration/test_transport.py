"""SSH transport against real sshd: host-key policy, auth failure, ProxyJump with every hop verified."""

from __future__ import annotations

import dataclasses
import subprocess

import pytest

from preflight.inventory import load_inventory
from preflight.session import collect
from preflight.transport.fanout import FanoutOptions
from preflight.transport.ssh import SshOptions


@pytest.fixture(scope="module")
def fleet(sim_fleet_factory):
    return sim_fleet_factory([("jump", "h100-healthy"), ("inner", "h100-healthy")])


@pytest.fixture(scope="module")
def nodes(fleet, tmp_path_factory):
    inv = load_inventory(fleet.write_inventory(tmp_path_factory.mktemp("inv") / "t.yaml"))
    return {n.name: dataclasses.replace(n, connect_timeout_s=3.0, command_timeout_s=30.0) for n in inv.nodes}


def _run(nodes, known_hosts, accept_new=False):
    opts = FanoutOptions(ssh=SshOptions(known_hosts=tuple(known_hosts), use_default_known_hosts=False,
                                        accept_new_hostkeys=accept_new))
    return collect(nodes, opts).nodes


def test_unknown_host_key_is_refused_by_default(fleet, nodes, tmp_path) -> None:
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    [raw] = _run([nodes["inner"]], [empty])
    assert raw.outcome == "hostkey_rejected"
    assert "not in known_hosts" in raw.message and "--accept-new-hostkeys" in raw.message


def test_accept_new_records_the_key_then_verifies_it(fleet, nodes, tmp_path) -> None:
    kh = tmp_path / "known_hosts"
    kh.write_text("")
    [raw] = _run([nodes["inner"]], [kh], accept_new=True)
    assert raw.outcome == "ok"
    recorded = kh.read_text()
    assert f"[127.0.0.1]:{nodes['inner'].port}" in recorded
    # the recorded key is now what is expected: a strict run passes
    [again] = _run([nodes["inner"]], [kh])
    assert again.outcome == "ok"


def test_wrong_client_key_is_auth_failed(fleet, nodes, tmp_path) -> None:
    other = tmp_path / "other_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    node = dataclasses.replace(nodes["inner"], identity_file=str(other))
    opts = FanoutOptions(ssh=SshOptions(known_hosts=(str(fleet.known_hosts),), use_default_known_hosts=False))
    import os

    env_agent = os.environ.pop("SSH_AUTH_SOCK", None)
    try:
        [raw] = collect([node], opts).nodes
    finally:
        if env_agent:
            os.environ["SSH_AUTH_SOCK"] = env_agent
    assert raw.outcome == "auth_failed", raw.message


def test_proxyjump_verifies_the_jump_host_too(fleet, nodes, tmp_path) -> None:
    jump = nodes["jump"]
    spec = f"{jump.user}@127.0.0.1:{jump.port}"
    inner = dataclasses.replace(nodes["inner"], jump_host=spec)
    # the jump hop uses the node's identity file (ssh_config may name another for it)
    opts = FanoutOptions(ssh=SshOptions(known_hosts=(str(fleet.known_hosts),), use_default_known_hosts=False))
    [raw] = collect([inner], opts).nodes
    assert raw.outcome == "ok", raw.message
    # with the jump host's key missing from known_hosts the whole path is refused
    only_inner = tmp_path / "kh"
    only_inner.write_text("\n".join(l for l in fleet.known_hosts.read_text().splitlines()
                                    if f":{jump.port} " not in l) + "\n")
    [refused] = collect([inner], FanoutOptions(ssh=SshOptions(known_hosts=(str(only_inner),),
                                                             use_default_known_hosts=False))).nodes
    assert refused.outcome == "hostkey_rejected", refused.message
    assert str(jump.port) in refused.message


def test_waiting_for_the_exit_status_after_eof_does_not_spin(fleet, nodes) -> None:
    """A command that closes its output but keeps running: the reader waits, it does not busy-loop."""
    import time

    from preflight.transport.fanout import run_command
    from preflight.transport.ssh import SshOptions

    node = nodes["inner"]
    opts = SshOptions(known_hosts=(str(fleet.known_hosts),), use_default_known_hosts=False)
    c0, t0 = time.process_time(), time.monotonic()
    rc, out, err = run_command(node, ["sh", "-c", "exec >/dev/null 2>&1; sleep 2"], opts, 20)
    cpu, wall = time.process_time() - c0, time.monotonic() - t0
    assert rc == 0 and wall >= 2
    assert cpu < 1.0, f"{cpu:.2f} s of CPU for a 2 s wait"  # a spinning loop burns the whole 2 s


def test_known_hosts_edits_are_seen_without_a_restart(fleet, nodes, tmp_path) -> None:
    """The parsed known_hosts cache follows the file: a key removed from it is refused on the next connection."""
    import shutil

    from preflight.transport.fanout import run_command
    from preflight.transport.ssh import SshOptions

    kh = tmp_path / "known_hosts"
    shutil.copy(fleet.known_hosts, kh)
    opts = SshOptions(known_hosts=(str(kh),), use_default_known_hosts=False)
    assert run_command(nodes["inner"], ["true"], opts, 20)[0] == 0
    kh.write_text("")  # the operator removed every entry
    rc, _out, err = run_command(nodes["inner"], ["true"], opts, 20)
    assert rc is None and "hostkey" in err.lower()
