"""Inventory loading: the nodes to check, how to reach them, and what to expect of them.

Two formats are read (see docs/inventory.md):

* the native format (``defaults`` / ``expect`` / ``thresholds`` / ``groups`` / ``hosts``), and
* Ansible YAML inventories (``all:`` / ``children:`` / ``hosts:`` / ``vars:``), with
  ``preflight_expect`` / ``preflight_thresholds`` / ``preflight_labels`` variables.

Every problem is an :class:`InventoryError` whose text is one line,
``<file>:<line>: <key path>: <what is wrong>``. YAML is composed into nodes and built by
hand so that every mapping remembers the line of each of its keys and duplicate keys are
refused (PyYAML silently keeps the last one).

Nothing here opens a connection or reads ``~/.ssh/config``: a host without an address is
reached by its name, and fabric applies ``~/.ssh/config`` at connect time.
"""

from __future__ import annotations

import dataclasses
import difflib
import fnmatch
import ipaddress
import json
import os
import re
import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from preflight import hostpattern

__all__ = [
    "DEFAULT_COMMAND_TIMEOUT_S",
    "DEFAULT_CONNECT_TIMEOUT_S",
    "EXPECT_KEYS",
    "Expectations",
    "Inventory",
    "InventoryError",
    "Node",
    "inventory_from_hosts",
    "load_inventory",
]

DEFAULT_CONNECT_TIMEOUT_S = 10.0
DEFAULT_COMMAND_TIMEOUT_S = 120.0

PathKey = tuple[Any, ...]


# ---- errors ---------------------------------------------------------------------------


def _fmt_path(path: Sequence[Any]) -> str:
    out = ""
    for seg in path:
        if isinstance(seg, int) and not isinstance(seg, bool):
            out += f"[{seg}]"
            continue
        s = str(seg)
        if not s or re.search(r"[.\s\"']", s):
            s = json.dumps(s)
        out += ("." if out else "") + s
    return out or "(top level)"


class InventoryError(Exception):
    """A problem with an inventory; ``str(e)`` is one line: ``<file>:<line>: <key path>: <problem>``."""

    def __init__(self, file: str, line: int | None, key_path: str | Sequence[Any], problem: str) -> None:
        self.file = str(file)
        self.line = line
        self.key_path = key_path if isinstance(key_path, str) else _fmt_path(key_path)
        self.problem = " ".join(str(problem).split())
        where = f"{self.file}:{line}" if line else self.file
        self.message = f"{where}: {self.key_path}: {self.problem}"
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message


# ---- model ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Expectations:
    """What a node must look like; None = no expectation (the engine then uses the fleet majority)."""

    gpus_per_node: int | None = None
    gpu_model: str | None = None
    driver_version: str | None = None
    cuda_version: str | None = None
    nccl_version: str | None = None
    ib_ports: int | None = None
    ib_rate_gbps: float | None = None
    nvlinks_per_gpu: int | None = None
    host_memory_gib_min: float | None = None
    shm_gib_min: float | None = None
    hugepages_gib_min: float | None = None  # static hugepages a workload needs (DPDK, some RDMA stacks); unset: none required
    allreduce_busbw_gbps_min: float | None = None
    nccl_socket_ifname: str | None = None  # NCCL_SOCKET_IFNAME the jobs use: comma list, '^' excludes, '=' exact
    nccl_ib_hca: str | None = None  # NCCL_IB_HCA the jobs use: comma list of HCA[:port], '^' excludes, '=' exact
    nccl_net: str | None = None  # the inter-node NCCL network the fabric is meant to carry: ib (default) | socket
    # facts that cannot be had by design, said once: {check id, glob or fact key: why} (e.g. {xid: "no root for dmesg"});
    # their checks read `accepted`, with who said so, instead of `error` on every run
    accept: Mapping[str, str] | None = None
    extra: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))  # only ``x_``-prefixed keys

    def as_dict(self) -> dict[str, Any]:
        """The set expectations only (``extra`` keys included), in schema order."""
        out = {k: getattr(self, k) for k in EXPECT_KEYS if getattr(self, k) is not None}
        out.update(self.extra)
        return out

    def get(self, key: str, default: Any = None) -> Any:
        if key in EXPECT_KEYS:
            value = getattr(self, key)
            return default if value is None else value
        return self.extra.get(key, default)


EXPECT_KEYS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(Expectations) if f.name != "extra")

# kind of each expectation: count (int >= 0), number (int/float >= 0), text, version (text; a bare
# YAML number keeps its source spelling, so ``cuda_version: 12.10`` stays "12.10")
_EXPECT_KINDS = {
    "gpus_per_node": "count",
    "gpu_model": "text",
    "driver_version": "version",
    "cuda_version": "version",
    "nccl_version": "version",
    "ib_ports": "count",
    "ib_rate_gbps": "number",
    "nvlinks_per_gpu": "count",
    "host_memory_gib_min": "number",
    "shm_gib_min": "number",
    "hugepages_gib_min": "number",
    "allreduce_busbw_gbps_min": "number",
    "nccl_socket_ifname": "text",
    "nccl_ib_hca": "text",
    "nccl_net": "text",
    "accept": "accept",
}
assert set(_EXPECT_KINDS) == set(EXPECT_KEYS)


@dataclass(frozen=True)
class Node:
    """One machine to check and how to reach it (port/user None: ~/.ssh/config or ssh's default)."""

    name: str
    address: str
    port: int | None = None
    user: str | None = None
    identity_file: str | None = None
    jump_host: str | None = None
    connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S
    command_timeout_s: float = DEFAULT_COMMAND_TIMEOUT_S
    groups: tuple[str, ...] = ()
    expect: Expectations = field(default_factory=Expectations)
    thresholds: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)
    # expectation key -> where its value came from (see expect_source)
    expect_sources: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)

    def expect_source(self, key: str) -> str:
        """Where the expectation ``key`` came from: ``inventory:<file> group <g>`` / ``host <h>`` / ``defaults``."""
        if key in self.expect_sources:
            return self.expect_sources[key]
        if self.expect.get(key) is not None:
            return "inventory"
        raise KeyError(f"node {self.name!r} has no expectation {key!r}")


