"""Inventory loading (native and Ansible), selection, one-line errors, host patterns."""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path

import pytest

from preflight import hostpattern
from preflight.hostpattern import HostPatternError, compress, expand
from preflight.inventory import (
    EXPECT_KEYS,
    Expectations,
    Inventory,
    InventoryError,
    Node,
    inventory_from_hosts,
    load_inventory,
)

ROOT = Path(__file__).resolve().parents[2]
FIX = ROOT / "tests" / "fixtures" / "inventories"
BAD = FIX / "bad"


def by_name(inv: Inventory) -> dict[str, Node]:
    return {n.name: n for n in inv.nodes}


# ---- native format -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def good() -> Inventory:
    return load_inventory(FIX / "good.yaml")


def test_native_expansion_and_order(good: Inventory) -> None:
    assert good.format == "preflight"
    assert good.path == str(FIX / "good.yaml")
    assert good.names == ("gpu-01", "gpu-02", "gpu-03", "gpu-04", "gpu-05", "login-01", "spare-01")
    nodes = by_name(good)
    assert [nodes[f"gpu-0{i}"].address for i in range(1, 5)] == [f"10.0.0.{i}" for i in range(1, 5)]
    assert nodes["spare-01"].address == "spare-01"  # no address: the name (~/.ssh/config applies)


def test_native_connection_inheritance(good: Inventory) -> None:
    n = by_name(good)
    gpu = n["gpu-01"]
    # defaults -> pod (parent via children) -> h100 -> host
    assert gpu.user == "ubuntu"
    assert gpu.port == 22
    assert gpu.connect_timeout_s == 7.0
    assert gpu.command_timeout_s == 300.0
    assert gpu.jump_host == "ops@bastion.example.com:2200"
    assert gpu.identity_file == str(FIX / "keys" / "fleet_ed25519")  # relative to the inventory file
    assert gpu.groups == ("h100", "pod")
    assert n["gpu-05"].port == 2222
    assert dict(n["gpu-05"].labels) == {"rack": "r2", "slot": "7"}
    login = n["login-01"]
    assert (login.user, login.jump_host, login.connect_timeout_s, login.command_timeout_s) == ("root", None, 5.0, 120.0)
    assert login.groups == ("login",)
    assert n["spare-01"].groups == ()
    assert good.known_hosts == (str(FIX / "known_hosts.fleet"), os.path.expanduser("~/.ssh/known_hosts.extra"))


def test_native_expectations_and_sources(good: Inventory) -> None:
    n = by_name(good)
    src = f"inventory:{FIX / 'good.yaml'}"
    gpu = n["gpu-03"]
    assert gpu.expect.as_dict() == {
        "gpus_per_node": 8, "gpu_model": "NVIDIA H100 80GB HBM3", "driver_version": "550.127.05",
        "cuda_version": "12.10", "ib_ports": 8, "ib_rate_gbps": 400, "nvlinks_per_gpu": 18,
    }
    assert gpu.expect_source("gpus_per_node") == f"{src} defaults"
    assert gpu.expect_source("driver_version") == f"{src} group h100"
    assert gpu.expect_source("ib_rate_gbps") == f"{src} group pod"
    login = n["login-01"]
    assert login.expect.gpus_per_node == 0 and login.expect_source("gpus_per_node") == f"{src} host login-01"
    assert login.expect.ib_ports is None  # null drops the inherited value
    with pytest.raises(KeyError):
        login.expect_source("ib_ports")
    assert dict(login.expect.extra) == {"x_role": "login"}
    assert login.expect.as_dict()["x_role"] == "login"
    assert n["spare-01"].expect.driver_version == "550.90.07"


def test_native_thresholds_deep_merge(good: Inventory) -> None:
    n = by_name(good)
    assert {k: dict(v) for k, v in n["gpu-01"].thresholds.items()} == {
        "ib.port.state": {"min_rate_gbps": 400, "allow_down": 1}}
    assert {k: dict(v) for k, v in n["spare-01"].thresholds.items()} == {
        "ib.port.state": {"min_rate_gbps": 400, "allow_down": 0}}


def test_nodes_are_frozen_and_replaceable(good: Inventory) -> None:
    node = good.nodes[0]
    with pytest.raises(dataclasses.FrozenInstanceError):
        node.port = 1  # type: ignore[misc]
    again = dataclasses.replace(node, connect_timeout_s=3.0)
    assert again.connect_timeout_s == 3.0
    assert again.expect_source("driver_version").endswith("group h100")


