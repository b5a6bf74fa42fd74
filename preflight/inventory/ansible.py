"""Ansible YAML inventories: ``all:`` / ``children:`` / ``hosts:`` / ``vars:``.

The Ansible connection variables preflight understands (``ansible_host``, ``ansible_port``,
``ansible_user``, a ProxyJump in ``ansible_ssh_common_args`` ...) become connection settings;
``preflight_expect`` / ``preflight_thresholds`` / ``preflight_labels`` carry expectations; other
variables are ignored. Groups are walked from the top (:class:`_Tree`), then each host gets the
layers of every group it is in, parents first (Ansible's precedence), and its own last.
"""

from __future__ import annotations

import dataclasses
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from preflight.inventory.fields import (
    _GROUP_RE,
    _conn,
    _expand_address,
    _expand_names,
    _expect,
    _jump,
    _labels,
    _text,
    _thresholds,
)
from preflight.inventory.layers import _ancestors, _depths, _find_cycle, _Layer, _make_node
from preflight.inventory.model import PROXY_COMMAND_PREFIX, Inventory, Node
from preflight.inventory.source import (
    PathKey,
    _check_keys,
    _Ctx,
    _did_you_mean,
    _line,
    _Map,
    _mapping,
    _typename,
)

_ANSIBLE_GROUP_KEYS = ("hosts", "children", "vars")
_PREFLIGHT_VARS = ("preflight_expect", "preflight_thresholds", "preflight_labels", "preflight_command_timeout_s")
_ANSIBLE_VARS = {  # Ansible variable -> our key
    "ansible_host": "address",
    "ansible_ssh_host": "address",
    "ansible_port": "port",
    "ansible_ssh_port": "port",
    "ansible_user": "user",
    "ansible_ssh_user": "user",
    "ansible_ssh_private_key_file": "identity_file",
    "ansible_private_key_file": "identity_file",
    "ansible_ssh_timeout": "connect_timeout_s",
    "ansible_timeout": "connect_timeout_s",
    "preflight_command_timeout_s": "command_timeout_s",
}
_SSH_CONNECTIONS = ("ssh", "paramiko", "smart")
_GROUP_HINTS = dict.fromkeys((*_ANSIBLE_VARS, *_PREFLIGHT_VARS, "ansible_ssh_common_args", "ansible_connection"),
                             "variables go under 'vars:' (or a host's entry)")


def _jump_from_ssh_args(ctx: _Ctx, text: str, line: int | None, path: PathKey) -> str | None:
    """The proxy in ``ansible_ssh_common_args`` / ``_extra_args``: ``-J X``, ``-o ProxyJump=X`` (a jump host) or
    ``-o ProxyCommand=LINE`` (``ProxyCommand=LINE``, see :func:`_proxy_command`); None if absent.

    As in OpenSSH, ProxyJump and ProxyCommand compete and the first one given wins (a later ``-J`` still
    replaces an earlier ``-J``, as this reader always did).
    """
    try:
        toks = shlex.split(text)
    except ValueError as exc:
        raise ctx.err(line, path, f"cannot parse ssh arguments: {exc}") from None
    jump: str | None = None
    command: str | None = None
    i = 0
    while i < len(toks):
        tok = toks[i]
        option: str | None = None
        if tok == "-J" or (tok.startswith("-J") and len(tok) > 2):
            if tok == "-J" and i + 1 >= len(toks):
                raise ctx.err(line, path, "-J without a jump host")
            value, i = (toks[i + 1], i + 2) if tok == "-J" else (tok[2:], i + 1)
            jump = value if command is None else jump
            continue
        if tok == "-o":
            if i + 1 >= len(toks):
                raise ctx.err(line, path, "-o without an option")
            option, i = toks[i + 1], i + 2
        elif tok.startswith("-o"):
            option, i = tok[2:], i + 1
        else:
            i += 1
            continue
        name, _, value = option.replace("=", " ", 1).partition(" ")
        if name.lower() == "proxyjump" and command is None:
            jump = value.strip()
        elif name.lower() == "proxycommand" and jump is None and command is None:
            command = value.strip()
    if command is not None:
        return None if command.lower() == "none" else _proxy_command(ctx, line, path, command)
    if jump is not None and jump.lower() == "none":
        return None
    return _jump(ctx, line, path, jump) if jump is not None else None


_PROXY_TOKENS = ("%h", "%p", "%r", "%%")


