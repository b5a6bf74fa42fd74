"""Ansible INI inventories: detected by content, read as Ansible's ini plugin reads them, errors as file:line: path."""

from __future__ import annotations

from pathlib import Path

import pytest
from _inventory_files import FIX, by_name, write

from preflight.inventory import InventoryError, load_inventory

INI = FIX / "ini"


def test_deepops_example_is_read_as_ini_not_malformed_yaml() -> None:
    """DeepOps's config.example/inventory, verbatim: every host is commented out, so it has no hosts (not a YAML error)."""
    path = INI / "deepops/inventory"
    msg = str(pytest.raises(InventoryError, load_inventory, path).value)
    assert "YAML" not in msg and "defines no hosts" in msg, msg
    assert msg.startswith(f"{path}:12: (hosts): ") and "commented out" in msg, msg  # '#mgmt01 ansible_host=...'


def test_deepops_filled_in_loads_with_groups_children_vars_and_proxycommand() -> None:
    inv = load_inventory(INI / "deepops-filled/inventory")
    assert inv.format == "ansible"
    nodes = by_name(inv)
    assert inv.names == ("mgmt01", "mgmt02", "mgmt03", "login01", "gpu01", "gpu02")
    assert nodes["gpu01"].address == "10.0.2.1" and nodes["gpu01"].user == "ubuntu"
    assert set(nodes["gpu01"].groups) == {"kube-node", "k8s-cluster", "slurm-node", "slurm-cluster", "nfs-clients"}
    assert nodes["gpu01"].proxy_command == "ssh -W %h:%p -q ubuntu@10.0.0.1"
    assert inv.select("@k8s-cluster").names == ("mgmt01", "mgmt02", "mgmt03", "gpu01", "gpu02")


def test_ranges_ports_quoting_and_values(tmp_path: Path) -> None:
    p = write(tmp_path, (
        "[gpu]\n"
        "gpu[01:03] ansible_port=2222\n"
        "rack-[a:b]:2200 ansible_user='ops'  # comment\n"
        "[::1]:2022\n"
        "one ansible_ssh_common_args='-o ProxyJump=\"j@bastion:22\"' preflight_labels=\"{'rack': 'r1'}\"\n"
        "[gpu:vars]\n"
        "preflight_expect={'gpus_per_node': 8, 'cuda_version': 12.10, 'gpu_model': 'NVIDIA H100 80GB HBM3'}\n"
        "preflight_thresholds={'ib.port.errors': {'symbol_error': 100}}\n"
        "ansible_ssh_timeout='7'\n"
    ), "inventory")
    nodes = by_name(load_inventory(p))
    assert list(nodes) == ["gpu01", "gpu02", "gpu03", "rack-a", "rack-b", "::1", "one"]
    assert nodes["gpu02"].port == 2222 and nodes["rack-b"].port == 2200 and nodes["rack-b"].user == "ops"
    assert nodes["::1"].port == 2022
    assert nodes["one"].jump_host == "j@bastion:22" and dict(nodes["one"].labels) == {"rack": "r1"}
    assert nodes["gpu01"].expect.cuda_version == "12.10" and nodes["gpu01"].expect.gpus_per_node == 8
    assert dict(nodes["gpu01"].thresholds["ib.port.errors"]) == {"symbol_error": 100}
    assert nodes["gpu01"].connect_timeout_s == 7.0
    assert nodes["gpu01"].expect_source("gpus_per_node") == f"inventory:{p} group gpu"


def test_hosts_before_any_section_are_ini_too(tmp_path: Path) -> None:
    p = write(tmp_path, "alpha\nbeta ansible_host=10.0.0.2\n", "hosts")
    assert by_name(load_inventory(p))["beta"].address == "10.0.0.2"
    p = write(tmp_path, "alpha\nbeta\n[g]\nalpha\n", "hosts2")
    assert load_inventory(p).nodes[0].groups == ("g",)


def test_a_yaml_inventory_still_reads_as_yaml(tmp_path: Path) -> None:
    p = write(tmp_path, "all:\n  hosts:\n    a: {ansible_port: 2}\n")
    assert load_inventory(p).nodes[0].port == 2