def test_expectations_fields_are_the_expect_keys() -> None:
    assert EXPECT_KEYS == (
        "gpus_per_node", "gpu_model", "driver_version", "cuda_version", "nccl_version", "ib_ports",
        "ib_rate_gbps", "nvlinks_per_gpu", "host_memory_gib_min", "shm_gib_min", "hugepages_gib_min", "allreduce_busbw_gbps_min",
        "nccl_socket_ifname", "nccl_ib_hca", "nccl_net", "accept",
    )
    assert Expectations().as_dict() == {}
    assert Expectations(ib_ports=4).as_dict() == {"ib_ports": 4}


# ---- Ansible format ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ansible() -> Inventory:
    return load_inventory(FIX / "ansible.yaml")


def test_ansible_hosts_and_groups(ansible: Inventory) -> None:
    assert ansible.format == "ansible"
    assert ansible.names == ("mgmt-01", "gpu01", "gpu02", "gpu03", "gpu04", "nas-01")
    n = by_name(ansible)
    assert [n[f"gpu0{i}"].address for i in (1, 2, 3, 4)] == ["10.1.0.1", "10.1.0.2", "10.1.0.3", "10.1.0.4"]
    assert n["gpu01"].groups == ("h100", "gpu")
    assert n["gpu04"].groups == ("h100", "gpu", "storage")  # most specific first
    assert n["mgmt-01"].address == "local" and n["mgmt-01"].groups == ()


def test_ansible_variable_inheritance(ansible: Inventory) -> None:
    n = by_name(ansible)
    g1, g4, nas = n["gpu01"], n["gpu04"], n["nas-01"]
    assert (g1.user, g1.port, g1.jump_host, g1.identity_file) == ("ubuntu", 2222, "jump@bastion:2200", None)
    assert (g4.port, g4.jump_host, g4.identity_file) == (2200, "other@jump2", os.path.expanduser("~/.ssh/gpu04"))
    assert (nas.user, nas.port, nas.jump_host) == ("root", None, None)  # empty ssh args: no jump
    assert g1.expect.as_dict() == {"gpus_per_node": 8, "gpu_model": "NVIDIA H100 80GB HBM3",
                                   "cuda_version": "12.4", "nvlinks_per_gpu": 18}
    src = f"inventory:{FIX / 'ansible.yaml'}"
    assert g1.expect_source("gpus_per_node") == f"{src} group all"
    assert g1.expect_source("gpu_model") == f"{src} group gpu"
    assert g1.expect_source("nvlinks_per_gpu") == f"{src} group h100"
    assert g4.expect.gpus_per_node == 4 and g4.expect_source("gpus_per_node") == f"{src} host gpu04"
    assert dict(g4.labels) == {"rack": "r9"}
    assert dict(g1.thresholds["ib.port.state"]) == {"allow_down": 1, "min_rate_gbps": 400}
    assert dict(nas.thresholds["ib.port.state"]) == {"allow_down": 0, "min_rate_gbps": 400}


def test_shipped_examples_load() -> None:
    native = load_inventory(ROOT / "inventories" / "example.yaml")
    assert native.format == "preflight" and len(native.nodes) == 4
    assert all(n.expect.gpu_model == "NVIDIA H100 80GB HBM3" for n in native.nodes)
    assert by_name(native)["gpu-04"].port == 2222
    ans = load_inventory(ROOT / "inventories" / "ansible-example.yaml")
    assert ans.format == "ansible"
    assert ans.names == ("gpu01", "gpu02", "gpu03", "gpu04", "a100-01", "login01")
    login = by_name(ans)["login01"]
    assert login.jump_host is None and login.expect.as_dict() == {"gpus_per_node": 0}


# ---- select ------------------------------------------------------------------------------------


@pytest.mark.parametrize("pattern, names", [
    (None, ("gpu-01", "gpu-02", "gpu-03", "gpu-04", "gpu-05", "login-01", "spare-01")),
    ("gpu-02", ("gpu-02",)),
    ("gpu-0*", ("gpu-01", "gpu-02", "gpu-03", "gpu-04", "gpu-05")),
    ("gpu-[02-03]", ("gpu-02", "gpu-03")),
    ("gpu-[1-2]", None),  # unpadded range: no such names
    ("spare-01,gpu-[01-02]", ("gpu-01", "gpu-02", "spare-01")),  # inventory order, not pattern order
    ("@login", ("login-01",)),
    ("group:pod", ("gpu-01", "gpu-02", "gpu-03", "gpu-04", "gpu-05")),
    ("login", ("login-01",)),  # a bare group name
    ("@pod,!gpu-0[3-5]", ("gpu-01", "gpu-02")),
    ("!@pod", ("login-01", "spare-01")),
    ("@all", ("gpu-01", "gpu-02", "gpu-03", "gpu-04", "gpu-05", "login-01", "spare-01")),
    ("gpu-01,gpu-01", ("gpu-01",)),
])
def test_select(good: Inventory, pattern: str | None, names: tuple[str, ...] | None) -> None:
    if names is None:
        with pytest.raises(InventoryError):
            good.select(pattern)
        return
    chosen = good.select(pattern)
    assert chosen.names == names
    assert (chosen.path, chosen.format, chosen.known_hosts) == (good.path, good.format, good.known_hosts)


