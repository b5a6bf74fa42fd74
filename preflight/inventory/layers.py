"""From levels to nodes: settings per level (defaults, groups, host) merged into one Node.

Both formats end here. A :class:`_Layer` is what one level says, already checked;
:func:`_make_node` applies a node's layers in order (later wins; ``accept`` entries merge, each
with its own source). The group graph helpers order a node's groups (parents before children)
and find ``children`` cycles.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from preflight.inventory.model import (
    DEFAULT_COMMAND_TIMEOUT_S,
    DEFAULT_CONNECT_TIMEOUT_S,
    EXPECT_KEYS,
    Expectations,
    Node,
)
from preflight.inventory.source import PathKey, _Ctx


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


def _deep_merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), Mapping):
            out[k] = _deep_merge(dict(out[k]), v)
        else:
            out[k] = v
    return out


# ---- the group graph -------------------------------------------------------------------

_Edge = tuple[str, int | None, PathKey]  # a child group, with the line and key path naming it


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


def _find_cycle(children: Mapping[str, Sequence[_Edge]]) -> tuple[list[str], int | None, PathKey] | None:
    """The first ``children`` cycle (group names, the line and key path of the edge closing it), or None."""
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