def _proxy_command(ctx: _Ctx, line: int | None, path: PathKey, command: str) -> str:
    """``ProxyCommand=LINE``, the form ``Node.jump_host`` carries a ProxyCommand in (transport/ssh.py runs
    LINE with ``/bin/sh -c``, as OpenSSH does, after expanding ``%h %p %r`` shell-quoted). Other ``%``
    tokens are refused here: preflight does not know what OpenSSH would put there."""
    if not command:
        raise ctx.err(line, path, "ProxyCommand without a command")
    rest = command
    for tok in _PROXY_TOKENS:
        rest = rest.replace(tok, "")
    if "%" in rest:
        bad = rest[rest.index("%"):rest.index("%") + 2]
        raise ctx.err(line, path, f"ProxyCommand token {bad!r} is not expanded by preflight (only %h %p %r %%); "
                                  "spell the value out, or use -J host / -o ProxyJump=host")
    return f"{PROXY_COMMAND_PREFIX}{command}"


def _ansible_vars(ctx: _Ctx, m: _Map, path: PathKey, label: str) -> _Layer:
    """Group or host vars: the Ansible variables preflight understands; others are ignored."""
    layer = _Layer(label)
    for key in m:
        kpath = (*path, key)
        if not isinstance(key, str):
            raise ctx.err(_line(m, key), kpath, f"variable name must be a string, not {_typename(key)}")
        value = m[key]
        if key in _ANSIBLE_VARS:
            if value is None:  # null: drop an inherited value
                layer.conn[_ANSIBLE_VARS[key]] = None
                continue
            ours = _ANSIBLE_VARS[key]
            layer.conn[ours] = _conn(ctx, m, key, kpath, lenient=True, as_=ours)
        elif key in ("ansible_ssh_common_args", "ansible_ssh_extra_args"):
            # like Ansible, a deeper value replaces the whole string: no ProxyJump in it = none
            args = "" if value is None or (isinstance(value, str) and not value.strip()) else \
                _text(ctx, m, key, kpath)
            layer.conn[f"_jump_{key}"] = _jump_from_ssh_args(ctx, args, _line(m, key), kpath)
        elif key == "ansible_connection":
            conn = _text(ctx, m, key, kpath)
            if conn == "local":
                layer.conn["address"] = "local"
            elif conn not in _SSH_CONNECTIONS:
                raise ctx.err(_line(m, key), kpath, f"ansible_connection {conn!r} is not supported "
                                                    f"(preflight connects over ssh, or 'local')")
        elif key == "preflight_expect":
            layer.expect = _expect(ctx, m, key, kpath)
        elif key == "preflight_thresholds":
            layer.thresholds = _thresholds(ctx, m, key, kpath)
        elif key == "preflight_labels":
            layer.labels = _labels(ctx, m, key, kpath)
        elif key.startswith("preflight_"):
            raise ctx.err(_line(m, key), kpath,
                          f"unknown preflight variable {key!r}{_did_you_mean(key, _PREFLIGHT_VARS)}")
    return layer



@dataclass
class _AGroup:
    name: str
    line: int | None
    layers: list[_Layer] = field(default_factory=list)
    children: list[str] = field(default_factory=list)
    file_layers: list[_Layer] = field(default_factory=list)  # group_vars/<name> (vars_dirs.py)


@dataclass
class _AHost:
    name: str
    line: int | None
    groups: list[str] = field(default_factory=list)
    layers: list[_Layer] = field(default_factory=list)
    file_layers: list[_Layer] = field(default_factory=list)  # host_vars/<name> (vars_dirs.py)


def _ansible(ctx: _Ctx, top: _Map, more: Callable[[_Tree], None] | None = None) -> Inventory:
    """An Ansible YAML inventory: walk the groups, check the group graph, then build each host.

    ``more`` adds to the tree before the nodes are built (group_vars/ and host_vars/: vars_dirs.py).
    """
    tree = _Tree(ctx, {"all": _AGroup("all", _line(top, "all"))})
    tree.read(top)
    if not tree.hosts:
        raise ctx.err(_line(top, "all") if "all" in top else None, ("all",) if "all" in top else (),
                      "the inventory defines no hosts (add them under a group's 'hosts:')")
    if more is not None:
        more(tree)
    parents = _parents(ctx, tree.groups)
    return Inventory(path=ctx.file, nodes=_nodes(ctx, tree, parents), known_hosts=(), format="ansible")


