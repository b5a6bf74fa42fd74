"""Reading an inventory file: bytes -> text -> YAML with lines -> the native or the Ansible reader.

Nothing here opens a connection or reads ``~/.ssh/config``: a host without an address is
reached by its name, and fabric applies ``~/.ssh/config`` at connect time.
"""

from __future__ import annotations

from pathlib import Path

from preflight.inventory.ansible import _ANSIBLE_GROUP_KEYS, _ansible
from preflight.inventory.model import Inventory, InventoryError
from preflight.inventory.native import _TOP_KEYS, _native
from preflight.inventory.source import _Ctx, _load_yaml, _Map, _Seq, _typename


def load_inventory(path: str | Path) -> Inventory:
    """Read a native or Ansible YAML inventory; every problem is a one-line InventoryError."""
    file = str(path)
    p = Path(path)
    text = _read_text(p, file)
    ctx = _Ctx(file, p.resolve().parent)
    top = _load_yaml(text, file)
    if top is None:
        raise InventoryError(file, None, "(top level)", "the file is empty (expected a mapping with groups/hosts)")
    if not isinstance(top, _Map):
        raise InventoryError(file, 1 if not isinstance(top, _Seq) else top.line, "(top level)",
                             f"must be a mapping (groups:, hosts:, ...), not {_typename(top)}")
    if not top:
        raise InventoryError(file, top.line, "(top level)", "the inventory is an empty mapping: no hosts")
    if _is_ansible(top):
        return _ansible(ctx, top)
    return _native(ctx, top)


def _read_text(p: Path, file: str) -> str:
    """The file as UTF-8 text (a BOM is dropped); a missing, unreadable or binary file is an InventoryError."""
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise InventoryError(file, None, "(file)", "no such file") from None
    except IsADirectoryError:
        raise InventoryError(file, None, "(file)", "is a directory, not an inventory file") from None
    except OSError as exc:
        raise InventoryError(file, None, "(file)", f"cannot read: {exc.strerror or exc}") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InventoryError(file, line, "(file)", "not UTF-8 text") from None


def _is_ansible(top: _Map) -> bool:
    """Ansible if there is an ``all:``, or no native top-level key and groups shaped like Ansible's."""
    if "all" in top:
        return True
    if any(k in _TOP_KEYS for k in top):
        return False
    return any(isinstance(v, dict) and v and set(map(str, v)) <= set(_ANSIBLE_GROUP_KEYS)
               and ({"hosts", "children"} & set(map(str, v))) for v in top.values())
