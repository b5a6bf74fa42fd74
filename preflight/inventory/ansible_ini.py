"""Ansible INI inventories (Ansible's default format), read as Ansible's ``ini`` inventory plugin reads them.

* ``[group]`` lists hosts, one a line: a name or range (``gpu[01:16]``, ``gpu-[a:c]``), an optional
  ``:port``, then ``key=value`` variables. The line is split like a shell line (``shlex``, ``#`` starts a
  comment), so ``ansible_ssh_common_args='-o ProxyJump=ops@bastion'`` is one variable.
* ``[group:vars]`` lines are ``key=value``: the value is the rest of the line (a ``#`` there is *not* a
  comment, as in Ansible), quotes kept for the value reader.
* ``[group:children]`` lines name groups; each must be declared somewhere in the file.
* Lines before any section are hosts of ``all``; ``#`` and ``;`` start comment lines.

Values are read as Ansible does (``ast.literal_eval``, else the text itself): ``22`` is an integer,
``'22'`` a string, ``{'gpus_per_node': 8}`` a mapping (``preflight_expect``), ``ubuntu`` the text.
The groups and hosts then go through the same tree as Ansible YAML inventories (ansible.py), so
variables, ranges, precedence and error messages are the same; paths in messages name the section
(``[gpu:vars].ansible_port``) and the host (``[gpu].gpu01.ansible_port``).
"""

from __future__ import annotations

import ast
import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from preflight.inventory.ansible import _AGroup, _ansible_vars, _nodes, _parents, _Tree
from preflight.inventory.fields import _GROUP_RE
from preflight.inventory.model import Inventory
from preflight.inventory.source import PathKey, _Ctx, _did_you_mean, _Map, _new_map, _Seq

_SECTION_RE = re.compile(r"^\[([^:\]\s]+)(?::(\w+))?\]\s*(?:#.*)?$")
_GROUPNAME_RE = re.compile(r"^([^:\]\s]+)\s*(?:#.*)?$")
_KINDS = ("hosts", "vars", "children")
_PORT_RE = re.compile(r"^(.*[^:]):(\d+)$")
_COMMENTED_HOST_RE = re.compile(r"^[#;]\s*[A-Za-z0-9_][\w.\-\[\]:]*(\s+\w+=\S+)*\s*$")  # '#gpu01 ansible_host=...'


def looks_like_ini(text: str) -> bool:
    """INI when the first line that is not blank or a comment is a ``[section]`` header.

    A YAML inventory never starts so (a top-level ``[a]`` would be a YAML list, which no inventory is).
    """
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        return line.startswith("[") and line.endswith("]")
    return False


def has_ini_section(text: str) -> bool:
    """Some line is a ``[group]`` / ``[group:vars]`` / ``[group:children]`` header."""
    return any(_SECTION_RE.match(raw.strip()) for raw in text.splitlines())


