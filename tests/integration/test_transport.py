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


def _ssh_config(tmp_path, fleet, nodes, extra: str = "") -> str:
    inner, jump = nodes["inner"], nodes["jump"]
    path = tmp_path / "ssh_config"
    path.write_text(
        f"Host alias-inner\n  HostName 127.0.0.1\n  Port {inner.port}\n  User {fleet.user}\n"
        f"  IdentityFile {fleet.client_key}\n"
        f"Host alias-jump\n  HostName 127.0.0.1\n  Port {jump.port}\n  User {fleet.user}\n"
        f"  IdentityFile {fleet.client_key}\n"
        f"Host behind-jump\n  HostName 127.0.0.1\n  Port {inner.port}\n  User {fleet.user}\n"
        f"  IdentityFile {fleet.client_key}\n  ProxyJump alias-jump\n" + extra)
    return str(path)


def _bare(nodes, name: str, address: str):
    """A node known by its ssh_config alias alone: no port, user or key in the inventory."""
    return dataclasses.replace(nodes["inner"], name=name, address=address, port=None, user=None, identity_file=None)


def test_ssh_config_host_alias_is_followed_on_the_direct_path(fleet, nodes, tmp_path) -> None:
    """HostName, Port, User and IdentityFile come from ssh_config as fabric reads them, without fabric."""
    from fabric import Connection

    from preflight.transport.ssh import secure_connection

    ssh = SshOptions(known_hosts=(str(fleet.known_hosts),), use_default_known_hosts=False,
                     ssh_config_path=_ssh_config(tmp_path, fleet, nodes))
    cxn = secure_connection("alias-inner", ssh)
    assert not isinstance(cxn, Connection)
    assert (cxn.host, cxn.port, cxn.user) == ("127.0.0.1", nodes["inner"].port, fleet.user)
    assert cxn.connect_kwargs["key_filename"] == [str(fleet.client_key)]
    cxn.close()
    [raw] = collect([_bare(nodes, "a", "alias-inner")], FanoutOptions(ssh=ssh)).nodes
    assert raw.outcome == "ok", raw.message
    # the alias's key is looked up under the real address and port: a known_hosts without it refuses
    only_jump = tmp_path / "kh"
    only_jump.write_text("\n".join(l for l in fleet.known_hosts.read_text().splitlines()
                                   if f":{nodes['inner'].port} " not in l) + "\n")
    refused = dataclasses.replace(ssh, known_hosts=(str(only_jump),))
    [raw] = collect([_bare(nodes, "a", "alias-inner")], FanoutOptions(ssh=refused)).nodes
    assert raw.outcome == "hostkey_rejected", raw.message


def test_ssh_config_proxyjump_goes_through_fabric_with_every_hop_verified(fleet, nodes, tmp_path) -> None:
    from fabric import Connection

    from preflight.transport.ssh import secure_connection

    ssh = SshOptions(known_hosts=(str(fleet.known_hosts),), use_default_known_hosts=False,
                     ssh_config_path=_ssh_config(tmp_path, fleet, nodes))
    cxn = secure_connection("behind-jump", ssh)
    assert isinstance(cxn, Connection) and isinstance(cxn.gateway, Connection)
    [raw] = collect([_bare(nodes, "b", "behind-jump")], FanoutOptions(ssh=ssh)).nodes
    assert raw.outcome == "ok", raw.message
    only_inner = tmp_path / "kh"
    only_inner.write_text("\n".join(l for l in fleet.known_hosts.read_text().splitlines()
                                    if f":{nodes['jump'].port} " not in l) + "\n")
    [refused] = collect([_bare(nodes, "b", "behind-jump")],
                        FanoutOptions(ssh=dataclasses.replace(ssh, known_hosts=(str(only_inner),)))).nodes
    assert refused.outcome == "hostkey_rejected", refused.message


def test_ssh_config_edits_are_seen_without_a_restart(fleet, nodes, tmp_path) -> None:
    """The ssh_config read once per content follows the file: a changed Port is used on the next connection."""
    import os

    from preflight.transport.ssh import secure_connection

    path = _ssh_config(tmp_path, fleet, nodes)
    ssh = SshOptions(known_hosts=(str(fleet.known_hosts),), use_default_known_hosts=False, ssh_config_path=path)
    assert secure_connection("alias-inner", ssh).port == nodes["inner"].port
    text = open(path).read().replace(f"Port {nodes['inner'].port}\n", "Port 1\n", 1)
    with open(path, "w") as fh:
        fh.write(text + "\n")
    os.utime(path)
    assert secure_connection("alias-inner", ssh).port == 1


def test_a_handshake_that_never_ends_is_cut_by_close(tmp_path) -> None:
    """A listener that accepts and never sends a banner: close() from the deadline ends the connect at once."""
    import socket
    import threading
    import time

    from preflight.transport.ssh import secure_connection

    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    try:
        kh = tmp_path / "kh"
        kh.write_text("")
        cxn = secure_connection("127.0.0.1", SshOptions(known_hosts=(str(kh),), use_default_known_hosts=False,
                                                        load_ssh_config=False),
                                port=srv.getsockname()[1], connect_timeout_s=30)
        failed: list[BaseException] = []

        def connect() -> None:
            try:
                cxn.open()
            except BaseException as exc:
                failed.append(exc)

        t = threading.Thread(target=connect)
        t0 = time.monotonic()
        t.start()
        time.sleep(0.5)
        cxn.close()
        t.join(10)
        assert not t.is_alive() and failed, "connect still waiting for the banner after close()"
        assert time.monotonic() - t0 < 10
    finally:
        srv.close()
