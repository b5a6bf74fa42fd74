"""Ansible YAML inventories: hosts and groups, variable inheritance, detection, jump hosts; shipped examples."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from _inventory_files import FIX, ROOT, by_name, write

from preflight.inventory import Inventory, InventoryError, load_inventory


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
