"""Reading an inventory file: bytes -> text -> YAML with lines -> the native or the Ansible reader.

Nothing here opens a connection or reads ``~/.ssh/config``: a host without an address is
reached by its name, and fabric applies ``~/.ssh/config`` at connect time.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from preflight.inventory.ansible import _ANSIBLE_GROUP_KEYS, _ansible
from preflight.inventory.ansible_ini import has_ini_section, looks_like_ini, read_ini
from preflight.inventory.ansible_json import looks_like_json, read_json
from preflight.inventory.model import Inventory, InventoryError
from preflight.inventory.native import _TOP_KEYS, _native
from preflight.inventory.source import _Ctx, _load_yaml, _Map, _Seq, _typename
from preflight.inventory.vars_dirs import add_vars_dirs


def load_inventory(path: str | Path) -> Inventory:
    """Read a native or Ansible (YAML, INI, or ``ansible-inventory --list`` JSON) inventory; ``-`` reads
    standard input. Every problem is a one-line InventoryError.

    The format is told by content, not by the file name: the JSON of ``ansible-inventory --list`` (an
    object with ``_meta`` or groups listing hosts), INI when the first line that is not a comment is a
    ``[section]``, else YAML (native or Ansible by its keys).
    """
    file = str(path)
    p = Path(path)
    if file == "-":
        file, text, p = "<stdin>", _read_stdin(), Path.cwd() / "<stdin>"
    else:
        text = _read_text(p, file)
    ctx = _Ctx(file, p.resolve().parent)
    if looks_like_json(text) and _is_ansible_json(text):
        return read_json(ctx, text)
    more = lambda tree: add_vars_dirs(ctx, tree)  # noqa: E731 - group_vars/, host_vars/ beside the file
    if looks_like_ini(text):
        return read_ini(ctx, text, more)
    try:
        top = _load_yaml(text, file)
    except InventoryError:
        if not has_ini_section(text):
            raise
        top = None  # hosts before the first [section], then sections: INI, not broken YAML
    if top is None and has_ini_section(text):
        return read_ini(ctx, text, more)
    if isinstance(top, str) and not _is_yaml_document(text):  # bare host names, one a line: INI's ungrouped hosts
        return read_ini(ctx, text, more)
    if top is None:
        raise InventoryError(file, None, "(top level)", "the file is empty (expected a mapping with groups/hosts)")
    if not isinstance(top, _Map):
        raise InventoryError(file, 1 if not isinstance(top, _Seq) else top.line, "(top level)",
                             f"must be a mapping (groups:, hosts:, ...), not {_typename(top)}")
    if not top:
        raise InventoryError(file, top.line, "(top level)", "the inventory is an empty mapping: no hosts")
    if _is_ansible(top):
        return _ansible(ctx, top, more)
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


def _read_stdin() -> str:
    data = sys.stdin.buffer.read() if hasattr(sys.stdin, "buffer") else sys.stdin.read().encode()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InventoryError("<stdin>", data[: exc.start].count(b"\n") + 1, "(file)", "not UTF-8 text") from None


def _is_ansible_json(text: str) -> bool:
    """JSON shaped like ``ansible-inventory --list`` (a malformed one that says ``_meta`` counts, for its error)."""
    try:
        data = json.loads(text)
    except ValueError:
        return '"_meta"' in text
    return isinstance(data, dict) and ("_meta" in data or any(
        isinstance(v, list) or (isinstance(v, dict) and isinstance(v.get("hosts", v.get("children")), list))
        for v in data.values()))


def _is_yaml_document(text: str) -> bool:
    """A file that says it is YAML (``---`` or a ``%YAML`` directive) stays YAML even when it is one string."""
    first = next((ln.strip() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")), "")
    return first.startswith(("---", "%YAML"))
