"""Expectations and accepted gaps said on the command line (`--expect KEY=VALUE`, `--accept CHECK_OR_FACT=WHY`).

What an inventory can say, said once for a run without one (`-H` lists, a replayed bundle, the demo): the
same keys, validated by the same loader, and every report names the command line as where the expectation
or the acceptance came from. A command-line value beats the inventory's. A live run applies them to the
inventory's nodes (so the bundle it saves records them, with their source); a replay or the demo applies
them to the loaded bundle in memory (the file on disk is never changed).
"""

from __future__ import annotations

import dataclasses
import difflib
import fnmatch
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import yaml

SOURCE_EXPECT = "--expect (command line)"
SOURCE_ACCEPT = "--accept (command line)"


@dataclass(frozen=True)
class Overrides:
    expect: dict[str, Any] = field(default_factory=dict)
    accept: dict[str, str] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.expect or self.accept)

    def merged(self, expect: dict[str, Any], sources: dict[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
        """`expect`/`sources` (a node's, as preflight.session attaches them) with these on top."""
        expect, sources = dict(expect), dict(sources)
        for key, value in self.expect.items():
            expect[key], sources[key] = value, SOURCE_EXPECT
        if self.accept:
            expect["accept"] = {**dict(expect.get("accept") or {}), **self.accept}
            sources.update({f"accept.{k}": SOURCE_ACCEPT for k in self.accept})
        return expect, sources

    def apply_to_nodes(self, nodes: Iterable[Any]) -> list[Any]:
        """Inventory nodes with these on top (what a live run then collects and judges with)."""
        from preflight.inventory import Expectations

        out = []
        for node in nodes:
            current = node.expect.as_dict()
            sources = dict(getattr(node, "expect_sources", None) or {})
            expect, sources = self.merged(current, sources)
            known = {k: v for k, v in expect.items() if k in _expect_keys()}
            extra = {k: v for k, v in expect.items() if k not in known}
            out.append(dataclasses.replace(node, expect=Expectations(**known, extra=extra), expect_sources=sources))
        return out

    def apply_to_bundle(self, bundle: Any) -> Any:
        """A loaded bundle's nodes judged with these on top (replay, demo): changed in memory only."""
        for raw in bundle.nodes:
            raw.expect, raw.expect_sources = self.merged(raw.expect or {}, raw.expect_sources or {})
        return bundle


def _expect_keys() -> tuple[str, ...]:
    from preflight.inventory import EXPECT_KEYS

    return EXPECT_KEYS


def _split(item: str, flag: str, what: str) -> tuple[str, str]:
    key, sep, value = item.partition("=")
    key, value = key.strip(), value.strip()
    if not sep or not key or not value:
        raise ValueError(f"{flag} {item!r}: write {flag} {what}")
    return key, value


def accept_key_problem(key: str) -> str | None:
    """Why `key` names no check, glob, group or fact (None when it names one): a typo would accept nothing."""
    from preflight.engine import all_checks
    from preflight.registry import FACT_DOCS, GROUPS

    ids = [c.id for c in all_checks()]
    if any(fnmatch.fnmatchcase(i, key) for i in ids) or key in GROUPS or key in FACT_DOCS:
        return None
    near = difflib.get_close_matches(key, [*ids, *GROUPS, *FACT_DOCS], n=1)
    return f"{key!r} is no check id, glob, group or fact" + (f" (did you mean {near[0]!r}?)" if near else "")


def parse_overrides(expect_items: Iterable[str] = (), accept_items: Iterable[str] = ()) -> Overrides:
    """The flags' values, checked as an inventory's would be; ValueError (one line) on the first bad one."""
    from preflight.inventory import InventoryError, inventory_from_hosts

    expect: dict[str, Any] = {}
    for item in expect_items:
        key, text = _split(item, "--expect", "KEY=VALUE (e.g. gpus_per_node=0)")
        if key == "accept":
            raise ValueError("--expect accept=...: use --accept CHECK_OR_FACT=WHY")
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError:
            value = text
        expect[key] = text if key.endswith("_version") or isinstance(value, (dict, list)) else value
    if expect:
        try:  # the inventory loader's own validation (kinds, ranges, did-you-mean for keys)
            checked = inventory_from_hosts(["localhost"], expect=expect).nodes[0].expect.as_dict()
        except InventoryError as exc:
            raise ValueError("--expect: " + str(exc).partition(": ")[2]) from None
        expect = {k: checked[k] for k in expect if k in checked}
    accept: dict[str, str] = {}
    for item in accept_items:
        key, why = _split(item, "--accept", "CHECK_OR_FACT=WHY (e.g. xid='no root for dmesg')")
        problem = accept_key_problem(key)
        if problem:
            raise ValueError(f"--accept {problem}")
        accept[key] = why
    return Overrides(expect, accept)