def test_children_declared_later_and_vars_of_parent_and_child(tmp_path: Path) -> None:
    p = write(tmp_path, (
        "[pod:children]\ngpu\n[pod:vars]\nansible_user=pod\nansible_port=1\n"
        "[gpu]\ng1\n[gpu:vars]\nansible_user=gpu\n[all:vars]\nansible_user=all\nansible_port=3\n"
    ), "inventory")
    node = load_inventory(p).nodes[0]
    assert (node.user, node.port, node.groups) == ("gpu", 1, ("gpu", "pod"))


@pytest.mark.parametrize("text, line, key, needle", [
    ("[gpu]\ng1 ansible_port=0\n", 2, "[gpu].g1.ansible_port", "must be 1..65535"),
    ("[gpu]\ng1 ansible_user\n", 2, "[gpu].g1", "expected key=value"),
    ("[gpu]\ng1 'unclosed\n", 2, "[gpu]", "cannot parse the host line"),
    ("[gpu:child]\ng1\n", 1, "[gpu:child]", "did you mean 'children'"),
    ("[gpu]\ng1\n[gpu:vars]\nansible_prot=1\npreflight_expct={}\n", 5, "[gpu:vars].preflight_expct",
     "did you mean 'preflight_expect'"),
    ("[gpu]\ng1\n[gpu:vars]\npreflight_expect={'gpus_per_nod': 8}\n", 4, "[gpu:vars].preflight_expect.gpus_per_nod",
     "did you mean 'gpus_per_node'"),
    ("[gpu]\ng1\n[gpu:vars]\nansible_user\n", 4, "[gpu:vars]", "expected key=value"),
    ("[gpu]\ng1\n[gpus:vars]\nansible_user=x\n", 3, "[gpus:vars]", "undefined group 'gpus' (did you mean 'gpu'?)"),
    ("[gpu]\ng1\n[pod:children]\ngpus\n", 4, "[pod:children].gpus", "did you mean 'gpu'"),
    ("[gpu]\ng[05:01]\n", 2, "[gpu].g[05:01]", "backwards"),
    ("[gpu]\ng1 ansible_ssh_common_args='-o ProxyCommand=\"ssh -W %h:%p %n\"'\n", 2,
     "[gpu].g1.ansible_ssh_common_args", "'%n' is not expanded"),
    ("[gpu]\ng1 ansible_host='{{ x }}'\n", 2, "[gpu].g1.ansible_host", "Jinja"),
    ("[a b]\ng1\n", 1, '"[a b]"', "invalid section header"),
    ("[a:children]\nb\n[b:children]\na\n[b]\nh1\n", 3, "b.children.a", "a -> b -> a"),
])
def test_ini_errors_name_file_line_and_key(tmp_path: Path, text: str, line: int, key: str, needle: str) -> None:
    p = write(tmp_path, text, "inventory")
    msg = str(pytest.raises(InventoryError, load_inventory, p).value)
    assert "\n" not in msg
    assert msg.startswith(f"{p}:{line}: {key}: "), msg
    assert needle in msg, msg


def test_group_vars_and_host_vars_precedence() -> None:
    """group_vars/all beats the file's [group:vars]; deeper group_vars beat it; host vars, then host_vars/, win."""
    nodes = by_name(load_inventory(INI / "gpu-fleet/inventory"))
    assert nodes["login01"].port == 22  # group_vars/all.yml
    assert nodes["gpu06"].port == 2210  # group_vars/h100/10-connection.yml over group_vars/all
    assert nodes["gpu01"].port == 2201  # the host's own ansible_port over group_vars
    assert (nodes["gpu03"].port, nodes["gpu03"].user) == (2203, "special")  # host_vars/gpu03.yml
    assert nodes["gpu01"].expect.gpu_model == "NVIDIA H100 80GB HBM3"  # group_vars/h100/20-expect.yaml
    assert nodes["gpu06"].expect.gpus_per_node == 4  # host var over group_vars
    assert dict(nodes["node-a"].labels) == {"rack": "r1"}  # group_vars/gpu, no extension
    src = nodes["gpu01"].expect_source("gpu_model")
    assert src.endswith("group h100 (group_vars/h100/20-expect.yaml)"), src