@dataclass(frozen=True)
class Inventory:
    path: str
    nodes: tuple[Node, ...]
    known_hosts: tuple[str, ...] = ()
    format: str = "preflight"  # "preflight" | "ansible"
    ssh_config: str | None = None  # an ssh_config file to use instead of ~/.ssh/config
    slurm: Mapping[str, Any] | None = None  # Slurm settings for multi-node tests (later issues)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(n.name for n in self.nodes)

    @property
    def groups(self) -> tuple[str, ...]:
        """Every group some node belongs to, sorted."""
        return tuple(sorted({g for n in self.nodes for g in n.groups}))

    def select(self, patterns: str | None) -> Inventory:
        """The nodes matching a comma list of patterns, in inventory order.

        A pattern is a host name, a glob (``gpu-0*``), a range (``gpu-[00-63]``), a group
        (``@h100``, ``group:h100``, or a bare group name that is no host name; ``@all`` is
        everything); ``!pattern`` removes matches. A pattern matching nothing is an error.
        """
        if patterns is None or not str(patterns).strip():
            return self
        include: set[int] = set()
        exclude: set[int] = set()
        positive = False
        for token in hostpattern.split_list(str(patterns)):
            negate = token.startswith("!")
            body = token[1:].strip() if negate else token
            matched = self._match(body, token)
            if negate:
                exclude |= matched
            else:
                positive = True
                include |= matched
        if not positive:
            include = set(range(len(self.nodes)))
        chosen = tuple(n for i, n in enumerate(self.nodes) if i in include and i not in exclude)
        if not chosen:
            raise InventoryError(self.path, None, "select", f"selection {patterns!r} leaves no host")
        return dataclasses.replace(self, nodes=chosen)

    def _match(self, body: str, token: str) -> set[int]:
        groups = set(self.groups)
        group: str | None = None
        if body.startswith("@"):
            group = body[1:]
        elif body.startswith("group:"):
            group = body[len("group:"):]
        if group is not None:
            if group == "all":
                return set(range(len(self.nodes)))
            hits = {i for i, n in enumerate(self.nodes) if group in n.groups}
            if not hits:
                self._no_match(token, f"no group {group!r}", [f"@{g}" for g in groups], group)
            return hits
        try:
            items = hostpattern.expand(body)
        except hostpattern.HostPatternError as exc:
            raise InventoryError(self.path, None, "select", f"bad pattern {token!r}: {exc}") from None
        index = {n.name: i for i, n in enumerate(self.nodes)}
        hits: set[int] = set()
        for item in items:
            if any(c in item for c in "*?"):
                hits |= {i for name, i in index.items() if fnmatch.fnmatchcase(name, item)}
            elif item in index:
                hits.add(index[item])
            elif item in groups:
                hits |= {i for i, n in enumerate(self.nodes) if item in n.groups}
            elif item == "all":
                hits |= set(range(len(self.nodes)))
        if not hits:
            self._no_match(token, "matches no host", list(index) + [f"@{g}" for g in groups], body)
        return hits

    def _no_match(self, token: str, what: str, known: list[str], probe: str) -> None:
        close = difflib.get_close_matches(probe, known, n=1, cutoff=0.6)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        hosts = hostpattern.compress(self.names)
        if len(hosts) > 160:
            hosts = hosts[:157] + "..."
        groups = ", ".join(self.groups) or "none"
        raise InventoryError(self.path, None, "select",
                             f"pattern {token!r}: {what}{hint}; hosts: {hosts}; groups: {groups}")


# ---- YAML with line numbers -------------------------------------------------------------


class _Map(dict):  # type: ignore[type-arg]
    """A mapping from the YAML file that remembers the line of each key and the raw scalar text."""

    line: int = 0
    lines: dict[Any, int]
    raw: dict[Any, str]


class _Seq(list):  # type: ignore[type-arg]
    line: int = 0
    lines: list[int]


_MERGE_TAG = "tag:yaml.org,2002:merge"


class _Builder:
    def __init__(self, file: str) -> None:
        self.file = file
        self.ctor = yaml.constructor.SafeConstructor()

    def scalar(self, node: yaml.Node, path: PathKey) -> Any:
        try:
            return self.ctor.construct_object(node, deep=True)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or node.start_mark
            raise InventoryError(self.file, mark.line + 1, path, exc.problem or str(exc)) from None

    def build(self, node: yaml.Node, path: PathKey, depth: int = 0) -> Any:
        line = node.start_mark.line + 1
        if depth > 100:
            raise InventoryError(self.file, line, path, "structure nested too deeply (recursive alias?)")
        if isinstance(node, yaml.ScalarNode):
            return self.scalar(node, path)
        if isinstance(node, yaml.SequenceNode):
            seq = _Seq()
            seq.line, seq.lines = line, []
            for i, child in enumerate(node.value):
                seq.append(self.build(child, (*path, i), depth + 1))
                seq.lines.append(child.start_mark.line + 1)
            return seq
        if not isinstance(node, yaml.MappingNode):  # pragma: no cover - compose yields only these
            raise InventoryError(self.file, line, path, f"unsupported YAML node {type(node).__name__}")
        m = _Map()
        m.line, m.lines, m.raw = line, {}, {}
        merges: list[yaml.Node] = []
        for knode, vnode in node.value:
            kline = knode.start_mark.line + 1
            if knode.tag == _MERGE_TAG:
                merges.append(vnode)
                continue
            if not isinstance(knode, yaml.ScalarNode):
                raise InventoryError(self.file, kline, path, "a mapping key must be a plain scalar")
            key = self.scalar(knode, path)
            try:
                hash(key)
            except TypeError:
                raise InventoryError(self.file, kline, path, f"unhashable mapping key {key!r}") from None
            if key in m.lines:
                raise InventoryError(self.file, kline, (*path, key),
                                     f"duplicate key {str(key)!r} (first defined at line {m.lines[key]})")
            m[key] = self.build(vnode, (*path, key), depth + 1)
            m.lines[key] = kline
            if isinstance(vnode, yaml.ScalarNode):
                m.raw[key] = vnode.value
        for mnode in merges:  # YAML merge keys: explicit keys win, then earlier sources
            sources = mnode.value if isinstance(mnode, yaml.SequenceNode) else [mnode]
            for src in sources:
                built = self.build(src, path, depth + 1)
                if not isinstance(built, _Map):
                    raise InventoryError(self.file, src.start_mark.line + 1, path, "'<<' must merge a mapping")
                for k, v in built.items():
                    if k not in m:
                        m[k] = v
                        m.lines[k] = built.lines[k]
                        if k in built.raw:
                            m.raw[k] = built.raw[k]
        return m


