"""The INI / YAML + group_vars/host_vars reader against Ansible itself: `ansible-inventory --list` on the same files.

For every fixture, each host's groups and the variables preflight reads (ansible_host, ansible_port,
ansible_user, ansible_ssh_private_key_file, ansible_ssh_timeout, the proxy in ansible_ssh_common_args /
_extra_args, preflight_expect / _thresholds / _labels) must be what Ansible resolves. The one documented
difference: preflight_* dictionaries merge key by key across levels where Ansible keeps the deepest whole,
so Ansible's dictionary must be contained in preflight's. ansible-core is in the `test` extra only; without it
these tests skip with the reason.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from _inventory_files import FIX, by_name

from preflight.inventory import InventoryError, load_inventory
from preflight.inventory.ansible import _jump_from_ssh_args
from preflight.inventory.source import _Ctx

INI = FIX / "ini"
COMPARED = {  # fixture -> where it comes from
    "deepops-filled/inventory": "NVIDIA DeepOps config.example/inventory, hosts uncommented",
    "ansible-examples/hosts": "ansible/ansible examples/hosts, verbatim",
    "docs-per-environment/inventory_test": "Ansible docs inventory guide, verbatim",
    "docs-host-params/hosts": "Ansible docs inventory guide, verbatim",
    "gpu-fleet/inventory": "ours: INI with every feature, group_vars/ (file, dir, no extension), host_vars/",
    "yaml-fleet/hosts.yml": "ours: YAML with group_vars/ (yaml, json) and host_vars/",
}
_BIN = Path(sys.executable).parent / "ansible-inventory"
ANSIBLE_INVENTORY = str(_BIN) if _BIN.exists() else shutil.which("ansible-inventory")
needs_ansible = pytest.mark.skipif(ANSIBLE_INVENTORY is None,
                                   reason="ansible-core not installed (pip install -e '.[test]' brings it)")


def _ansible_list(path: Path, home: Path) -> dict[str, Any]:
    env = {**os.environ, "HOME": str(home), "ANSIBLE_HOME": str(home / ".ansible"),
           "ANSIBLE_LOCAL_TEMP": str(home / "tmp"), "ANSIBLE_CONFIG": str(home / "ansible.cfg"),
           "ANSIBLE_INVENTORY_UNPARSED_FAILED": "true", "ANSIBLE_NOCOLOR": "1"}
    assert ANSIBLE_INVENTORY is not None
    proc = subprocess.run([ANSIBLE_INVENTORY, "-i", str(path), "--list"], capture_output=True, text=True,
                          env=env, timeout=120, check=False)
    return {"rc": proc.returncode, "out": json.loads(proc.stdout) if proc.returncode == 0 else None,
            "err": proc.stderr}


@pytest.fixture(scope="module")
def ansible_lists(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    if ANSIBLE_INVENTORY is None:
        pytest.skip("ansible-core not installed")
    home = tmp_path_factory.mktemp("ansible-home")
    (home / "ansible.cfg").write_text("")
    names = [*COMPARED, "docs-undefined-children/inventory"]
    with ThreadPoolExecutor(2) as pool:
        return dict(zip(names, pool.map(lambda n: _ansible_list(INI / n, home), names)))


def _groups_of(listing: dict[str, Any]) -> dict[str, set[str]]:
    """host -> every group it is in (through children), as `ansible-inventory --list` lays them out."""
    def members(group: str, seen: frozenset[str] = frozenset()) -> set[str]:
        entry = listing.get(group, {})
        out = set(entry.get("hosts", ()))
        for child in entry.get("children", ()):
            if child not in seen:
                out |= members(child, seen | {group})
        return out

    hosts: dict[str, set[str]] = {h: set() for h in [*listing["_meta"]["hostvars"], *members("all")]}
    for group in listing:
        if group in ("_meta", "all", "ungrouped"):
            continue
        for h in members(group):
            hosts.setdefault(h, set()).add(group)
    return hosts


def _contained(ours: Any, theirs: Any) -> bool:
    if isinstance(theirs, dict):
        return isinstance(ours, dict) and all(k in ours and _contained(ours[k], v) for k, v in theirs.items())
    if isinstance(theirs, float) and isinstance(ours, str):  # a bare version number keeps its spelling here
        return float(ours) == theirs
    if isinstance(theirs, (int, float)) and not isinstance(theirs, bool) and isinstance(ours, str):
        return ours == str(theirs)
    return bool(ours == theirs)


def _expected_jump(hv: dict[str, Any]) -> str | None:
    ctx = _Ctx("ansible-inventory", None)
    for key in ("ansible_ssh_extra_args", "ansible_ssh_common_args"):
        if hv.get(key):
            jump = _jump_from_ssh_args(ctx, str(hv[key]), None, (key,))
            if jump:
                return jump
    return None


@needs_ansible
@pytest.mark.parametrize("fixture", list(COMPARED))
def test_reader_equals_ansible_inventory_list(fixture: str, ansible_lists: dict[str, dict[str, Any]]) -> None:
    result = ansible_lists[fixture]
    assert result["rc"] == 0, result["err"]
    listing = result["out"]
    hostvars: dict[str, dict[str, Any]] = listing["_meta"]["hostvars"]
    groups = _groups_of(listing)
    nodes = by_name(load_inventory(INI / fixture))
    assert set(nodes) == set(groups), f"hosts differ: {set(nodes) ^ set(groups)}"
    for name, node in nodes.items():
        hv = hostvars.get(name, {})
        assert set(node.groups) == groups[name], name
        assert node.address == hv.get("ansible_host", name), name
        port = hv.get("ansible_port")
        assert node.port == (int(port) if port is not None else None), name
        assert node.user == hv.get("ansible_user"), name
        assert node.identity_file == hv.get("ansible_ssh_private_key_file"), name
        assert node.connect_timeout_s == float(hv.get("ansible_ssh_timeout", 10)), name
        assert node.jump_host == _expected_jump(hv), name
        assert _contained(node.expect.as_dict(), hv.get("preflight_expect", {})), name
        assert _contained({k: dict(v) for k, v in node.thresholds.items()}, hv.get("preflight_thresholds", {})), name
        assert _contained(dict(node.labels), hv.get("preflight_labels", {})), name


@needs_ansible
def test_both_refuse_an_undefined_child_group(ansible_lists: dict[str, dict[str, Any]]) -> None:
    """The Ansible docs' groups-of-groups example names groups it never declares: Ansible fails, and so do we,
    on the same line."""
    result = ansible_lists["docs-undefined-children/inventory"]
    assert result["rc"] != 0 and "northeast" in result["err"]
    path = INI / "docs-undefined-children/inventory"
    msg = str(pytest.raises(InventoryError, load_inventory, path).value)
    assert msg.startswith(f"{path}:23: [usa:children].northeast: undefined group 'northeast'"), msg


def test_the_fixtures_name_their_source() -> None:
    for fixture, what in COMPARED.items():
        if not what.startswith("ours"):
            assert (INI / fixture).read_text().startswith("# source: https://github.com/"), fixture
