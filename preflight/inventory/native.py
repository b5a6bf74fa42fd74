"""The native preflight schema: ``defaults`` / ``expect`` / ``thresholds`` / ``groups`` / ``hosts``.

Read in steps, each refusing what it does not understand with file:line: key.path: the fleet
level, the file-wide settings (``ssh_config``, ``slurm``, ``known_hosts``), every group (its
``vars``, expectations, ``children`` and hosts), the top-level hosts; then host names must be
unique, and each host becomes a Node from its layers: defaults, its groups (parents first), itself.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from preflight.inventory.fields import (
    _CONN_KEYS,
    _GROUP_RE,
    _acknowledge,
    _acknowledge_nodes,
    _conn,
    _expand_address,
    _expand_names,
    _expect,
    _labels,
    _text,
    _thresholds,
)
from preflight.inventory.layers import _ancestors, _depths, _Edge, _find_cycle, _Layer, _make_node
from preflight.inventory.model import EXPECT_KEYS, Inventory, Node, _fmt_path
from preflight.inventory.source import PathKey, _check_keys, _Ctx, _line, _Map, _mapping, _Seq, _typename

_HOST_KEYS = ("address", *_CONN_KEYS, "expect", "thresholds", "labels")
_GROUP_KEYS = ("vars", "expect", "thresholds", "hosts", "children")
_TOP_KEYS = ("defaults", "expect", "thresholds", "groups", "hosts", "known_hosts", "ssh_config", "slurm", "acknowledge")
_MISPLACED_EXPECT = {k: f"expectations go under 'expect:', e.g. expect: {{{k}: ...}}" for k in EXPECT_KEYS}
_CONN_HINTS = {**_MISPLACED_EXPECT, "address": "an address belongs to a host"}  # in defaults: / vars:
_GROUP_HINTS = {**_MISPLACED_EXPECT, **{k: f"connection settings go under 'vars:', e.g. vars: {{{k}: ...}}"
                                        for k in (*_CONN_KEYS, "address")}}


@dataclass
class _HostDef:
    """One host as defined (a range is one per name), before layering."""

    name: str
    line: int | None
    path: PathKey
    group: str | None
    layer: _Layer


@dataclass
class _Groups:
    """What ``groups:`` defines: each group's own layer, its children, and the hosts listed in it."""

    layers: dict[str, _Layer] = field(default_factory=dict)
    children: dict[str, list[_Edge]] = field(default_factory=dict)
    defs: list[_HostDef] = field(default_factory=list)


def _native(ctx: _Ctx, top: _Map) -> Inventory:
    """A native inventory, read top to bottom in the order its problems are reported."""
    _check_keys(ctx, top, _TOP_KEYS, ())
    fleet = _fleet_layer(ctx, top)
    ssh_config = _ssh_config(ctx, top)
    slurm: Mapping[str, Any] | None = None
    if top.get("slurm") is not None:
        _mapping(ctx, top, "slurm", ("slurm",))
        slurm = dict(top["slurm"])
    known_hosts = _known_hosts(ctx, top)
    groups = _groups(ctx, top)
    defs = list(groups.defs)
    if top.get("hosts") is not None:
        defs.extend(_host_entries(ctx, top, ("hosts",), None))
    _check_hosts(ctx, top, defs)
    nodes = _nodes(ctx, fleet, groups, defs)
    if top.get("acknowledge") is not None:
        acks = _acknowledge(ctx, top, "acknowledge", ("acknowledge",), label=f"inventory:{ctx.file}")
        nodes = _acknowledge_nodes(ctx, acks, nodes)
    return Inventory(path=ctx.file, nodes=nodes, known_hosts=known_hosts,
                     format="preflight", ssh_config=ssh_config, slurm=slurm)


# ---- file-wide settings ---------------------------------------------------------------------


def _conn_settings(ctx: _Ctx, parent: _Map, key: str, path: PathKey) -> dict[str, Any]:
    """A ``defaults:`` or group ``vars:`` mapping: connection settings only (null clears an inherited one)."""
    m = _mapping(ctx, parent, key, path)
    _check_keys(ctx, m, _CONN_KEYS, path, hints=_CONN_HINTS)
    return {k: _conn(ctx, m, k, (*path, k)) if m[k] is not None else None for k in m}


def _fleet_layer(ctx: _Ctx, top: _Map) -> _Layer:
    """The top level's ``defaults`` / ``expect`` / ``thresholds``: what every host starts from."""
    fleet = _Layer("defaults")
    if top.get("defaults") is not None:
        fleet.conn = _conn_settings(ctx, top, "defaults", ("defaults",))
    if "expect" in top:
        fleet.expect = _expect(ctx, top, "expect", ("expect",))
    if "thresholds" in top:
        fleet.thresholds = _thresholds(ctx, top, "thresholds", ("thresholds",))
    return fleet