def _load_yaml(text: str, file: str) -> Any:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or str(exc)
        if exc.context:
            cm = exc.context_mark
            started = f" started at line {cm.line + 1}" if cm is not None and mark is not None and \
                cm.line != mark.line else ""
            problem = f"{problem} ({exc.context}{started})"
        if mark is not None and "flow" in (exc.context or ""):
            text_line = text.splitlines()[mark.line] if mark.line < len(text.splitlines()) else ""
            if re.search(r"[\w.-]\[", text_line):
                problem += "; quote ranges inside { } or [ ] (e.g. address: \"10.0.0.[1-4]\") or use block style"
        raise InventoryError(file, mark.line + 1 if mark else None, "(yaml)", f"malformed YAML: {problem}") from None
    except yaml.YAMLError as exc:
        raise InventoryError(file, None, "(yaml)", f"malformed YAML: {exc}") from None
    if node is None:
        return None
    return _Builder(file).build(node, ())


# ---- value checks -------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    """Drop line bookkeeping: _Map/_Seq -> dict/list (recursively)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _typename(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__


class _Ctx:
    """The file being read, for error messages and relative paths."""

    def __init__(self, file: str, base_dir: Path | None) -> None:
        self.file = file
        self.base_dir = base_dir

    def err(self, line: int | None, path: Sequence[Any], problem: str) -> InventoryError:
        return InventoryError(self.file, line, path, problem)

    def source(self, label: str) -> str:
        return f"inventory:{self.file} {label}"

    def path_value(self, value: str) -> str:
        p = os.path.expanduser(value)
        if self.base_dir is not None and not os.path.isabs(p):
            p = os.path.normpath(str(self.base_dir / p))
        return p


def _line(m: Any, key: Any) -> int | None:
    if isinstance(m, _Map):
        return m.lines.get(key, m.line or None)
    return None


def _mapping(ctx: _Ctx, parent: Any, key: Any, path: PathKey, *, allow_null: bool = True) -> _Map:
    """parent[key] as a mapping (null -> empty)."""
    value = parent[key]
    if value is None and allow_null:
        empty = _Map()
        empty.line, empty.lines, empty.raw = _line(parent, key) or 0, {}, {}
        return empty
    if not isinstance(value, dict):
        raise ctx.err(_line(parent, key), path, f"must be a mapping, not {_typename(value)}")
    if not isinstance(value, _Map):  # built by hand (inventory_from_hosts)
        m = _Map(value)
        m.line, m.lines, m.raw = 0, {}, {}
        return m
    return value


def _check_keys(ctx: _Ctx, m: _Map, allowed: Iterable[str], path: PathKey, *, what: str = "key",
                hints: Mapping[str, str] | None = None) -> None:
    allowed = list(allowed)
    for key in m:
        if isinstance(key, str) and key in allowed:
            continue
        skey = str(key)
        if hints and skey in hints:
            hint = f" ({hints[skey]})"
        else:
            close = difflib.get_close_matches(skey, allowed, n=1, cutoff=0.6)
            hint = f" (did you mean {close[0]!r}?)" if close else f" (known: {', '.join(allowed)})"
        raise ctx.err(_line(m, key), (*path, key), f"unknown {what} {skey!r}{hint}")


def _int(ctx: _Ctx, m: _Map, key: Any, path: PathKey, *, lo: int | None = None, hi: int | None = None,
         digits_ok: bool = False) -> int:
    value = m[key]
    if digits_ok and isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int):
        raise ctx.err(_line(m, key), path, f"must be an integer, not {_typename(value)} ({value!r})")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        bounds = f"{lo}..{hi}" if hi is not None else f">= {lo}"
        raise ctx.err(_line(m, key), path, f"must be {bounds}, not {value}")
    return value


def _number(ctx: _Ctx, m: _Map, key: Any, path: PathKey, *, positive: bool = False,
            digits_ok: bool = False) -> int | float:
    value = m[key]
    if digits_ok and isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            pass
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        raise ctx.err(_line(m, key), path, f"must be a number, not {_typename(value)} ({value!r})")
    if positive and value <= 0:
        raise ctx.err(_line(m, key), path, f"must be > 0, not {value}")
    if value < 0:
        raise ctx.err(_line(m, key), path, f"must be >= 0, not {value}")
    return value


def _text(ctx: _Ctx, m: _Map, key: Any, path: PathKey, *, what: str = "a string") -> str:
    value = m[key]
    if not isinstance(value, str) or not value.strip():
        raise ctx.err(_line(m, key), path, f"must be {what}, not {_typename(value)} ({value!r})")
    if "{{" in value or "{%" in value:
        raise ctx.err(_line(m, key), path, "Jinja templates are not evaluated by preflight; give the value itself")
    return value.strip()


def _no_space(ctx: _Ctx, m: _Map, key: Any, path: PathKey, what: str) -> str:
    value = _text(ctx, m, key, path)
    if any(c.isspace() for c in value):
        raise ctx.err(_line(m, key), path, f"{what} {value!r} contains whitespace")
    return value


