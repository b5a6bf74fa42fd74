"""Typed field readers: one inventory value checked, normalized, or refused with file:line: key.path.

Both formats read their values through these, so ``port: 0`` and ``ansible_port: 0`` are refused
in the same words: scalars (:func:`_int`, :func:`_number`, :func:`_text`), connection settings
(:func:`_conn`), the ``expect`` / ``accept`` / ``thresholds`` / ``labels`` mappings, and host
names and addresses with their ranges (:func:`_expand_names`, :func:`_expand_address`).
"""

from __future__ import annotations

import dataclasses
import datetime
import fnmatch
import ipaddress
import re
from typing import Any

import preflight.inventory.hostpattern as hostpattern
from preflight.inventory.model import EXPECT_KEYS, Node
from preflight.inventory.source import (
    PathKey,
    _check_keys,
    _Ctx,
    _line,
    _load_yaml,
    _Map,
    _mapping,
    _new_map,
    _plain,
    _Seq,
    _typename,
)

_CONN_KEYS = ("user", "port", "identity_file", "jump_host", "connect_timeout_s", "command_timeout_s")

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


# ---- scalars ---------------------------------------------------------------------------


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
    if any(c.isspace() for c in value) or not value or "=" in value or value.startswith("-"):
        raise ctx.err(line, path, f"jump host {value!r} must look like [user@]host[:port]")
    return value


# ---- connection settings and mappings ------------------------------------------------------


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
        if k == "acknowledge":
            raise ctx.err(_line(m, k), (*path, k), "acknowledgements go in the top-level 'acknowledge:' list "
                                                   "({check, nodes, reason, expires, by}), not under expect:")
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


# ---- host names and addresses -------------------------------------------------------------


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


# ---- acknowledged findings ------------------------------------------------------------------

ACK_KEYS = ("check", "nodes", "reason", "expires", "by")
_ACK_HELP = {"check": "a check id, glob or group", "nodes": "host names, ranges, globs or @group",
             "reason": "why this finding is acknowledged", "expires": "the last day it holds, YYYY-MM-DD",
             "by": "who acknowledged it"}
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _acknowledge(ctx: _Ctx, parent: Any, key: Any, path: PathKey, *, label: str) -> list[dict[str, Any]]:
    """An ``acknowledge:`` list: each entry {check, nodes, reason, expires, by}, all required."""
    raw = parent[key]
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise ctx.err(_line(parent, key), path, f"must be a list of {{{', '.join(ACK_KEYS)}}}, not {_typename(raw)}")
    out: list[dict[str, Any]] = []
    for i, item in enumerate(raw):
        ipath = (*path, i)
        line = raw.lines[i] if isinstance(raw, _Seq) else _line(parent, key)
        if not isinstance(item, _Map):
            raise ctx.err(line, ipath, f"must be a mapping {{{', '.join(ACK_KEYS)}}}, not {_typename(item)}")
        _check_keys(ctx, item, ACK_KEYS, ipath)
        for req in ACK_KEYS:
            if item.get(req) is None:
                raise ctx.err(item.line or line, (*ipath, req), f"missing {req!r}: {_ACK_HELP[req]}")
        out.append({"check": _text(ctx, item, "check", (*ipath, "check")),
                    "nodes": _ack_nodes(ctx, item, (*ipath, "nodes")),
                    "reason": _text(ctx, item, "reason", (*ipath, "reason")),
                    "expires": _ack_date(ctx, item, (*ipath, "expires")),
                    "by": _text(ctx, item, "by", (*ipath, "by")),
                    "source": f"{label}:{item.line or line}", "line": item.line or line})
    return out


def _ack_nodes(ctx: _Ctx, m: _Map, path: PathKey) -> list[str]:
    value = m["nodes"]
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items or not all(isinstance(v, str) and v.strip() for v in items):
        raise ctx.err(_line(m, "nodes"), path, f"must be a host pattern or a list of them, not {_typename(value)}")
    for v in items:
        try:
            hostpattern.expand(v.strip().lstrip("@"))
        except hostpattern.HostPatternError as exc:
            raise ctx.err(_line(m, "nodes"), path, f"bad host pattern {v!r}: {exc}") from None
    return [v.strip() for v in items]


def _ack_date(ctx: _Ctx, m: _Map, path: PathKey) -> str:
    value = m["expires"]
    if isinstance(value, datetime.datetime):
        value = value.date()
    if isinstance(value, datetime.date):
        return value.isoformat()
    if isinstance(value, str) and _DATE_RE.match(value.strip()):
        try:
            return datetime.date.fromisoformat(value.strip()).isoformat()
        except ValueError:
            pass
    raise ctx.err(_line(m, "expires"), path, f"must be a date YYYY-MM-DD, not {_typename(value)} ({value!r})")


def ack_matches(patterns: Any, name: str, groups: Any = ()) -> bool:
    """Whether a host (name, groups) is one of an acknowledgement's node patterns (names, ranges, globs, @group)."""
    for pattern in patterns or ():
        p = str(pattern)
        if p.startswith(("@", "group:")):
            if p.split(":", 1)[-1].lstrip("@") in groups or p in ("@all", "group:all"):
                return True
            continue
        if p in groups:
            return True
        try:
            items = hostpattern.expand(p)
        except hostpattern.HostPatternError:
            items = [p]
        if any(fnmatch.fnmatchcase(name, item) for item in items):
            return True
    return False


def _acknowledge_nodes(ctx: _Ctx, acks: list[dict[str, Any]], nodes: tuple[Node, ...]) -> tuple[Node, ...]:
    """Each node with the acknowledgements naming it; a node pattern matching no host is refused (a typo)."""
    if not acks:
        return nodes
    for ack in acks:
        for p in ack["nodes"]:
            if not any(ack_matches([p], n.name, n.groups) for n in nodes):
                raise ctx.err(ack["line"], ("acknowledge", acks.index(ack), "nodes"), f"{p!r} matches no host")
    out = []
    for n in nodes:
        mine = tuple({k: v for k, v in a.items() if k not in ("nodes", "line")} for a in acks
                     if ack_matches(a["nodes"], n.name, n.groups))
        if mine:
            n = dataclasses.replace(n, expect=dataclasses.replace(n.expect, acknowledge=mine),
                                    expect_sources={**n.expect_sources, "acknowledge": ctx.source("acknowledge")})
        out.append(n)
    return tuple(out)


def load_ack_file(path: str) -> list[dict[str, Any]]:
    """``--ack FILE``: a YAML list like the inventory's ``acknowledge:`` (or a mapping holding one); one-line
    InventoryError with file:line on a problem. Entries keep their node patterns (matched when judging)."""
    ctx = _Ctx(path, None)
    try:
        text = open(path, encoding="utf-8-sig").read()
    except OSError as exc:
        raise ctx.err(None, ("(file)",), f"cannot read: {exc.strerror or exc}") from None
    top = _load_yaml(text, path)
    holder = _new_map(0, {"acknowledge": top})
    if isinstance(top, _Map) and "acknowledge" in top:
        _check_keys(ctx, top, ("acknowledge",), ())
        holder = top
    if top is None:
        return []
    return [{k: v for k, v in a.items() if k != "line"}
            for a in _acknowledge(ctx, holder, "acknowledge", ("acknowledge",), label=f"--ack {path}")]