@dataclass
class _Reader:
    """One pass over the lines, as Ansible's plugin makes it; groups and hosts go into ``tree``."""

    ctx: _Ctx
    tree: _Tree
    group: str = "all"
    kind: str = "hosts"
    declared: dict[str, int] = field(default_factory=dict)  # group -> line of its [g] or [g:children]
    edges: list[tuple[str, str, int]] = field(default_factory=list)  # (parent, child, line)
    vars_at: dict[str, int] = field(default_factory=dict)  # group -> first [g:vars] line
    pending: _Map | None = None  # the [g:vars] section being read
    commented: int | None = None  # the first commented-out host line (DeepOps ships its example so)

    def section(self, m: re.Match[str], lineno: int) -> None:
        self.flush()
        name, kind = m.group(1), (m.group(2) or "hosts")
        path: PathKey = (f"[{m.group(0).split(']')[0][1:]}]",)
        if kind not in _KINDS:
            raise self.ctx.err(lineno, path, f"unknown section type {kind!r}{_did_you_mean(kind, _KINDS)}")
        if not _GROUP_RE.match(name):
            raise self.ctx.err(lineno, path, f"bad group name {name!r}: use letters, digits, '.', '-', '_'")
        if name not in self.tree.groups:
            self.tree.groups[name] = _AGroup(name, lineno)
        if kind == "vars":
            self.vars_at.setdefault(name, lineno)
            self.pending = _new_map(lineno)
        else:
            self.declared.setdefault(name, lineno)
        self.group, self.kind = name, kind

    def flush(self) -> None:
        """The [g:vars] section just read becomes one layer of ``g`` (a later section wins, as in Ansible)."""
        if self.pending is not None:
            path = (f"[{self.group}:vars]",)
            self.tree.groups[self.group].layers.append(
                _ansible_vars(self.ctx, self.pending, path, f"group {self.group}"))
            self.pending = None

    def vars_line(self, line: str, lineno: int) -> None:
        path = (f"[{self.group}:vars]",)
        if "=" not in line:
            raise self.ctx.err(lineno, path, f"expected key=value, got {line!r}")
        key, text = (part.strip() for part in line.split("=", 1))
        if not key:
            raise self.ctx.err(lineno, path, f"a variable needs a name before '=': {line!r}")
        assert self.pending is not None
        _put(self.pending, key, text, lineno)

    def child_line(self, line: str, lineno: int) -> None:
        m = _GROUPNAME_RE.match(line)
        if not m or not _GROUP_RE.match(m.group(1)):
            raise self.ctx.err(lineno, (f"[{self.group}:children]",), f"expected a group name, got {line!r}")
        self.edges.append((self.group, m.group(1), lineno))

    def host_line(self, line: str, lineno: int) -> None:
        spath: PathKey = (f"[{self.group}]",)
        try:
            toks = shlex.split(line, comments=True)
        except ValueError as exc:
            raise self.ctx.err(lineno, spath, f"cannot parse the host line ({exc}): {line!r}") from None
        if not toks:
            return
        pattern, port = _host_and_port(toks[0])
        if pattern.endswith(":"):
            raise self.ctx.err(lineno, (*spath, toks[0]), "a host ending in ':' needs a port after it")
        spec = _new_map(lineno)
        if port is not None:
            _put(spec, "ansible_port", port, lineno)
        for tok in toks[1:]:
            if "=" not in tok:
                raise self.ctx.err(lineno, (*spath, pattern), f"expected key=value host variable, got {tok!r}")
            key, text = tok.split("=", 1)
            _put(spec, key, text, lineno)
        hosts = _new_map(lineno, {pattern: spec})
        hosts.lines[pattern] = lineno
        self.tree._host(self.group, hosts, pattern, (*spath, pattern))

    def finish(self) -> None:
        """Children edges resolved (a child must be declared somewhere), [g:vars] of undeclared groups refused,
        and every group without a parent made a child of ``all`` (as Ansible's inventory does)."""
        self.flush()
        for parent, child, lineno in self.edges:
            if child == "all":
                raise self.ctx.err(lineno, (f"[{parent}:children]", child), "'all' cannot be a child group")
            if child not in self.declared:
                known = sorted(self.declared)
                raise self.ctx.err(lineno, (f"[{parent}:children]", child),
                                   f"undefined group {child!r}{_did_you_mean(child, known) if known else ''} "
                                   f"(declare it with [{child}] or [{child}:children])")
            if child not in self.tree.groups[parent].children:
                self.tree.groups[parent].children.append(child)
        for name, lineno in self.vars_at.items():
            if name not in self.declared and name != "all":
                raise self.ctx.err(lineno, (f"[{name}:vars]",),
                                   f"[{name}:vars] for undefined group {name!r}"
                                   f"{_did_you_mean(name, sorted(self.declared)) if self.declared else ''}")
        has_parent = {c for g in self.tree.groups.values() for c in g.children}
        for name in self.tree.groups:
            if name != "all" and name not in has_parent and name not in self.tree.groups["all"].children:
                self.tree.groups["all"].children.append(name)