def _ssh_config(ctx: _Ctx, top: _Map) -> str | None:
    """``ssh_config``: a path relative to the inventory file's directory."""
    if top.get("ssh_config") is None:
        return None
    _text(ctx, top, "ssh_config", ("ssh_config",), what="a file path")
    ssh_config = str(top["ssh_config"])
    if not os.path.isabs(os.path.expanduser(ssh_config)):
        ssh_config = os.path.join(os.path.dirname(os.path.abspath(ctx.file)), ssh_config)
    return os.path.expanduser(ssh_config)


def _known_hosts(ctx: _Ctx, top: _Map) -> tuple[str, ...]:
    if "known_hosts" not in top or top["known_hosts"] is None:
        return ()
    value = top["known_hosts"]
    items = value if isinstance(value, list) else [value]
    out: list[str] = []
    for i, item in enumerate(items):
        path: PathKey = ("known_hosts", i) if isinstance(value, list) else ("known_hosts",)
        line = value.lines[i] if isinstance(value, _Seq) else _line(top, "known_hosts")
        if not isinstance(item, str) or not item.strip():
            raise ctx.err(line, path, f"must be a file path (or a list of them), not {_typename(item)}")
        out.append(ctx.path_value(item.strip()))
    return tuple(out)


# ---- groups -----------------------------------------------------------------------------------


def _groups(ctx: _Ctx, top: _Map) -> _Groups:
    out = _Groups()
    if top.get("groups") is None:
        return out
    groups = _mapping(ctx, top, "groups", ("groups",))
    for gname in groups:
        _group(ctx, groups, gname, out)
    _check_children(ctx, out)
    return out


def _group(ctx: _Ctx, groups: _Map, gname: Any, out: _Groups) -> None:
    """One entry of ``groups:``, added to ``out``."""
    gpath: PathKey = ("groups", gname)
    gline = _line(groups, gname)
    if not isinstance(gname, str) or not _GROUP_RE.match(gname):
        raise ctx.err(gline, gpath, f"bad group name {str(gname)!r}: use letters, digits, '.', '-', '_'")
    if gname == "all":
        raise ctx.err(gline, gpath, "'all' is reserved (it selects every host); pick another group name")
    g = _mapping(ctx, groups, gname, gpath)
    _check_keys(ctx, g, _GROUP_KEYS, gpath, hints=_GROUP_HINTS)
    layer = _Layer(f"group {gname}")
    if g.get("vars") is not None:
        layer.conn = _conn_settings(ctx, g, "vars", (*gpath, "vars"))
    if "expect" in g:
        layer.expect = _expect(ctx, g, "expect", (*gpath, "expect"))
    if "thresholds" in g:
        layer.thresholds = _thresholds(ctx, g, "thresholds", (*gpath, "thresholds"))
    out.layers[gname] = layer
    out.children[gname] = _children(ctx, g, gpath) if g.get("children") is not None else []
    if g.get("hosts") is not None:
        out.defs.extend(_host_entries(ctx, g, (*gpath, "hosts"), gname))


def _children(ctx: _Ctx, g: _Map, gpath: PathKey) -> list[_Edge]:
    """A group's ``children``: a group name or a list of them (checked against the groups later)."""
    raw = g["children"]
    cpath = (*gpath, "children")
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list):
        raise ctx.err(_line(g, "children"), cpath, f"must be a list of group names, not {_typename(raw)}")
    kids: list[_Edge] = []
    for i, child in enumerate(raw):
        line = raw.lines[i] if isinstance(raw, _Seq) else _line(g, "children")
        if not isinstance(child, str):
            raise ctx.err(line, (*cpath, i), f"must be a group name, not {_typename(child)}")
        kids.append((child, line, (*cpath, i)))
    return kids


def _check_children(ctx: _Ctx, groups: _Groups) -> None:
    """Every child names a defined group other than itself, and children form no cycle."""
    for gname, kids in groups.children.items():
        for child, line, path in kids:
            if child not in groups.layers:
                close = difflib.get_close_matches(child, list(groups.layers), n=1, cutoff=0.6)
                hint = f" (did you mean {close[0]!r}?)" if close else \
                    f" (groups: {', '.join(groups.layers) or 'none'})"
                raise ctx.err(line, path, f"children names unknown group {child!r}{hint}")
            if child == gname:
                raise ctx.err(line, path, f"group {gname!r} lists itself as a child")
    cycle = _find_cycle(groups.children)
    if cycle:
        names, line, path = cycle
        raise ctx.err(line, path, f"children form a cycle: {' -> '.join(names)}")


