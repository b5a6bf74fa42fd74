"""The JSON of `ansible-inventory --list` (-i FILE.json, -i - on stdin) and --ansible-inventory SOURCE.

tests/fixtures/inventories/json/gpu-fleet-list.json is `ansible-inventory -i ../ini/gpu-fleet/inventory --list`
as ansible-core 2.19.14 printed it (JSON has no comments, so its source is said here).
"""

from __future__ import annotations

import io
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from _inventory_files import FIX, by_name, write
from test_ansible_compare import ANSIBLE_INVENTORY, COMPARED, needs_ansible

import preflight.inventory.ansible_json as ansible_json
from preflight.inventory import InventoryError, Node, load_inventory
from preflight.session.request import RunArgs, load_selection

INI = FIX / "ini"
LIST = FIX / "json" / "gpu-fleet-list.json"


def _conn(n: Node) -> tuple[object, ...]:
    return (n.address, n.port, n.user, n.jump_host, n.identity_file, n.connect_timeout_s, set(n.groups))


def test_list_json_reads_like_the_ini_it_came_from() -> None:
    from_json, from_ini = by_name(load_inventory(LIST)), by_name(load_inventory(INI / "gpu-fleet/inventory"))
    assert set(from_json) == set(from_ini)
    for name, node in from_ini.items():
        assert _conn(from_json[name]) == _conn(node), name
        # Ansible already replaced whole dictionaries; what it kept is what preflight has
        assert from_json[name].expect.as_dict().items() <= {**node.expect.as_dict(), "cuda_version": "12.1"}.items()
    assert load_inventory(LIST).format == "ansible"


def test_stdin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", SimpleNamespace(buffer=io.BytesIO(LIST.read_bytes())))
    inv = load_inventory("-")
    assert inv.path == "<stdin>" and len(inv.nodes) == 10
    monkeypatch.setattr(sys, "stdin", SimpleNamespace(buffer=io.BytesIO(b"[gpu]\ng1 ansible_port=2\n")))
    assert load_inventory("-").nodes[0].port == 2  # any format on stdin


def test_script_style_groups_and_group_vars(tmp_path: Path) -> None:
    p = write(tmp_path, '{"gpu": ["g1", "g2"], "pod": {"children": ["gpu"], "vars": {"ansible_user": "pod"}},\n'
                        ' "_meta": {"hostvars": {"g2": {"ansible_user": "me", "ansible_port": "2200"}}}}\n', "inv.json")
    nodes = by_name(load_inventory(p))
    assert (nodes["g1"].user, nodes["g1"].groups) == ("pod", ("gpu", "pod"))
    assert (nodes["g2"].user, nodes["g2"].port) == ("me", 2200)


@pytest.mark.parametrize("text, line, key, needle", [
    ('{"_meta": {"hostvars": {}},\n "gpu": {"hosts": ["a"],\n "host": []}}\n', 3, "gpu.host", "did you mean 'hosts'"),
    ('{"_meta": {"hostvars": {"a": {"ansible_port": 0}}}}\n', 1, "_meta.hostvars.a.ansible_port", "1..65535"),
    ('{"_meta": {"hostvars": {}},\n "gpu": {"hosts": "a"}}\n', 2, "gpu.hosts", "must be a list of names"),
    ('{"_meta": {\n "hostvars": {,}}}\n', 2, "(json)", "malformed JSON"),
    ('{"_meta": {"hostvars": {}}}\n', None, "(top level)", "lists no hosts"),
])
def test_json_errors(tmp_path: Path, text: str, line: int | None, key: str, needle: str) -> None:
    p = write(tmp_path, text, "inv.json")
    msg = str(pytest.raises(InventoryError, load_inventory, p).value)
    where = f"{p}:{line}" if line else str(p)
    assert msg.startswith(f"{where}: {key}: ") and needle in msg, msg


def test_a_native_inventory_written_as_json_is_still_native(tmp_path: Path) -> None:
    p = write(tmp_path, '{"hosts": {"a": {"port": 2}}}\n', "inv.json")
    inv = load_inventory(p)
    assert inv.format == "preflight" and inv.nodes[0].port == 2


@needs_ansible
@pytest.mark.parametrize("fixture", list(COMPARED))
def test_ansible_inventory_source_equals_the_file_reader(fixture: str) -> None:
    via = by_name(load_selection(RunArgs(ansible_inventory=str(INI / fixture))))
    direct = by_name(load_inventory(INI / fixture))
    assert set(via) == set(direct)
    assert all(_conn(via[n]) == _conn(direct[n]) for n in direct)


def test_ansible_inventory_missing_failing_or_slow(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ansible_json, "_ansible_inventory_exe", lambda: None)
    msg = str(pytest.raises(InventoryError, ansible_json.run_ansible_inventory, "inv").value)
    assert "not installed" in msg and "--list > inv.json" in msg
    fake = tmp_path / "fake-ansible-inventory"
    fake.write_text("#!/bin/sh\necho \"[WARNING]: x\" >&2\necho 'ERROR! Unable to parse inv' >&2\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setattr(ansible_json, "_ansible_inventory_exe", lambda: str(fake))
    msg = str(pytest.raises(InventoryError, ansible_json.run_ansible_inventory, "inv").value)
    assert msg.startswith("ansible-inventory -i inv: --ansible-inventory: ansible-inventory failed (exit 1)")
    assert "Unable to parse inv" in msg
    fake.write_text("#!/bin/sh\nexec sleep 5\n")
    msg = str(pytest.raises(InventoryError, ansible_json.run_ansible_inventory, "inv", timeout_s=0.3).value)
    assert "took over 0.3 s" in msg


def test_the_source_is_passed_as_one_argument(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No shell: a source with spaces or a leading '-' stays one --inventory=SOURCE argument."""
    fake = tmp_path / "echo-args"
    out = tmp_path / "args"
    fake.write_text(f"#!/bin/sh\nprintf '%s\\n' \"$@\" > {out}\ncat {LIST}\n")
    fake.chmod(0o755)
    monkeypatch.setattr(ansible_json, "_ansible_inventory_exe", lambda: str(fake))
    inv = ansible_json.run_ansible_inventory("-x; touch pwned")
    assert out.read_text().splitlines() == ["--inventory=-x; touch pwned", "--list"]
    assert len(inv.nodes) == 10 and not (tmp_path / "pwned").exists()
    assert ANSIBLE_INVENTORY is None or Path(ANSIBLE_INVENTORY).exists()