def _jump(ctx: _Ctx, line: int | None, path: PathKey, value: str) -> str:
    if "," in value:
        raise ctx.err(line, path, f"multi-hop jump host {value!r} is not supported; "
                                  "put the chain in ~/.ssh/config (ProxyJump) and name the last hop")
    if any(c.isspace() for c in value) or not value:
        raise ctx.err(line, path, f"jump host {value!r} must look like [user@]host[:port]")
    return value


_CONN_KEYS = ("user", "port", "identity_file", "jump_host", "connect_timeout_s", "command_timeout_s")
_HOST_KEYS = ("address", *_CONN_KEYS, "expect", "thresholds", "labels")
_GROUP_KEYS = ("vars", "expect", "thresholds", "hosts", "children")
_TOP_KEYS = ("defaults", "expect", "thresholds", "groups", "hosts", "known_hosts", "ssh_config", "slurm")
_MISPLACED_EXPECT = {k: f"expectations go under 'expect:', e.g. expect: {{{k}: ...}}" for k in EXPECT_KEYS}


def _conn(ctx: _Ctx, m: _Map, key: str, path: PathKey, *, lenient: bool = False, as_: str | None = None) -> Any:
    """One connection variable (m[key], read as our key ``as_``), checked and normalized."""
    kind = as_ or key
    if kind == "port":
        return _int(ctx, m, key, path, lo=1, hi=65535, digits_ok=lenient)
    if kind == "user":
        return _no_space(ctx, m, key, path, "user")
    if kind == "identity_file":
        return ctx.path_value(_text(ctx, m, key, path))
    if kind == "jump_host":
        if m[key] is None or (isinstance(m[key], str) and m[key].strip().lower() in ("", "none")):
            return None  # explicitly no jump host (overrides an inherited one)
        return _jump(ctx, _line(m, key), path, _text(ctx, m, key, path))
    if kind in ("connect_timeout_s", "command_timeout_s"):
        return float(_number(ctx, m, key, path, positive=True, digits_ok=lenient))
    if kind == "address":
        return _no_space(ctx, m, key, path, "address")
    raise AssertionError(kind)  # pragma: no cover


def _expect(ctx: _Ctx, parent: Any, key: Any, path: PathKey) -> dict[str, Any]:
    """An ``expect`` mapping: {key: value or None (None clears an inherited value)}."""
    m = _mapping(ctx, parent, key, path)
    allowed = list(EXPECT_KEYS)
    out: dict[str, Any] = {}
    for k in m:
        if isinstance(k, str) and k.startswith("x_"):
            out[k] = _plain(m[k])
            continue
        if not isinstance(k, str) or k not in allowed:
            _check_keys(ctx, m, allowed, path, what="expectation")
        value = m[k]
        kpath = (*path, k)
        if value is None:
            out[k] = None
            continue
        kind = _EXPECT_KINDS[k]
        if kind == "accept":
            out[k] = _accept(ctx, m, k, kpath)
        elif kind == "count":
            out[k] = _int(ctx, m, k, kpath, lo=0)
        elif kind == "number":
            out[k] = _number(ctx, m, k, kpath)
        elif kind == "version" and isinstance(value, (int, float)) and not isinstance(value, bool):
            out[k] = m.raw.get(k, str(value)).strip()
        else:
            out[k] = _text(ctx, m, k, kpath)
    return out


def _accept(ctx: _Ctx, parent: Any, key: Any, path: PathKey) -> dict[str, str]:
    """``accept: {check-id-or-fact: why}``: a gap accepted by design needs a reason a reader can check."""
    m = _mapping(ctx, parent, key, path)
    out: dict[str, str] = {}
    for k in m:
        why = m[k]
        if not isinstance(k, str) or not k.strip():
            raise ctx.err(_line(m, k), (*path, k), "accept keys are check ids, globs or fact keys (strings)")
        if not isinstance(why, str) or not why.strip():
            raise ctx.err(_line(m, k), (*path, k), "say why this gap is accepted (a non-empty string)")
        out[k.strip()] = why.strip()
    return out


def _thresholds(ctx: _Ctx, parent: Any, key: Any, path: PathKey) -> dict[str, dict[str, Any]]:
    m = _mapping(ctx, parent, key, path)
    out: dict[str, dict[str, Any]] = {}
    for check in m:
        if not isinstance(check, str):
            raise ctx.err(_line(m, check), (*path, check), f"check id must be a string, not {_typename(check)}")
        params = _mapping(ctx, m, check, (*path, check))
        for p in params:
            if not isinstance(p, str):
                raise ctx.err(_line(params, p), (*path, check, p), "parameter names must be strings")
        out[check] = _plain(params)
    return out


def _labels(ctx: _Ctx, parent: Any, key: Any, path: PathKey) -> dict[str, str]:
    m = _mapping(ctx, parent, key, path)
    out: dict[str, str] = {}
    for k, v in m.items():
        if not isinstance(k, str) or isinstance(v, (dict, list)) or v is None:
            raise ctx.err(_line(m, k), (*path, k), "labels must map strings to scalar values")
        out[k] = v if isinstance(v, str) else m.raw.get(k, str(v))
    return out


def _deep_merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), Mapping):
            out[k] = _deep_merge(dict(out[k]), v)
        else:
            out[k] = v
    return out


_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.:%\-]*$")
_GROUP_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text.strip("[]"))
        return True
    except ValueError:
        return False


def _expand_names(ctx: _Ctx, pattern: Any, line: int | None, path: PathKey) -> list[str]:
    if not isinstance(pattern, str):
        pattern = str(pattern) if isinstance(pattern, (int, float)) and not isinstance(pattern, bool) else pattern
    if not isinstance(pattern, str):
        raise ctx.err(line, path, f"host name must be a string, not {_typename(pattern)}")
    if _is_ip(pattern):
        return [pattern]
    try:
        names = hostpattern.expand(pattern)
    except hostpattern.HostPatternError as exc:
        raise ctx.err(line, path, f"bad host pattern: {exc}") from None
    for name in names:
        if not _NAME_RE.match(name):
            raise ctx.err(line, path, f"bad host name {name!r}: use letters, digits, '.', '-', '_' "
                                      "(ranges in brackets; '*'/'?' globs only in selections)")
    return names


