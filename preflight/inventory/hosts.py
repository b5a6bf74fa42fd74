"""An inventory from ``[user@]host[:port]`` strings: the CLI's ``-H``, with keyword defaults.

No file is read; errors name ``<command line>`` and ``-H``. The defaults go through the same
field readers as a native inventory's ``defaults`` / ``expect`` / ``thresholds`` / ``labels``.
"""

from __future__ import annotations

import os
import re
from typing import Any

from preflight.inventory.fields import _CONN_KEYS, _conn, _expand_names, _expect, _is_ip, _labels, _thresholds
from preflight.inventory.layers import _Layer, _make_node
from preflight.inventory.model import Expectations, Inventory, InventoryError, Node
from preflight.inventory.source import _Ctx, _Map, _new_map

_FROM_HOSTS_KEYS = (*_CONN_KEYS, "expect", "thresholds", "labels", "known_hosts")
_FILE = "<command line>"

_Entry = tuple[str, str | None, int | None, str]  # host name, user, port, the string it came from


def inventory_from_hosts(hosts: list[str], **defaults: Any) -> Inventory:
    """An inventory from ``[user@]host[:port]`` strings (the CLI's ``-H``); ranges expand.

    ``defaults`` takes the native ``defaults`` keys (user, port, identity_file, jump_host,
    connect_timeout_s, command_timeout_s) plus expect, thresholds, labels, known_hosts;
    a user or port in a host string beats the default.
    """
    ctx = _Ctx(_FILE, None)
    unknown = [k for k in defaults if k not in _FROM_HOSTS_KEYS]
    if unknown:
        raise TypeError(f"inventory_from_hosts() got unexpected keyword(s): {', '.join(unknown)}")
    given = _new_map(0, {k: v for k, v in defaults.items() if v is not None})
    fleet = _fleet_layer(ctx, given)
    kh = given.get("known_hosts")
    known_hosts = tuple(os.path.expanduser(k) for k in ([kh] if isinstance(kh, str) else (kh or ())))
    entries = [entry for spec in hosts for entry in _entries(ctx, spec.strip())]
    if not entries:
        raise InventoryError(_FILE, None, "-H", "no hosts given")
    return Inventory(path=_FILE, nodes=_nodes(ctx, fleet, entries), known_hosts=known_hosts, format="preflight")


def _fleet_layer(ctx: _Ctx, given: _Map) -> _Layer:
    """The keyword defaults as the fleet level (an Expectations object is read as its dict)."""
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
    return fleet


def _entries(ctx: _Ctx, spec: str) -> list[_Entry]:
    """One ``-H`` string: a host per expanded name (none for a blank string)."""
    if not spec:
        return []
    try:
        user, host, port = _split_host_spec(spec)
    except ValueError as exc:
        raise InventoryError(_FILE, None, "-H", str(exc)) from None
    if port is not None and not 1 <= port <= 65535:
        raise InventoryError(_FILE, None, "-H", f"bad port {port} in {spec!r}")
    if user is not None and any(c.isspace() for c in user):
        raise InventoryError(_FILE, None, "-H", f"bad user in {spec!r}")
    return [(name, user, port, spec) for name in _expand_names(ctx, host, None, ("-H",))]


def _nodes(ctx: _Ctx, fleet: _Layer, entries: list[_Entry]) -> tuple[Node, ...]:
    """A node per entry; a name given with several ports is named ``host:port``; a repeat is refused."""
    count: dict[str, int] = {}
    for name, *_ in entries:
        count[name] = count.get(name, 0) + 1
    nodes: list[Node] = []
    seen: dict[str, str] = {}
    for name, user, port, spec in entries:
        shown = name if count[name] == 1 or port is None else f"{name}:{port}"
        if shown in seen:
            raise InventoryError(_FILE, None, "-H", f"host {shown!r} given twice ({seen[shown]!r} and {spec!r})")
        seen[shown] = spec
        layer = _Layer(f"host {shown}", conn={"address": name})
        if user is not None:
            layer.conn["user"] = user
        if port is not None:
            layer.conn["port"] = port
        nodes.append(_make_node(ctx, shown, (), [fleet, layer]))
    return tuple(nodes)


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