@pytest.mark.parametrize("pattern, needle", [
    ("gpu-9*", "'gpu-9*'"),
    ("@h200", "did you mean '@h100'"),
    ("gpu-06", "did you mean 'gpu-05'"),
    ("gpu-[01-", "bad pattern"),
    ("@pod,!@pod", "leaves no host"),
])
def test_select_errors(good: Inventory, pattern: str, needle: str) -> None:
    with pytest.raises(InventoryError) as exc:
        good.select(pattern)
    msg = str(exc.value)
    assert "\n" not in msg and needle in msg and str(FIX / "good.yaml") in msg


# ---- errors ------------------------------------------------------------------------------------


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


def write(tmp_path: Path, text: str, name: str = "inv.yaml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


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


def test_merge_keys_and_x_prefixed_expectations(tmp_path: Path) -> None:
    p = write(tmp_path, (
        "hosts:\n"
        "  base: &b {user: root, port: 2200, expect: {x_fabric: ndr}}\n"
        "  other:\n"
        "    <<: *b\n"
        "    port: 2201\n"
    ))
    n = by_name(load_inventory(p))
    assert (n["other"].user, n["other"].port) == ("root", 2201)
    assert dict(n["other"].expect.extra) == {"x_fabric": "ndr"}


def test_hosts_as_a_list_and_numeric_versions(tmp_path: Path) -> None:
    p = write(tmp_path, "expect: {cuda_version: 12.4, nccl_version: 2.21}\nhosts: ['gpu-[1-2]', login]\n")
    inv = load_inventory(p)
    assert inv.names == ("gpu-1", "gpu-2", "login")
    assert inv.nodes[0].expect.cuda_version == "12.4" and inv.nodes[0].expect.nccl_version == "2.21"


def test_ansible_detection_without_all(tmp_path: Path) -> None:
    p = write(tmp_path, "h100:\n  hosts:\n    gpu[1:3]:\n  vars:\n    ansible_user: ubuntu\n")
    inv = load_inventory(p)
    assert inv.format == "ansible"
    assert inv.names == ("gpu1", "gpu2", "gpu3") and inv.nodes[0].user == "ubuntu"
    assert inv.select("@h100").names == inv.names


def test_ansible_jump_host_forms(tmp_path: Path) -> None:
    p = write(tmp_path, (
        "all:\n  hosts:\n"
        "    a: {ansible_ssh_common_args: '-J u@j1:22'}\n"
        "    b: {ansible_ssh_common_args: '-oProxyJump=j2'}\n"
        "    c: {ansible_ssh_common_args: '-o \"ProxyJump j3\"'}\n"
        "    d: {ansible_ssh_common_args: '-o ProxyJump=none'}\n"
        "    e: {ansible_ssh_extra_args: '-J j5'}\n"
    ))
    assert [n.jump_host for n in load_inventory(p).nodes] == ["u@j1:22", "j2", "j3", None, "j5"]


def test_ansible_host_in_two_groups_is_fine_but_not_a_template(tmp_path: Path) -> None:
    p = write(tmp_path, "a:\n  hosts: {x: }\nb:\n  hosts: {x: }\n")
    assert load_inventory(p).nodes[0].groups == ("a", "b")
    p = write(tmp_path, "all:\n  hosts:\n    x: {ansible_host: '{{ inventory_hostname }}.lan'}\n", "t.yaml")
    msg = str(pytest.raises(InventoryError, load_inventory, p).value)
    assert msg.startswith(f"{p}:3: all.hosts.x.ansible_host: ") and "Jinja" in msg


# ---- inventory_from_hosts ------------------------------------------------------------------------


def test_inventory_from_hosts() -> None:
    inv = inventory_from_hosts(["gpu-01", "root@gpu-02:2222", "[::1]:2201", "n[01-02]"],
                               user="admin", connect_timeout_s=3, expect={"gpus_per_node": 8})
    n = by_name(inv)
    assert inv.names == ("gpu-01", "gpu-02", "::1", "n01", "n02")
    assert (n["gpu-01"].user, n["gpu-01"].port, n["gpu-01"].connect_timeout_s) == ("admin", None, 3.0)
    assert (n["gpu-02"].user, n["gpu-02"].port) == ("root", 2222)
    assert (n["::1"].address, n["::1"].port) == ("::1", 2201)
    assert n["n02"].expect.gpus_per_node == 8 and n["n02"].expect_source("gpus_per_node")


def test_inventory_from_hosts_same_address_different_ports() -> None:
    inv = inventory_from_hosts(["127.0.0.1:2201", "127.0.0.1:2202"])
    assert inv.names == ("127.0.0.1:2201", "127.0.0.1:2202")
    assert {n.address for n in inv.nodes} == {"127.0.0.1"}


@pytest.mark.parametrize("hosts, needle", [
    ([], "no hosts"), (["a", "a"], "twice"), (["a:70000"], "bad port"), (["gpu-[1-"], "bad host pattern"),
])
def test_inventory_from_hosts_errors(hosts: list[str], needle: str) -> None:
    msg = str(pytest.raises(InventoryError, inventory_from_hosts, hosts).value)
    assert needle in msg and "\n" not in msg


def test_inventory_from_hosts_rejects_unknown_defaults() -> None:
    with pytest.raises(TypeError):
        inventory_from_hosts(["a"], usr="x")


# ---- host patterns -------------------------------------------------------------------------------


@pytest.mark.parametrize("pattern, names", [
    ("gpu-[00-03]", ["gpu-00", "gpu-01", "gpu-02", "gpu-03"]),
    ("gpu-[1-3,7]", ["gpu-1", "gpu-2", "gpu-3", "gpu-7"]),
    ("n[01-02]-ib[0-1]", ["n01-ib0", "n01-ib1", "n02-ib0", "n02-ib1"]),
    ("gpu[01:04]", ["gpu01", "gpu02", "gpu03", "gpu04"]),
    ("gpu[1:7:3]", ["gpu1", "gpu4", "gpu7"]),
    ("rack[a:c]", ["racka", "rackb", "rackc"]),
    ("gpu-[8-11]", ["gpu-8", "gpu-9", "gpu-10", "gpu-11"]),
    ("gpu-[01-02],login", ["gpu-01", "gpu-02", "login"]),
    ("plain", ["plain"]),
])
def test_expand(pattern: str, names: list[str]) -> None:
    assert expand(pattern) == names


@pytest.mark.parametrize("bad", [
    "gpu-[01-", "gpu-]", "gpu-[5-1]", "gpu-[a-b]", "gpu-[]", "gpu-[[1-2]]", "a b", "", "gpu[1:2:0]", "gpu[1:2:3:4]",
])
def test_expand_errors(bad: str) -> None:
    with pytest.raises(HostPatternError):
        expand(bad)


def test_expand_is_bounded() -> None:
    with pytest.raises(HostPatternError, match="100000"):
        expand("n[0-999]-g[0-999]")
    assert len(expand("n[1-100000]")) == hostpattern.MAX_NAMES


@pytest.mark.parametrize("pattern", [
    "gpu-[00-63]", "gpu-[1-3,7]", "n[01-02]-ib[0-1]", "gpu-[8-11]", "gpu-[01-04],login-01", "a[1-2]b[3-4]c[5-6]",
    "gpu-[01-02,3,04-05]",
])
def test_compress_round_trip(pattern: str) -> None:
    names = expand(pattern)
    assert compress(names) == pattern
    assert expand(compress(names)) == names


def test_compress_display() -> None:
    assert compress(["gpu-03", "gpu-01", "gpu-02", "login", "gpu-01"]) == "gpu-[01-03],login"
    assert compress(["gpu01", "gpu02", "gpu04"]) == "gpu[01-02,04]"
    assert compress([]) == ""
    names = ["b7", "a1", "a3", "x"]
    assert sorted(expand(compress(names))) == sorted(names)


def test_docs_examples_load(tmp_path: Path) -> None:
    import re

    blocks = re.findall(r"```yaml\n(.*?)```", (ROOT / "docs" / "inventory.md").read_text(), re.S)
    assert len(blocks) >= 2
    formats = [load_inventory(write(tmp_path, block, f"doc{i}.yaml")).format for i, block in enumerate(blocks)]
    assert formats[0] == "preflight" and "ansible" in formats  # every example loads: the native one first