def _expand_address(ctx: _Ctx, address: str, count: int, line: int | None, path: PathKey,
                    *, single_ok: bool) -> list[str]:
    """An address, expanded in step with ``count`` host names."""
    if _is_ip(address):
        addrs = [address.strip("[]") if address.startswith("[") else address]
    else:
        try:
            addrs = hostpattern.expand(address)
        except hostpattern.HostPatternError as exc:
            raise ctx.err(line, path, f"bad address pattern: {exc}") from None
    if len(addrs) == count:
        return addrs
    if len(addrs) == 1 and single_ok:
        return addrs * count
    if len(addrs) == 1:
        raise ctx.err(line, path, f"one address {address!r} for {count} hosts; give a range that expands "
                                  f"to {count} addresses (e.g. 10.0.0.[1-{count}])")
    raise ctx.err(line, path, f"address {address!r} expands to {len(addrs)} addresses but the host pattern "
                              f"to {count} names; they must expand in step")


# ---- building nodes -----------------------------------------------------------------------


@dataclass
class _Layer:
    """Settings from one level (defaults, a group, a host), normalized."""

    label: str  # for expect_source: "defaults" / "group g" / "host h"
    conn: dict[str, Any] = field(default_factory=dict)  # user/port/... and address
    expect: dict[str, Any] = field(default_factory=dict)
    thresholds: dict[str, dict[str, Any]] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)


def _make_node(ctx: _Ctx, name: str, groups: Sequence[str], layers: Sequence[_Layer]) -> Node:
    conn: dict[str, Any] = {}
    expect: dict[str, Any] = {}
    sources: dict[str, str] = {}
    thresholds: dict[str, Any] = {}
    labels: dict[str, str] = {}
    for layer in layers:
        conn.update(layer.conn)
        for k, v in layer.expect.items():
            if k == "accept" and v is not None:  # entries merge across levels, each with its own source
                expect["accept"] = {**expect.get("accept", {}), **v}
                sources["accept"] = ctx.source(layer.label)
                sources.update({f"accept.{a}": ctx.source(layer.label) for a in v})
                continue
            if v is None:
                expect.pop(k, None)
                sources.pop(k, None)
            else:
                expect[k] = v
                sources[k] = ctx.source(layer.label)
        thresholds = _deep_merge(thresholds, layer.thresholds)
        labels.update(layer.labels)
    known = {k: v for k, v in expect.items() if k in EXPECT_KEYS}
    extra = {k: v for k, v in expect.items() if k not in EXPECT_KEYS}
    return Node(
        name=name,
        address=conn.get("address") or name,
        port=conn.get("port"),
        user=conn.get("user"),
        identity_file=conn.get("identity_file"),
        jump_host=conn.get("_jump_ansible_ssh_extra_args") or conn.get("_jump_ansible_ssh_common_args")
        or conn.get("jump_host"),
        connect_timeout_s=float(conn.get("connect_timeout_s") or DEFAULT_CONNECT_TIMEOUT_S),
        command_timeout_s=float(conn.get("command_timeout_s") or DEFAULT_COMMAND_TIMEOUT_S),
        groups=tuple(groups),
        expect=Expectations(**known, extra=MappingProxyType(extra)),
        thresholds=MappingProxyType({k: MappingProxyType(dict(v)) for k, v in thresholds.items()}),
        labels=MappingProxyType(labels),
        expect_sources=MappingProxyType({k: v for k, v in sources.items()
                                         if k in expect or (k.startswith("accept.") and "accept" in expect)}),
    )


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


def _depths(parents: Mapping[str, Iterable[str]]) -> dict[str, int]:
    """Depth of each group in an acyclic parent graph: roots 0, else 1 + deepest parent."""
    memo: dict[str, int] = {}

    def depth(g: str) -> int:
        if g not in memo:
            memo[g] = 1 + max((depth(p) for p in parents.get(g, ())), default=-1)
        return memo[g]

    for g in parents:
        depth(g)
    return memo


def _ancestors(g: str, parents: Mapping[str, Iterable[str]]) -> set[str]:
    out: set[str] = set()
    todo = list(parents.get(g, ()))
    while todo:
        p = todo.pop()
        if p not in out:
            out.add(p)
            todo.extend(parents.get(p, ()))
    return out


def _find_cycle(children: Mapping[str, Sequence[tuple[str, int | None, PathKey]]]) -> tuple[list[str], int | None,
                                                                                          PathKey] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(g: str) -> tuple[list[str], int | None, PathKey] | None:
        state[g] = 1
        stack.append(g)
        for child, line, path in children.get(g, ()):
            if state.get(child) == 1:
                return stack[stack.index(child):] + [child], line, path
            if child not in state:
                found = visit(child)
                if found:
                    return found
        stack.pop()
        state[g] = 2
        return None

    for g in children:
        if g not in state:
            found = visit(g)
            if found:
                return found
    return None


# ---- native format --------------------------------------------------------------------------


@dataclass
class _HostDef:
    name: str
    line: int | None
    path: PathKey
    group: str | None
    layer: _Layer


def _host_entries(ctx: _Ctx, parent: _Map, path: PathKey, group: str | None) -> list[_HostDef]:
    """The ``hosts:`` of a group (or the top level): pattern -> per-host keys (or null)."""
    raw = parent["hosts"]
    out: list[_HostDef] = []
    if isinstance(raw, list):  # a plain list of names/patterns is accepted too
        for i, item in enumerate(raw):
            line = raw.lines[i] if isinstance(raw, _Seq) else None
            for name in _expand_names(ctx, item, line, (*path, i)):
                out.append(_HostDef(name, line, (*path, i), group, _Layer(f"host {name}")))
        return out
    hosts = _mapping(ctx, parent, "hosts", path)
    for pattern in hosts:
        line = _line(hosts, pattern)
        hpath = (*path, pattern)
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
        for name, addr in zip(names, addresses):
            layer = _Layer(f"host {name}", conn=dict(conn), expect=expect, thresholds=thresholds, labels=labels)
            if addr is not None:
                layer.conn["address"] = addr
            out.append(_HostDef(name, line, hpath, group, layer))
    return out