def test_group_vars_errors_name_the_vars_file(tmp_path: Path) -> None:
    (tmp_path / "group_vars").mkdir()
    p = write(tmp_path, "[gpu]\ng1\n", "inventory")
    bad = tmp_path / "group_vars" / "gpu.yml"
    bad.write_text("# x\npreflight_expect:\n  gpus_per_nod: 8\n")
    msg = str(pytest.raises(InventoryError, load_inventory, p).value)
    assert msg.startswith(f"{bad}:3: preflight_expect.gpus_per_nod: ") and "did you mean" in msg, msg
    bad.write_text("$ANSIBLE_VAULT;1.1;AES256\n3132\n")
    assert "ansible-vault" in str(pytest.raises(InventoryError, load_inventory, p).value)
    bad.write_text("- a\n")
    assert "must be a mapping" in str(pytest.raises(InventoryError, load_inventory, p).value)


def test_native_inventories_ignore_group_vars(tmp_path: Path) -> None:
    (tmp_path / "group_vars").mkdir()
    (tmp_path / "group_vars" / "all.yml").write_text("ansible_port: 9\n")
    p = write(tmp_path, "hosts:\n  a: {}\n")
    assert load_inventory(p).nodes[0].port is None


def test_docs_ini_examples_load(tmp_path: Path) -> None:
    import re

    from _inventory_files import ROOT

    blocks = re.findall(r"```ini\n(.*?)```", (ROOT / "docs" / "inventory.md").read_text(), re.S)
    assert blocks
    for i, block in enumerate(blocks):
        inv = load_inventory(write(tmp_path, block, f"doc{i}"))
        assert inv.format == "ansible" and inv.nodes
    node = by_name(inv)["gpu01"]
    assert node.proxy_command == "ssh -W %h:%p -q ubuntu@10.0.0.1" and node.expect.gpus_per_node == 8


def test_preflight_vars_at_every_level_merge_and_validate(tmp_path: Path) -> None:
    """preflight_expect / preflight_thresholds in the INI file, group_vars/ and host_vars/, merged key by key."""
    (tmp_path / "group_vars").mkdir()
    (tmp_path / "host_vars").mkdir()
    (tmp_path / "group_vars" / "all.yml").write_text(
        "preflight_expect: {gpus_per_node: 8}\npreflight_thresholds: {ib.port.state: {allow_down: 0, min_rate_gbps: 400}}\n")
    (tmp_path / "group_vars" / "gpu.yaml").write_text("preflight_thresholds:\n  ib.port.state: {allow_down: 1}\n")
    (tmp_path / "host_vars" / "g2.yml").write_text("preflight_expect:\n  gpus_per_node: 4\n  ib_ports: null\n")
    p = write(tmp_path, "[gpu]\ng1\ng2\n[gpu:vars]\npreflight_expect={'ib_ports': 8}\n", "inventory")
    nodes = by_name(load_inventory(p))
    assert nodes["g1"].expect.as_dict() == {"gpus_per_node": 8, "ib_ports": 8}
    assert nodes["g2"].expect.as_dict() == {"gpus_per_node": 4}  # null removes an inherited value
    assert dict(nodes["g1"].thresholds["ib.port.state"]) == {"allow_down": 1, "min_rate_gbps": 400}
    assert nodes["g2"].expect_source("gpus_per_node").endswith("host g2 (host_vars/g2.yml)")
    (tmp_path / "host_vars" / "g2.yml").write_text("preflight_expect:\n  gpus_per_node: -1\n")
    msg = str(pytest.raises(InventoryError, load_inventory, p).value)
    assert msg.startswith(f"{tmp_path / 'host_vars' / 'g2.yml'}:2: preflight_expect.gpus_per_node: must be >= 0"), msg
