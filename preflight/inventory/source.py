"""YAML that remembers where each key was: the basis of every ``file:line: key.path: problem`` message.

YAML is composed into nodes and built by hand so that every mapping remembers the line of each
of its keys and duplicate keys are refused (PyYAML silently keeps the last one). The helpers
below read such mappings (:func:`_line`, :func:`_mapping`) and refuse unknown keys with a
did-you-mean (:func:`_check_keys`); :class:`_Ctx` is the file being read.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from preflight.inventory.model import InventoryError

PathKey = tuple[Any, ...]


class _Map(dict):  # type: ignore[type-arg]
    """A mapping from the YAML file that remembers the line of each key and the raw scalar text."""

    line: int = 0
    lines: dict[Any, int]
    raw: dict[Any, str]


class _Seq(list):  # type: ignore[type-arg]
    line: int = 0
    lines: list[int]


def _new_map(line: int, items: Mapping[Any, Any] | None = None) -> _Map:
    """A _Map with no per-key lines (built by hand, or an empty value)."""
    m = _Map(items or {})
    m.line, m.lines, m.raw = line, {}, {}
    return m


_MERGE_TAG = "tag:yaml.org,2002:merge"


class _Builder:
    """Composed YAML nodes -> _Map / _Seq / scalars, with lines; duplicate keys are an error."""

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
            return self._sequence(node, path, depth, line)
        if not isinstance(node, yaml.MappingNode):  # pragma: no cover - compose yields only these
            raise InventoryError(self.file, line, path, f"unsupported YAML node {type(node).__name__}")
        return self._mapping(node, path, depth, line)

    def _sequence(self, node: yaml.SequenceNode, path: PathKey, depth: int, line: int) -> _Seq:
        seq = _Seq()
        seq.line, seq.lines = line, []
        for i, child in enumerate(node.value):
            seq.append(self.build(child, (*path, i), depth + 1))
            seq.lines.append(child.start_mark.line + 1)
        return seq

    def _mapping(self, node: yaml.MappingNode, path: PathKey, depth: int, line: int) -> _Map:
        m = _new_map(line)
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
        for mnode in merges:
            self._merge(m, mnode, path, depth)
        return m

    def _merge(self, m: _Map, mnode: yaml.Node, path: PathKey, depth: int) -> None:
        """YAML merge keys (``<<: *base``): explicit keys win, then earlier sources."""
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


def _yaml_problem(exc: yaml.MarkedYAMLError, text: str) -> str:
    """PyYAML's complaint as one sentence, with where the construct started and a hint for flow ranges."""
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
    return problem


# libyaml's loader where PyYAML was built with it: the same nodes and marks, ~10x faster than the pure-Python
# one (a 256-host inventory took ~9 % of a run's controller CPU to read with it)
_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _load_yaml(text: str, file: str) -> Any:
    try:
        node = yaml.compose(text, Loader=_LOADER)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise InventoryError(file, mark.line + 1 if mark else None, "(yaml)",
                             f"malformed YAML: {_yaml_problem(exc, text)}") from None
    except yaml.YAMLError as exc:
        raise InventoryError(file, None, "(yaml)", f"malformed YAML: {exc}") from None
    if node is None:
        return None
    return _Builder(file).build(node, ())


# ---- reading what was built ---------------------------------------------------------------


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
        return _new_map(_line(parent, key) or 0)
    if not isinstance(value, dict):
        raise ctx.err(_line(parent, key), path, f"must be a mapping, not {_typename(value)}")
    if not isinstance(value, _Map):  # built by hand (inventory_from_hosts)
        return _new_map(0, value)
    return value


def _did_you_mean(key: str, known: Sequence[str]) -> str:
    """`` (did you mean 'x'?)`` for a close known name, else `` (known: a, b, c)``."""
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else f" (known: {', '.join(known)})"


def _check_keys(ctx: _Ctx, m: _Map, allowed: Iterable[str], path: PathKey, *, what: str = "key",
                hints: Mapping[str, str] | None = None) -> None:
    allowed = list(allowed)
    for key in m:
        if isinstance(key, str) and key in allowed:
            continue
        skey = str(key)
        hint = f" ({hints[skey]})" if hints and skey in hints else _did_you_mean(skey, allowed)
        raise ctx.err(_line(m, key), (*path, key), f"unknown {what} {skey!r}{hint}")