def _native(ctx: _Ctx, top: _Map) -> Inventory:
    _check_keys(ctx, top, _TOP_KEYS, ())
    fleet = _Layer("defaults")
    if top.get("defaults") is not None:
        d = _mapping(ctx, top, "defaults", ("defaults",))
        _check_keys(ctx, d, _CONN_KEYS, ("defaults",), hints={
            **_MISPLACED_EXPECT, "address": "an address belongs to a host"})
        fleet.conn = {k: _conn(ctx, d, k, ("defaults", k)) if d[k] is not None else None for k in d}
    if "expect" in top:
        fleet.expect = _expect(ctx, top, "expect", ("expect",))
    if "thresholds" in top:
        fleet.thresholds = _thresholds(ctx, top, "thresholds", ("thresholds",))
    ssh_config: str | None = None
    slurm: Mapping[str, Any] | None = None
    if top.get("ssh_config") is not None:
        _text(ctx, top, "ssh_config", ("ssh_config",), what="a file path")
        ssh_config = str(top["ssh_config"])
        if not os.path.isabs(os.path.expanduser(ssh_config)):
            ssh_config = os.path.join(os.path.dirname(os.path.abspath(ctx.file)), ssh_config)
        ssh_config = os.path.expanduser(ssh_config)
    if top.get("slurm") is not None:
        _mapping(ctx, top, "slurm", ("slurm",))
        slurm = dict(top["slurm"])
    known_hosts = _known_hosts(ctx, top)

    group_layers: dict[str, _Layer] = {}
    children: dict[str, list[tuple[str, int | None, PathKey]]] = {}
    defs: list[_HostDef] = []
    if top.get("groups") is not None:
        groups = _mapping(ctx, top, "groups", ("groups",))
        for gname in groups:
            gpath: PathKey = ("groups", gname)
            gline = _line(groups, gname)
            if not isinstance(gname, str) or not _GROUP_RE.match(gname):
                raise ctx.err(gline, gpath, f"bad group name {str(gname)!r}: use letters, digits, '.', '-', '_'")
            if gname == "all":
                raise ctx.err(gline, gpath, "'all' is reserved (it selects every host); pick another group name")
            g = _mapping(ctx, groups, gname, gpath)
            _check_keys(ctx, g, _GROUP_KEYS, gpath, hints={
                **_MISPLACED_EXPECT, **{k: f"connection settings go under 'vars:', e.g. vars: {{{k}: ...}}"
                                        for k in (*_CONN_KEYS, "address")}})
            layer = _Layer(f"group {gname}")
            if g.get("vars") is not None:
                v = _mapping(ctx, g, "vars", (*gpath, "vars"))
                _check_keys(ctx, v, _CONN_KEYS, (*gpath, "vars"), hints={
                    **_MISPLACED_EXPECT, "address": "an address belongs to a host"})
                layer.conn = {k: _conn(ctx, v, k, (*gpath, "vars", k)) if v[k] is not None else None for k in v}
            if "expect" in g:
                layer.expect = _expect(ctx, g, "expect", (*gpath, "expect"))
            if "thresholds" in g:
                layer.thresholds = _thresholds(ctx, g, "thresholds", (*gpath, "thresholds"))
            group_layers[gname] = layer
            kids: list[tuple[str, int | None, PathKey]] = []
            if g.get("children") is not None:
                raw = g["children"]
                cpath = (*gpath, "children")
                if isinstance(raw, str):
                    raw = [raw]
                if not isinstance(raw, list):
                    raise ctx.err(_line(g, "children"), cpath, f"must be a list of group names, not {_typename(raw)}")
                for i, child in enumerate(raw):
                    line = raw.lines[i] if isinstance(raw, _Seq) else _line(g, "children")
                    if not isinstance(child, str):
                        raise ctx.err(line, (*cpath, i), f"must be a group name, not {_typename(child)}")
                    kids.append((child, line, (*cpath, i)))
            children[gname] = kids
            if g.get("hosts") is not None:
                defs.extend(_host_entries(ctx, g, (*gpath, "hosts"), gname))
        for gname, kids in children.items():
            for child, line, path in kids:
                if child not in group_layers:
                    close = difflib.get_close_matches(child, list(group_layers), n=1, cutoff=0.6)
                    hint = f" (did you mean {close[0]!r}?)" if close else \
                        f" (groups: {', '.join(group_layers) or 'none'})"
                    raise ctx.err(line, path, f"children names unknown group {child!r}{hint}")
                if child == gname:
                    raise ctx.err(line, path, f"group {gname!r} lists itself as a child")
        cycle = _find_cycle(children)
        if cycle:
            names, line, path = cycle
            raise ctx.err(line, path, f"children form a cycle: {' -> '.join(names)}")
    if top.get("hosts") is not None:
        defs.extend(_host_entries(ctx, top, ("hosts",), None))

    defs.sort(key=lambda d: d.line or 0)  # file order (stable within one pattern)
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

    parents: dict[str, list[str]] = {g: [] for g in group_layers}
    for gname, kids in children.items():
        for child, _line_, _path in kids:
            parents[child].append(gname)
    depth = _depths(parents)
    nodes: list[Node] = []
    for d in defs:
        member = ({d.group} | _ancestors(d.group, parents)) if d.group else set()
        ordered = sorted(member, key=lambda g: (depth[g], g))
        layers = [fleet, *(group_layers[g] for g in ordered), d.layer]
        shown = tuple(sorted(member, key=lambda g: (-depth[g], g)))  # most specific first
        nodes.append(_make_node(ctx, d.name, shown, layers))
    return Inventory(path=ctx.file, nodes=tuple(nodes), known_hosts=known_hosts, format="preflight",
                     ssh_config=ssh_config, slurm=slurm)


