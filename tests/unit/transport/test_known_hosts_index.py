"""The known_hosts index gives each connection the keys paramiko's own HostKeys.load + lookup would give."""

from __future__ import annotations

import subprocess

import paramiko
import pytest

from preflight.transport.known_hosts import _KnownHostsFile
from preflight.transport.known_hosts import parsed_known_hosts as _parsed_known_hosts


def _pub(tmp_path, name: str, kind: str) -> str:
    path = tmp_path / name
    subprocess.run(["ssh-keygen", "-q", "-t", kind, "-N", "", "-f", str(path)], check=True)
    return " ".join((tmp_path / f"{name}.pub").read_text().split()[:2])


@pytest.fixture
def known_hosts(tmp_path):
    a, b, c = _pub(tmp_path, "a", "ed25519"), _pub(tmp_path, "b", "ed25519"), _pub(tmp_path, "c", "ecdsa")
    hashed = paramiko.HostKeys.hash_host("[10.0.0.9]:2222")
    lines = [
        "# a comment", "",
        f"[127.0.0.1]:2001 {a}",
        f"[127.0.0.1]:2001 {b}",  # a second key of the same type: the first one counts
        f"[127.0.0.1]:2001,node7 {c}",
        f"{hashed} {b}",
        f"node8 {a}", f"node8 {a}",  # a duplicate line
        "too-short-a-line",
    ]
    path = tmp_path / "known_hosts"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("name", ["[127.0.0.1]:2001", "node7", "[10.0.0.9]:2222", "node8", "absent",
                                  "127.0.0.1"])
def test_index_equals_paramiko(known_hosts, name) -> None:
    theirs = paramiko.HostKeys()
    theirs.load(str(known_hosts))
    expected = dict((theirs.lookup(name) or {}).items())
    got = _KnownHostsFile(known_hosts).keys_for(name)
    assert {k: v.get_base64() for k, v in got.items()} == {k: v.get_base64() for k, v in expected.items()}


def test_parsed_once_per_content(known_hosts) -> None:
    first = _parsed_known_hosts(known_hosts)
    assert _parsed_known_hosts(known_hosts) is first
    known_hosts.write_text(known_hosts.read_text() + "\n")
    assert _parsed_known_hosts(known_hosts) is not first  # an edit is seen


def test_a_corrupt_key_fails_as_it_fails_paramiko(known_hosts) -> None:
    known_hosts.write_text(known_hosts.read_text() + "node9 ssh-ed25519 AAA\n")
    with pytest.raises(Exception) as theirs:
        paramiko.HostKeys().load(str(known_hosts))
    with pytest.raises(type(theirs.value)):
        _KnownHostsFile(known_hosts)
