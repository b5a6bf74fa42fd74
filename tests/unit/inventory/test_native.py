"""The native format: expansion, inheritance, expectations and where they came from; model basics."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest
from _inventory_files import FIX, ROOT, by_name, write

from preflight.inventory import EXPECT_KEYS, Expectations, Inventory, load_inventory


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


def test_docs_examples_load(tmp_path: Path) -> None:
    import re

    blocks = re.findall(r"```yaml\n(.*?)```", (ROOT / "docs" / "inventory.md").read_text(), re.S)
    assert len(blocks) >= 2
    formats = [load_inventory(write(tmp_path, block, f"doc{i}.yaml")).format for i, block in enumerate(blocks)]
    assert formats[0] == "preflight" and "ansible" in formats  # every example loads: the native one first