# ---- Ansible format --------------------------------------------------------------------------

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


def _jump_from_ssh_args(ctx: _Ctx, text: str, line: int | None, path: PathKey) -> str | None:
    """ProxyJump out of ``ansible_ssh_common_args`` (``-J X``, ``-o ProxyJump=X``); None if absent."""
    try:
        toks = shlex.split(text)
    except ValueError as exc:
        raise ctx.err(line, path, f"cannot parse ssh arguments: {exc}") from None
    jump: str | None = None
    i = 0
    while i < len(toks):
        tok = toks[i]
        option: str | None = None
        if tok == "-J":
            if i + 1 >= len(toks):
                raise ctx.err(line, path, "-J without a jump host")
            jump, i = toks[i + 1], i + 2
            continue
        if tok.startswith("-J"):
            jump, i = tok[2:], i + 1
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
        if name.lower() == "proxyjump":
            jump = value.strip()
        elif name.lower() == "proxycommand":
            raise ctx.err(line, path, "ProxyCommand is not supported; use -J host or -o ProxyJump=host "
                                      "(or configure the proxy in ~/.ssh/config)")
    if jump is not None and jump.lower() == "none":
        return None
    return _jump(ctx, line, path, jump) if jump is not None else None


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
            known = [*_PREFLIGHT_VARS]
            close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
            hint = f" (did you mean {close[0]!r}?)" if close else f" (known: {', '.join(known)})"
            raise ctx.err(_line(m, key), kpath, f"unknown preflight variable {key!r}{hint}")
    return layer


@dataclass
class _AGroup:
    name: str
    line: int | None
    layers: list[_Layer] = field(default_factory=list)
    children: list[str] = field(default_factory=list)


@dataclass
class _AHost:
    name: str
    line: int | None
    groups: list[str] = field(default_factory=list)
    layers: list[_Layer] = field(default_factory=list)


def _is_ansible(top: _Map) -> bool:
    if "all" in top:
        return True
    if any(k in _TOP_KEYS for k in top):
        return False
    return any(isinstance(v, dict) and v and set(map(str, v)) <= set(_ANSIBLE_GROUP_KEYS)
               and ({"hosts", "children"} & set(map(str, v))) for v in top.values())


def _ansible(ctx: _Ctx, top: _Map) -> Inventory:
    groups: dict[str, _AGroup] = {"all": _AGroup("all", _line(top, "all"))}
    hosts: dict[str, _AHost] = {}

    def walk(name: str, gm: _Map, path: PathKey, line: int | None) -> None:
        if name not in groups:
            groups[name] = _AGroup(name, line)
        group = groups[name]
        _check_keys(ctx, gm, _ANSIBLE_GROUP_KEYS, path, what="group key", hints={
            k: "variables go under 'vars:' (or a host's entry)"
            for k in (*_ANSIBLE_VARS, *_PREFLIGHT_VARS, "ansible_ssh_common_args", "ansible_connection")})
        if gm.get("vars") is not None:
            vm = _mapping(ctx, gm, "vars", (*path, "vars"))
            group.layers.append(_ansible_vars(ctx, vm, (*path, "vars"), f"group {name}"))
        if gm.get("hosts") is not None:
            hm = _mapping(ctx, gm, "hosts", (*path, "hosts"))
            for pattern in hm:
                hline = _line(hm, pattern)
                hpath = (*path, "hosts", pattern)
                names = _expand_names(ctx, pattern, hline, hpath)
                spec = _mapping(ctx, hm, pattern, hpath)
                layer = _ansible_vars(ctx, spec, hpath, "host")
                addresses: list[str | None] = [None] * len(names)
                if layer.conn.get("address") not in (None, "local"):
                    aline = next((_line(spec, k) for k in ("ansible_host", "ansible_ssh_host") if k in spec), hline)
                    addresses = list(_expand_address(ctx, layer.conn["address"], len(names), aline,
                                                     (*hpath, "ansible_host"), single_ok=True))
                for hname, addr in zip(names, addresses):
                    h = hosts.setdefault(hname, _AHost(hname, hline))
                    if name not in h.groups:
                        h.groups.append(name)
                    one = dataclasses.replace(layer, label=f"host {hname}", conn=dict(layer.conn))
                    if addr is not None:
                        one.conn["address"] = addr
                    h.layers.append(one)
        if gm.get("children") is not None:
            cm = _mapping(ctx, gm, "children", (*path, "children"))
            for child in cm:
                cline = _line(cm, child)
                cpath = (*path, "children", child)
                if not isinstance(child, str) or not _GROUP_RE.match(child):
                    raise ctx.err(cline, cpath, f"bad group name {str(child)!r}")
                if child == "all":
                    raise ctx.err(cline, cpath, "'all' cannot be a child group")
                if child not in group.children:
                    group.children.append(child)
                if child in path_stack:
                    chain = [*path_stack[path_stack.index(child):], child]
                    raise ctx.err(cline, cpath, f"children form a cycle: {' -> '.join(chain)}")
                path_stack.append(child)
                walk(child, _mapping(ctx, cm, child, cpath), cpath, cline)
                path_stack.pop()

    path_stack: list[str] = []
    for gname in top:
        gpath: PathKey = (gname,)
        gline = _line(top, gname)
        if not isinstance(gname, str) or not _GROUP_RE.match(gname):
            raise ctx.err(gline, gpath, f"bad group name {str(gname)!r}")
        gm = _mapping(ctx, top, gname, gpath)
        if gname != "all" and gname not in groups["all"].children:
            groups["all"].children.append(gname)
        path_stack.append(gname)
        walk(gname, gm, gpath, gline)
        path_stack.pop()

    if not hosts:
        raise ctx.err(_line(top, "all") if "all" in top else None, ("all",) if "all" in top else (),
                      "the inventory defines no hosts (add them under a group's 'hosts:')")
    parents: dict[str, list[str]] = {g: [] for g in groups}
    for g in groups.values():
        for child in g.children:
            if g.name not in parents[child]:
                parents[child].append(g.name)
    cycle = _find_cycle({g.name: [(c, g.line, (g.name, "children", c)) for c in g.children] for g in groups.values()})
    if cycle:  # a cycle through groups defined in several places (walk() catches the nested ones)
        raise ctx.err(cycle[1], cycle[2], f"children form a cycle: {' -> '.join(cycle[0])}")
    depth = _depths(parents)
    nodes: list[Node] = []
    for h in sorted(hosts.values(), key=lambda h: h.line or 0):
        member: set[str] = {"all"}
        for g in h.groups:
            member |= {g} | _ancestors(g, parents)
        ordered = sorted(member, key=lambda g: (depth[g], g))
        layers = [layer for g in ordered for layer in groups[g].layers] + h.layers
        shown = tuple(sorted(member - {"all"}, key=lambda g: (-depth[g], g)))  # most specific first
        nodes.append(_make_node(ctx, h.name, shown, layers))
    return Inventory(path=ctx.file, nodes=tuple(nodes), known_hosts=(), format="ansible")