@dataclass
class _Tree:
    """The groups and hosts read so far; ``stack`` is the chain of groups being walked (for cycles)."""

    ctx: _Ctx
    groups: dict[str, _AGroup]
    hosts: dict[str, _AHost] = field(default_factory=dict)
    stack: list[str] = field(default_factory=list)

    def read(self, top: _Map) -> None:
        """Every top-level group; those other than ``all`` are children of ``all``."""
        for gname in top:
            gpath: PathKey = (gname,)
            gline = _line(top, gname)
            if not isinstance(gname, str) or not _GROUP_RE.match(gname):
                raise self.ctx.err(gline, gpath, f"bad group name {str(gname)!r}")
            gm = _mapping(self.ctx, top, gname, gpath)
            if gname != "all" and gname not in self.groups["all"].children:
                self.groups["all"].children.append(gname)
            self._enter(gname, gm, gpath, gline)

    def _enter(self, name: str, gm: _Map, path: PathKey, line: int | None) -> None:
        self.stack.append(name)
        self._walk(name, gm, path, line)
        self.stack.pop()

    def _walk(self, name: str, gm: _Map, path: PathKey, line: int | None) -> None:
        """One group's entry (a group may be defined in several places: each adds to it)."""
        if name not in self.groups:
            self.groups[name] = _AGroup(name, line)
        group = self.groups[name]
        _check_keys(self.ctx, gm, _ANSIBLE_GROUP_KEYS, path, what="group key", hints=_GROUP_HINTS)
        if gm.get("vars") is not None:
            vm = _mapping(self.ctx, gm, "vars", (*path, "vars"))
            group.layers.append(_ansible_vars(self.ctx, vm, (*path, "vars"), f"group {name}"))
        if gm.get("hosts") is not None:
            hm = _mapping(self.ctx, gm, "hosts", (*path, "hosts"))
            for pattern in hm:
                self._host(name, hm, pattern, (*path, "hosts", pattern))
        if gm.get("children") is not None:
            cm = _mapping(self.ctx, gm, "children", (*path, "children"))
            for child in cm:
                self._child(group, cm, child, (*path, "children", child))

    def _host(self, group: str, hm: _Map, pattern: Any, hpath: PathKey) -> None:
        """One ``hosts:`` entry of ``group``: a host per expanded name, ``ansible_host`` expanded in step."""
        ctx = self.ctx
        hline = _line(hm, pattern)
        names = _expand_names(ctx, pattern, hline, hpath)
        spec = _mapping(ctx, hm, pattern, hpath)
        layer = _ansible_vars(ctx, spec, hpath, "host")
        addresses: list[str | None] = [None] * len(names)
        if layer.conn.get("address") not in (None, "local"):
            aline = next((_line(spec, k) for k in ("ansible_host", "ansible_ssh_host") if k in spec), hline)
            addresses = list(_expand_address(ctx, layer.conn["address"], len(names), aline,
                                             (*hpath, "ansible_host"), single_ok=True))
        for hname, addr in zip(names, addresses):
            h = self.hosts.setdefault(hname, _AHost(hname, hline))
            if group not in h.groups:
                h.groups.append(group)
            one = dataclasses.replace(layer, label=f"host {hname}", conn=dict(layer.conn))
            if addr is not None:
                one.conn["address"] = addr
            h.layers.append(one)

    def _child(self, group: _AGroup, cm: _Map, child: Any, cpath: PathKey) -> None:
        """One ``children:`` entry: a nested group, walked now (a cycle along the walk is refused)."""
        cline = _line(cm, child)
        if not isinstance(child, str) or not _GROUP_RE.match(child):
            raise self.ctx.err(cline, cpath, f"bad group name {str(child)!r}")
        if child == "all":
            raise self.ctx.err(cline, cpath, "'all' cannot be a child group")
        if child not in group.children:
            group.children.append(child)
        if child in self.stack:
            chain = [*self.stack[self.stack.index(child):], child]
            raise self.ctx.err(cline, cpath, f"children form a cycle: {' -> '.join(chain)}")
        self._enter(child, _mapping(self.ctx, cm, child, cpath), cpath, cline)


def _parents(ctx: _Ctx, groups: dict[str, _AGroup]) -> dict[str, list[str]]:
    """Each group's parents; a cycle through groups defined in several places is refused here
    (the walk catches the nested ones)."""
    parents: dict[str, list[str]] = {g: [] for g in groups}
    for g in groups.values():
        for child in g.children:
            if g.name not in parents[child]:
                parents[child].append(g.name)
    cycle = _find_cycle({g.name: [(c, g.line, (g.name, "children", c)) for c in g.children] for g in groups.values()})
    if cycle:
        raise ctx.err(cycle[1], cycle[2], f"children form a cycle: {' -> '.join(cycle[0])}")
    return parents


def _nodes(ctx: _Ctx, tree: _Tree, parents: dict[str, list[str]]) -> tuple[Node, ...]:
    """Hosts in file order; layers: ``all``, then groups by depth (then name), then the host's own."""
    depth = _depths(parents)
    nodes: list[Node] = []
    for h in sorted(tree.hosts.values(), key=lambda h: h.line or 0):
        member: set[str] = {"all"}
        for g in h.groups:
            member |= {g} | _ancestors(g, parents)
        ordered = sorted(member, key=lambda g: (depth[g], g))
        layers = [layer for g in ordered for layer in tree.groups[g].layers]
        layers += [layer for g in ordered for layer in tree.groups[g].file_layers]  # Ansible: group_vars/ after
        layers += h.layers + h.file_layers  # inventory group vars; host vars, then host_vars/
        shown = tuple(sorted(member - {"all"}, key=lambda g: (-depth[g], g)))  # most specific first
        nodes.append(_make_node(ctx, h.name, shown, layers))
    return tuple(nodes)
