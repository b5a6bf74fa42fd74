"""Every inventory problem is one line: file:line: key.path: problem (did-you-mean where it helps)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from _inventory_files import BAD, write

from preflight.inventory import InventoryError, load_inventory


@pytest.mark.parametrize("fixture, line, key, needle", [
    ("malformed.yaml", 5, "(yaml)", "started at line 4"),
    ("empty.yaml", None, "(top level)", "empty"),
    ("toplevel-list.yaml", 1, "(top level)", "must be a mapping"),
    ("unknown-top-key.yaml", 3, "group", "did you mean 'groups'"),
    ("unknown-expect-key.yaml", 6, "groups.h100.expect.gpus_per_nod", "did you mean 'gpus_per_node'"),
    ("unknown-host-key.yaml", 5, "hosts.gpu-02.adress", "did you mean 'address'"),
    ("bad-port.yaml", 7, "groups.h100.hosts.gpu-01.port", "must be an integer"),
    ("bad-gpus.yaml", 5, "expect.gpus_per_node", "must be an integer"),
    ("duplicate-host.yaml", 8, "groups.debug.hosts.gpu-03", "line 4"),
    ("duplicate-key.yaml", 6, "groups.h100.hosts.gpu-01", "first defined at line 4"),
    ("unknown-child.yaml", 8, "groups.pod.children[1]", "'h200' (did you mean 'h100'?)"),
    ("bad-pattern.yaml", 5, "groups.h100.hosts.gpu-[05-02]", "backwards"),
    ("address-mismatch.yaml", 6, "groups.h100.hosts.gpu-[01-04].address", "3 addresses"),
    ("no-hosts.yaml", 3, "groups", "no hosts"),
    ("children-cycle.yaml", 7, "groups.b.children[0]", "a -> b -> a"),
    ("too-many.yaml", 2, "hosts.gpu-[000000-999999]", "more than 100000"),
    ("ansible-unknown-key.yaml", 4, "all.children.h100.host", "did you mean 'hosts'"),
    ("ansible-bad-var.yaml", 7, "all.children.h100.vars.ansible_port", "must be an integer"),
    ("ansible-unknown-preflight-var.yaml", 3, "all.vars.preflight_expects", "did you mean 'preflight_expect'"),
    ("ansible-proxycommand.yaml", 4, "h100.hosts.gpu01.ansible_ssh_common_args", "ProxyJump"),
])
def test_error_names_file_line_and_key(fixture: str, line: int | None, key: str, needle: str) -> None:
    path = BAD / fixture
    with pytest.raises(InventoryError) as exc:
        load_inventory(path)
    err = exc.value
    msg = str(err)
    assert "\n" not in msg
    prefix = f"{path}:{line}: " if line else f"{path}: "
    assert msg.startswith(prefix + key + ": "), msg
    assert needle in msg, msg
    assert (err.file, err.line, err.key_path) == (str(path), line, key)


def test_duplicate_host_names_both_lines() -> None:
    msg = str(pytest.raises(InventoryError, load_inventory, BAD / "duplicate-host.yaml").value)
    assert "line 4" in msg and "line 8" in msg and "'gpu-03'" in msg


def test_too_many_names_is_refused_fast() -> None:
    t0 = time.monotonic()
    with pytest.raises(InventoryError):
        load_inventory(BAD / "too-many.yaml")
    assert time.monotonic() - t0 < 1.0


@pytest.mark.parametrize("text, line, key, needle", [
    ("hosts:\n  gpu-01: {port: 0}\n", 2, "hosts.gpu-01.port", "1..65535"),
    ("hosts:\n  gpu-01: {port: true}\n", 2, "hosts.gpu-01.port", "must be an integer"),
    ("hosts:\n  gpu-01:\n    expect: {gpus_per_node: 8.5}\n", 3, "hosts.gpu-01.expect.gpus_per_node", "integer"),
    ("hosts:\n  gpu-01:\n    gpus_per_node: 8\n", 3, "hosts.gpu-01.gpus_per_node", "expect:"),
    ("hosts:\n  gpu-01: {connect_timeout_s: -1}\n", 2, "hosts.gpu-01.connect_timeout_s", "> 0"),
    ("hosts:\n  gpu-01: {jump_host: 'a,b'}\n", 2, "hosts.gpu-01.jump_host", "multi-hop"),
    ("hosts:\n  gpu-[01-02]: {address: 10.0.0.1}\n", 2, "hosts.gpu-[01-02].address", "one address"),
    ("hosts:\n  gpu-[01-02]: {address: 10.0.0.[1-2]}\n", 2, "(yaml)", "quote ranges"),
    ("hosts:\n  'gpu 01': {}\n", 2, 'hosts."gpu 01"', "whitespace"),
    ("hosts:\n  gpu-*: {}\n", 2, "hosts.gpu-*", "bad host name"),
    ("groups:\n  h100:\n    user: root\n    hosts: {gpu-01: {}}\n", 3, "groups.h100.user", "vars:"),
    ("groups:\n  all:\n    hosts: {gpu-01: {}}\n", 2, "groups.all", "reserved"),
    ("groups: [a, b]\n", 1, "groups", "must be a mapping"),
    ("hosts:\n  gpu-01: {}\n  gpu-02: {}\nhosts:\n  gpu-03: {}\n", 4, "hosts", "first defined at line 1"),
    ("expect:\n  driver_version: true\nhosts: {a: {}}\n", 2, "expect.driver_version", "string"),
    ("known_hosts: 3\nhosts: {a: {}}\n", 1, "known_hosts", "file path"),
    ("thresholds:\n  ib.port.state: 3\nhosts: {a: {}}\n", 2, 'thresholds."ib.port.state"', "mapping"),
    ("hosts:\n  a:\n    labels: {rack: [1]}\n", 3, "hosts.a.labels.rack", "scalar"),
    ("hosts: {}\n", 1, "hosts", "no hosts"),
    ("{}\n", 1, "(top level)", "no hosts"),
    ("hosts:\n  a: {}\n---\nhosts:\n  b: {}\n", 3, "(yaml)", "single document"),
    ("hosts:\n  a: !vault |\n    abc\n", 2, "hosts.a", "vault"),
])
def test_more_errors(tmp_path: Path, text: str, line: int | None, key: str, needle: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(InventoryError) as exc:
        load_inventory(path)
    msg = str(exc.value)
    assert "\n" not in msg
    assert msg.startswith(f"{path}:{line}: {key}: " if line else f"{path}: {key}: "), msg
    assert needle in msg, msg


def test_missing_and_binary_files(tmp_path: Path) -> None:
    msg = str(pytest.raises(InventoryError, load_inventory, tmp_path / "nope.yaml").value)
    assert msg.startswith(f"{tmp_path / 'nope.yaml'}: ") and "no such file" in msg
    p = tmp_path / "bin.yaml"
    p.write_bytes(b"hosts:\n  a: {}\n\xff\xfe\n")
    assert "UTF-8" in str(pytest.raises(InventoryError, load_inventory, p).value)