def read_ini(ctx: _Ctx, text: str, more: Callable[[_Tree], None] | None = None) -> Inventory:
    """An Ansible INI inventory; ``more`` adds to the tree before the nodes are built (group_vars/)."""
    reader = _Reader(ctx, _Tree(ctx, {"all": _AGroup("all", None)}))
    reader.declared["all"] = 0
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line[0] in "#;":
            if reader.commented is None and reader.kind == "hosts" and _COMMENTED_HOST_RE.match(line):
                reader.commented = lineno
            continue
        m = _SECTION_RE.match(line)
        if m:
            reader.section(m, lineno)
        elif line.startswith("[") and line.endswith("]"):
            raise ctx.err(lineno, (line,), "invalid section header: no spaces inside [ ], "
                                           "and [group], [group:vars] or [group:children]")
        elif reader.kind == "vars":
            reader.vars_line(line, lineno)
        elif reader.kind == "children":
            reader.child_line(line, lineno)
        else:
            reader.host_line(line, lineno)
    reader.finish()
    tree = reader.tree
    if not tree.hosts:
        if reader.commented is not None:
            raise ctx.err(reader.commented, ("(hosts)",), "the inventory defines no hosts: its host lines are "
                                                          "commented out (this one and others); uncomment them")
        raise ctx.err(None, ("(hosts)",), "the inventory defines no hosts (list them under a [group] section)")
    if more is not None:
        more(tree)
    parents = _parents(ctx, tree.groups)
    return Inventory(path=ctx.file, nodes=_nodes(ctx, tree, parents), known_hosts=(), format="ansible")


def _host_and_port(token: str) -> tuple[str, int | None]:
    """``host:2222`` -> (host, 2222); ``[::1]:22`` -> (::1, 22); an IPv6 address without brackets has no port."""
    if token.startswith("[") and "]:" in token and token.rsplit("]:", 1)[1].isdigit():
        host, port = token[1:].rsplit("]:", 1)
        return host, int(port)
    m = _PORT_RE.match(token)
    if m and ":" not in re.sub(r"\[[^\]]*\]", "", m.group(1)):  # a range's ':' is not an IPv6 address's
        return m.group(1), int(m.group(2))
    return token, None


# ---- values, as Ansible's ini plugin reads them -------------------------------------------


def _put(m: _Map, key: str, text: Any, lineno: int) -> None:
    m[key] = _value(text, lineno) if isinstance(text, str) else text
    m.lines[key] = lineno
    if isinstance(text, str):
        m.raw[key] = text


def _value(text: str, lineno: int) -> Any:
    """``ast.literal_eval`` of the text, else the text (Ansible's ``_parse_value``); mappings and lists keep
    the line, and each scalar in a mapping its source spelling (so ``{'cuda_version': 12.10}`` stays "12.10")."""
    try:
        tree = ast.parse(text, mode="eval")
        ast.literal_eval(tree)
    except Exception:
        return text
    return _built(tree.body, text, lineno)


def _built(node: ast.AST, text: str, lineno: int) -> Any:
    if isinstance(node, ast.Dict):
        m = _new_map(lineno)
        for knode, vnode in zip(node.keys, node.values):
            key = _built(knode, text, lineno) if knode is not None else None
            m[key] = _built(vnode, text, lineno)
            m.lines[key] = lineno
            if isinstance(vnode, (ast.Constant, ast.UnaryOp)):
                m.raw[key] = ast.get_source_segment(text, vnode) or str(m[key])
        return m
    if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
        seq = _Seq(_built(e, text, lineno) for e in node.elts)
        seq.line, seq.lines = lineno, [lineno] * len(seq)
        return seq
    value = ast.literal_eval(node)
    if isinstance(value, bytes):
        return value.decode("utf-8", "surrogateescape")
    if isinstance(value, complex) or value is Ellipsis:
        return ast.get_source_segment(text, node) or str(value)
    return value
