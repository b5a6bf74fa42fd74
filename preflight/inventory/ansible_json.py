"""Whatever Ansible can read: the JSON of ``ansible-inventory --list`` (or of a dynamic inventory script).

``{"_meta": {"hostvars": {host: {var: value}}}, "all": {"children": [...]}, group: {"hosts": [...],
"children": [...], "vars": {...}}}``; a group may also be a bare list of hosts (old scripts). The groups
and hosts go through the same tree as the other Ansible formats (ansible.py), group ``vars`` as group
layers and ``hostvars`` as each host's own (``ansible-inventory --list`` has already folded group vars,
group_vars/ and host_vars/ into them, so no vars directories are read beside the JSON).

:func:`run_ansible_inventory` runs ``ansible-inventory --inventory=SOURCE --list`` (an argv list, no
shell, bounded by a timeout) so dynamic inventories, plugins and vaults Ansible can open are read too.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from preflight.inventory.ansible import _AGroup, _ansible_vars, _nodes, _parents, _Tree
from preflight.inventory.model import Inventory, InventoryError
from preflight.inventory.source import PathKey, _check_keys, _Ctx, _line, _load_yaml, _Map, _new_map, _typename

_GROUP_KEYS = ("hosts", "children", "vars")
ANSIBLE_INVENTORY_TIMEOUT_S = 120.0


def looks_like_json(text: str) -> bool:
    return text.lstrip().startswith("{")


def _with_lines(ctx: _Ctx, text: str) -> _Map:
    """The JSON document as mappings that know their lines (JSON is YAML; where PyYAML disagrees, no lines)."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ctx.err(exc.lineno, ("(json)",), f"malformed JSON: {exc.msg} (column {exc.colno})") from None
    if not isinstance(data, dict):
        raise ctx.err(1, (), f"must be a JSON object (ansible-inventory --list), not {_typename(data)}")
    try:
        top: Any = _load_yaml(text, ctx.file)
    except InventoryError:
        top = None
    built: _Map = top if isinstance(top, _Map) else _plain_map(data)
    return built


def _plain_map(value: Any) -> Any:
    if isinstance(value, dict):
        return _new_map(0, {k: _plain_map(v) for k, v in value.items()})
    if isinstance(value, list):
        return [_plain_map(v) for v in value]
    return value


def read_json(ctx: _Ctx, text: str) -> Inventory:
    """An ``ansible-inventory --list`` document -> the Inventory."""
    top = _with_lines(ctx, text)
    tree = _Tree(ctx, {"all": _AGroup("all", _line(top, "all"))})
    for gname in top:
        if gname != "_meta":
            _group(ctx, tree, top, gname)
    meta = top.get("_meta") or {}
    if not isinstance(meta, dict):
        raise ctx.err(_line(top, "_meta"), ("_meta",), f"must be an object, not {_typename(meta)}")
    hostvars = meta.get("hostvars") or _new_map(0)
    if not isinstance(hostvars, dict):
        raise ctx.err(_line(meta, "hostvars"), ("_meta", "hostvars"), f"must be an object, not {_typename(hostvars)}")
    for host in hostvars:
        spec = hostvars[host] if isinstance(hostvars[host], _Map) else _plain_map(hostvars[host] or {})
        tree._host("all", _new_map(_line(hostvars, host) or 0, {host: spec}), host, ("_meta", "hostvars", host))
    if not tree.hosts:
        raise ctx.err(None, (), "the inventory lists no hosts")
    for g in list(tree.groups.values()):  # children named but never listed are empty groups
        for child in g.children:
            tree.groups.setdefault(child, _AGroup(child, g.line))
    has_parent = {c for g in tree.groups.values() for c in g.children}
    for name in tree.groups:
        if name != "all" and name not in has_parent and name not in tree.groups["all"].children:
            tree.groups["all"].children.append(name)
    parents = _parents(ctx, tree.groups)
    return Inventory(path=ctx.file, nodes=_nodes(ctx, tree, parents), known_hosts=(), format="ansible")


def _group(ctx: _Ctx, tree: _Tree, top: _Map, gname: Any) -> None:
    path: PathKey = (gname,)
    entry = top[gname]
    name = "all" if gname == "ungrouped" else str(gname)  # as the INI and YAML readers put such hosts
    group = tree.groups.setdefault(name, _AGroup(name, _line(top, gname)))
    if isinstance(entry, list):  # a dynamic inventory script's bare host list
        entry = _new_map(_line(top, gname) or 0, {"hosts": entry})
    if not isinstance(entry, dict):
        raise ctx.err(_line(top, gname), path, f"a group must be an object or a list of hosts, not {_typename(entry)}")
    entry = entry if isinstance(entry, _Map) else _plain_map(entry)
    _check_keys(ctx, entry, _GROUP_KEYS, path, what="group key")
    for key in ("hosts", "children"):
        items = entry.get(key) or []
        if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
            raise ctx.err(_line(entry, key), (*path, key), f"must be a list of names, not {_typename(items)}")
    if entry.get("vars"):
        vm = entry["vars"]
        if not isinstance(vm, dict):
            raise ctx.err(_line(entry, "vars"), (*path, "vars"), f"must be an object, not {_typename(vm)}")
        group.layers.append(_ansible_vars(ctx, vm if isinstance(vm, _Map) else _plain_map(vm), (*path, "vars"),
                                          f"group {name}"))
    for host in entry.get("hosts") or []:
        tree._host(name, _new_map(_line(entry, "hosts") or 0, {host: _new_map(0)}), host, (*path, "hosts", host))
    for child in entry.get("children") or []:
        if child not in ("all", "ungrouped", name) and child not in group.children:
            group.children.append(child)


def _ansible_inventory_exe() -> str | None:
    beside = Path(sys.executable).parent / "ansible-inventory"
    return str(beside) if beside.exists() else shutil.which("ansible-inventory")


def run_ansible_inventory(source: str, *, timeout_s: float = ANSIBLE_INVENTORY_TIMEOUT_S) -> Inventory:
    """``ansible-inventory --inventory=SOURCE --list``, read as :func:`read_json`; every problem an InventoryError."""
    label = f"ansible-inventory -i {source}"
    exe = _ansible_inventory_exe()
    if exe is None:
        raise InventoryError(label, None, "--ansible-inventory",
                             "ansible-inventory is not installed (pip install ansible-core), or run "
                             "`ansible-inventory -i SOURCE --list > inv.json` where it is and pass -i inv.json")
    try:
        proc = subprocess.run([exe, f"--inventory={source}", "--list"], capture_output=True, text=True,
                              timeout=timeout_s, stdin=subprocess.DEVNULL, check=False,
                              env={**os.environ, "ANSIBLE_NOCOLOR": "1", "ANSIBLE_INVENTORY_UNPARSED_FAILED": "true"})
    except subprocess.TimeoutExpired:
        raise InventoryError(label, None, "--ansible-inventory", f"ansible-inventory took over {timeout_s:g} s") from None
    except OSError as exc:
        raise InventoryError(label, None, "--ansible-inventory", f"cannot run {exe}: {exc.strerror or exc}") from None
    if proc.returncode != 0:
        said = [ln.strip() for ln in proc.stderr.splitlines() if ln.strip()]
        raise InventoryError(label, None, "--ansible-inventory",
                             f"ansible-inventory failed (exit {proc.returncode}): {' | '.join(said[-3:]) or 'no output'}")
    return read_json(_Ctx(label, Path(source).resolve().parent), proc.stdout)