# ---- entry points ----------------------------------------------------------------------------


def load_inventory(path: str | Path) -> Inventory:
    """Read a native or Ansible YAML inventory; every problem is a one-line InventoryError."""
    file = str(path)
    p = Path(path)
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise InventoryError(file, None, "(file)", "no such file") from None
    except IsADirectoryError:
        raise InventoryError(file, None, "(file)", "is a directory, not an inventory file") from None
    except OSError as exc:
        raise InventoryError(file, None, "(file)", f"cannot read: {exc.strerror or exc}") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InventoryError(file, line, "(file)", "not UTF-8 text") from None
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




def _split_host_spec(spec: str) -> tuple[str | None, str, int | None]:
    """``[user@]host[:port]``; IPv6 as ``[addr]:port`` or a bare address."""
    user, _, rest = spec.rpartition("@") if "@" in spec else (None, "", spec)
    user = user or None
    if rest.startswith("[") and "]" in rest and _is_ip(rest[1:rest.index("]")]):
        host = rest[1:rest.index("]")]
        tail = rest[rest.index("]") + 1:]
        if tail and not re.fullmatch(r":\d+", tail):
            raise ValueError(f"bad host {spec!r}: expected [user@]host[:port]")
        return user, host, int(tail[1:]) if tail else None
    if _is_ip(rest):
        return user, rest, None
    m = re.fullmatch(r"(?P<host>.+?)(?::(?P<port>\d+))?", rest)
    if not m or not m.group("host"):
        raise ValueError(f"bad host {spec!r}: expected [user@]host[:port]")
    return user, m.group("host"), int(m.group("port")) if m.group("port") else None


_FROM_HOSTS_KEYS = (*_CONN_KEYS, "expect", "thresholds", "labels", "known_hosts")


def inventory_from_hosts(hosts: list[str], **defaults: Any) -> Inventory:
    """An inventory from ``[user@]host[:port]`` strings (the CLI's ``-H``); ranges expand.

    ``defaults`` takes the native ``defaults`` keys (user, port, identity_file, jump_host,
    connect_timeout_s, command_timeout_s) plus expect, thresholds, labels, known_hosts;
    a user or port in a host string beats the default.
    """
    file = "<command line>"
    ctx = _Ctx(file, None)
    unknown = [k for k in defaults if k not in _FROM_HOSTS_KEYS]
    if unknown:
        raise TypeError(f"inventory_from_hosts() got unexpected keyword(s): {', '.join(unknown)}")
    given = _Map({k: v for k, v in defaults.items() if v is not None})
    given.line, given.lines, given.raw = 0, {}, {}
    fleet = _Layer("defaults")
    fleet.conn = {k: _conn(ctx, given, k, ("defaults", k)) for k in given if k in _CONN_KEYS}
    if "expect" in given:
        exp = given["expect"]
        if isinstance(exp, Expectations):
            given["expect"] = exp.as_dict()
        fleet.expect = _expect(ctx, given, "expect", ("expect",))
    if "thresholds" in given:
        fleet.thresholds = _thresholds(ctx, given, "thresholds", ("thresholds",))
    if "labels" in given:
        fleet.labels = _labels(ctx, given, "labels", ("labels",))
    kh = given.get("known_hosts")
    known_hosts = tuple(os.path.expanduser(k) for k in ([kh] if isinstance(kh, str) else (kh or ())))

    entries: list[tuple[str, str | None, int | None, str]] = []  # host, user, port, spec
    for spec in hosts:
        spec = spec.strip()
        if not spec:
            continue
        try:
            user, host, port = _split_host_spec(spec)
        except ValueError as exc:
            raise InventoryError(file, None, "-H", str(exc)) from None
        if port is not None and not 1 <= port <= 65535:
            raise InventoryError(file, None, "-H", f"bad port {port} in {spec!r}")
        if user is not None and any(c.isspace() for c in user):
            raise InventoryError(file, None, "-H", f"bad user in {spec!r}")
        for name in _expand_names(ctx, host, None, ("-H",)):
            entries.append((name, user, port, spec))
    if not entries:
        raise InventoryError(file, None, "-H", "no hosts given")
    count: dict[str, int] = {}
    for name, *_ in entries:
        count[name] = count.get(name, 0) + 1
    nodes: list[Node] = []
    seen: dict[str, str] = {}
    for name, user, port, spec in entries:
        shown = name if count[name] == 1 or port is None else f"{name}:{port}"
        if shown in seen:
            raise InventoryError(file, None, "-H", f"host {shown!r} given twice ({seen[shown]!r} and {spec!r})")
        seen[shown] = spec
        layer = _Layer(f"host {shown}", conn={"address": name})
        if user is not None:
            layer.conn["user"] = user
        if port is not None:
            layer.conn["port"] = port
        nodes.append(_make_node(ctx, shown, (), [fleet, layer]))
    return Inventory(path=file, nodes=tuple(nodes), known_hosts=known_hosts, format="preflight")