# ---- hosts --------------------------------------------------------------------------------------


def _host_entries(ctx: _Ctx, parent: _Map, path: PathKey, group: str | None) -> list[_HostDef]:
    """The ``hosts:`` of a group (or the top level): pattern -> per-host keys (or null)."""
    raw = parent["hosts"]
    if isinstance(raw, list):  # a plain list of names/patterns is accepted too
        out: list[_HostDef] = []
        for i, item in enumerate(raw):
            line = raw.lines[i] if isinstance(raw, _Seq) else None
            for name in _expand_names(ctx, item, line, (*path, i)):
                out.append(_HostDef(name, line, (*path, i), group, _Layer(f"host {name}")))
        return out
    hosts = _mapping(ctx, parent, "hosts", path)
    return [d for pattern in hosts for d in _host_spec(ctx, hosts, pattern, (*path, pattern), group)]


def _host_spec(ctx: _Ctx, hosts: _Map, pattern: Any, hpath: PathKey, group: str | None) -> list[_HostDef]:
    """One ``pattern: {keys}`` entry: a host per expanded name, addresses expanded in step."""
    line = _line(hosts, pattern)
    names = _expand_names(ctx, pattern, line, hpath)
    spec = _mapping(ctx, hosts, pattern, hpath)
    _check_keys(ctx, spec, _HOST_KEYS, hpath, hints=_MISPLACED_EXPECT)
    conn = {k: _conn(ctx, spec, k, (*hpath, k)) if spec[k] is not None else None
            for k in spec if k in _CONN_KEYS}
    expect = _expect(ctx, spec, "expect", (*hpath, "expect")) if "expect" in spec else {}
    thresholds = _thresholds(ctx, spec, "thresholds", (*hpath, "thresholds")) if "thresholds" in spec else {}
    labels = _labels(ctx, spec, "labels", (*hpath, "labels")) if "labels" in spec else {}
    addresses: list[str | None] = [None] * len(names)
    if spec.get("address") is not None:
        address = _conn(ctx, spec, "address", (*hpath, "address"))
        addresses = list(_expand_address(ctx, address, len(names), _line(spec, "address"),
                                         (*hpath, "address"), single_ok=False))
    out: list[_HostDef] = []
    for name, addr in zip(names, addresses):
        layer = _Layer(f"host {name}", conn=dict(conn), expect=expect, thresholds=thresholds, labels=labels)
        if addr is not None:
            layer.conn["address"] = addr
        out.append(_HostDef(name, line, hpath, group, layer))
    return out


def _check_hosts(ctx: _Ctx, top: _Map, defs: list[_HostDef]) -> None:
    """Put ``defs`` in file order (stable within one pattern); a name defined twice, or none at all, is refused."""
    defs.sort(key=lambda d: d.line or 0)
    seen: dict[str, _HostDef] = {}
    for d in defs:
        if d.name in seen:
            first = seen[d.name]
            where = f"group {first.group!r}" if first.group else "top-level hosts"
            raise ctx.err(d.line, d.path, f"duplicate host {d.name!r}: defined at line {first.line} "
                                          f"({where}, {_fmt_path(first.path)}) and again at line {d.line}")
        seen[d.name] = d
    if not defs:
        line = _line(top, "groups") if "groups" in top else _line(top, "hosts") if "hosts" in top else None
        key = "groups" if "groups" in top else "hosts"
        raise ctx.err(line, (key,), "the inventory defines no hosts (add them under 'hosts:' or a group's 'hosts:')")


def _nodes(ctx: _Ctx, fleet: _Layer, groups: _Groups, defs: list[_HostDef]) -> tuple[Node, ...]:
    """Each host's layers: defaults, its groups (parents before children, then by name), itself."""
    parents: dict[str, list[str]] = {g: [] for g in groups.layers}
    for gname, kids in groups.children.items():
        for child, _, _ in kids:
            parents[child].append(gname)
    depth = _depths(parents)
    nodes: list[Node] = []
    for d in defs:
        member = ({d.group} | _ancestors(d.group, parents)) if d.group else set()
        ordered = sorted(member, key=lambda g: (depth[g], g))
        layers = [fleet, *(groups.layers[g] for g in ordered), d.layer]
        shown = tuple(sorted(member, key=lambda g: (-depth[g], g)))  # most specific first
        nodes.append(_make_node(ctx, d.name, shown, layers))
    return tuple(nodes)
