"""``group_vars/`` and ``host_vars/`` beside an Ansible inventory, found and layered as Ansible does.

Files are found as Ansible's ``host_group_vars`` plugin finds them (``DataLoader.find_vars_files``): for
an entity NAME (``all``, a group, a host), ``group_vars/NAME`` (no extension), ``NAME.yml``,
``NAME.yaml``, ``NAME.json``, or a directory ``NAME/`` whose files (those extensions or none; hidden
files and ``~`` backups skipped; subdirectories walked) are read in sorted order, a later file winning.
Files for names the inventory does not have are ignored, as Ansible ignores them.

Precedence, lowest first: Ansible's documented order ("Understanding variable precedence",
https://docs.ansible.com/ansible/latest/playbook_guide/playbooks_variables.html#understanding-variable-precedence:
3. inventory file or script group vars, 4. inventory group_vars/all, 6. inventory group_vars/*,
8. inventory file or script host vars, 9. inventory host_vars/*), which ansible-core implements with its
``VARIABLE_PRECEDENCE`` default ``all_inventory, groups_inventory, all_plugins_inventory,
groups_plugins_inventory``. So:

1. the inventory file's ``all`` vars, then its group vars (parents before children, same depth by name),
2. ``group_vars/all``, then ``group_vars/<group>`` in the same group order (a ``group_vars/all`` value
   beats an inventory file's ``[gpu:vars]``),
3. the host's vars in the inventory file, then ``host_vars/<host>``.

(As everywhere in preflight, ``preflight_expect`` / ``preflight_thresholds`` / ``preflight_labels`` merge
key by key across these levels; Ansible would replace the whole dictionary.)
"""

from __future__ import annotations

import os
from pathlib import Path

from preflight.inventory.ansible import _ansible_vars, _Tree
from preflight.inventory.layers import _Layer
from preflight.inventory.model import InventoryError
from preflight.inventory.source import _Ctx, _load_yaml, _Map, _typename

_EXTENSIONS = ("", ".yml", ".yaml", ".json")
_MAX_FILES = 10000


def vars_files(base: Path, name: str) -> list[Path]:
    """The vars files for NAME under ``base`` (``group_vars`` or ``host_vars``), in the order Ansible reads them."""
    found: list[Path] = []
    for ext in _EXTENSIONS:
        p = base / f"{name}{ext}"
        if p.is_dir():
            found.extend(_dir_files(p))
        elif p.is_file():
            found.append(p)
    return found


def _dir_files(path: Path, depth: int = 0) -> list[Path]:
    out: list[Path] = []
    if depth > 16:
        return out
    for entry in sorted(os.listdir(path)):
        if entry.startswith(".") or entry.endswith("~"):
            continue
        full, ext = path / entry, os.path.splitext(entry)[1]
        if full.is_dir() and not ext:
            out.extend(_dir_files(full, depth + 1))
        elif full.is_file() and (not ext or ext in _EXTENSIONS):
            out.append(full)
    return out[:_MAX_FILES]


def add_vars_dirs(ctx: _Ctx, tree: _Tree) -> None:
    """Layers from ``group_vars/`` and ``host_vars/`` beside the inventory file, onto ``tree``."""
    if ctx.base_dir is None:
        return
    gdir, hdir = ctx.base_dir / "group_vars", ctx.base_dir / "host_vars"
    if gdir.is_dir():
        for name, group in tree.groups.items():
            for f in vars_files(gdir, name):
                group.file_layers.append(_read(ctx, f, f"group {name}"))
    if hdir.is_dir():
        for name, host in tree.hosts.items():
            for f in vars_files(hdir, name):
                host.file_layers.append(_read(ctx, f, f"host {name}"))


def _read(ctx: _Ctx, path: Path, label: str) -> _Layer:
    """One vars file: a YAML (or JSON) mapping of variables, read like a group's ``vars:``."""
    assert ctx.base_dir is not None
    shown = os.path.relpath(path, ctx.base_dir)
    file = str(path)
    fctx = _Ctx(file, ctx.base_dir)
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except OSError as exc:
        raise InventoryError(file, None, "(file)", f"cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise InventoryError(file, None, "(file)", "not UTF-8 text") from None
    if text.lstrip().startswith("$ANSIBLE_VAULT"):
        raise InventoryError(file, 1, "(file)", "encrypted with ansible-vault: preflight cannot read it "
                                                "(use --ansible-inventory SOURCE, which runs ansible-inventory)")
    top = _load_yaml(text, file)
    if top is None:
        top = _Map()
        top.line, top.lines, top.raw = 0, {}, {}
    if not isinstance(top, _Map):
        raise InventoryError(file, getattr(top, "line", 1) or 1, "(top level)",
                             f"must be a mapping of variables, not {_typename(top)}")
    return _ansible_vars(fctx, top, (), f"{label} ({shown})")
