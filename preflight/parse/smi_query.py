"""Parsers for `nvidia-smi -q [-d ECC,PERFORMANCE,...]` (nested sections) and `nvidia-smi --list-gpus` (-L)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, NamedTuple

from preflight.parse.common import Unparseable, normalize_bus_id
from preflight.parse.common import smi_guard as _guard


class ListedGpu(NamedTuple):
    """A line of `nvidia-smi --list-gpus` (-L); a tuple so `(index, name, uuid)` unpacking keeps working."""

    index: int  # type: ignore[assignment]  # the field shadows tuple.index(); its name is the API (and the -L column)
    name: str
    uuid: str | None


def parse_list_gpus(text: str) -> list[ListedGpu] | Unparseable:
    """`nvidia-smi --list-gpus` (-L): index, name, UUID (MIG sub-lines ignored)."""
    refused = _guard(text)
    if refused:
        return refused
    out = []
    for line in text.splitlines():
        m = re.match(r"^GPU\s+(\d+):\s*(.*?)\s*(?:\(UUID:\s*([^)]+)\))?\s*$", line)
        if m:
            out.append(ListedGpu(int(m.group(1)), m.group(2), m.group(3)))
    return out or Unparseable.of("no 'GPU n: <name> (UUID: ...)' lines", text)


@dataclass(frozen=True)
class QuerySections:
    """`nvidia-smi -q [-d ...]`: header fields and one nested key/value tree per GPU (by bus id as printed)."""

    header: dict[str, str]
    gpus: dict[str, dict[str, Any]]

    def gpu(self, bus_id: str) -> dict[str, Any] | None:
        """The tree of a GPU whatever the bus id's spelling (`00000000:12:00.0` / `0000:12:00.0`)."""
        want = normalize_bus_id(bus_id)
        return next((t for b, t in self.gpus.items() if normalize_bus_id(b) == want), None)


_GPU_HEADER = re.compile(r"^GPU\s+([0-9A-Fa-f]{4,8}:[0-9A-Fa-f]{2}:[0-9A-Fa-f]{2}\.\d)\s*$")
_KEY_VALUE = re.compile(r"^\s*(.+?)\s*:\s*(.*?)\s*$")


def _key_value(line: str, body: str) -> tuple[str, str, bool]:
    """(key, value, matched) as `_KEY_VALUE` reads `line` (`body`: the line without its indent), without the regex
    for the usual `Key   : value` line: the key ends at the first colon after its first character."""
    colon = body.find(":")
    if colon > 0:  # body[0] is neither blank nor ':', so the lazy key stops before the first colon
        return body[:colon].rstrip(), body[colon + 1:].strip(), True
    if colon < 0:  # no colon: the regex cannot match
        return body.rstrip(), "", False
    kv = _KEY_VALUE.match(line)  # a line starting with ':' (rare): the regex decides
    return (kv.group(1), kv.group(2), True) if kv else (line.strip(), "", False)


# What `_read_line` said of each line seen (most lines repeat across GPUs and nodes: `Current : Disabled`); a
# pure function of the line, so a line seen before is not split again. Bounded: past the limit, lines are split.
_LINES: dict[str, tuple[Any, ...]] = {}
_LINES_MAX = 50_000
_SKIP = (0,)


def _read_line(line: str) -> tuple[Any, ...]:
    """(0,) a line to skip; (1, bus id) a GPU's header; (2, indent, key, value, is a key/value line)."""
    body = line.lstrip()
    if not body or body[0] == "=":
        return _SKIP
    m = _GPU_HEADER.match(line) if line.startswith("GPU") else None
    if m:
        return (1, m.group(1))
    return (2, len(line) - len(body), *_key_value(line, body))


def parse_query_sections(text: str) -> QuerySections | Unparseable:
    """`nvidia-smi -q` / `-q -d ECC,PERFORMANCE`: indentation gives nesting (key column width varies by driver)."""
    refused = _guard(text)
    if refused:
        return refused
    header: dict[str, str] = {}
    gpus: dict[str, dict[str, Any]] = {}
    stack: list[tuple[int, dict[str, Any]]] = []
    seen = _LINES
    for line in text.replace("\r", "").expandtabs(8).splitlines():
        read = seen.get(line)
        if read is None:
            read = _read_line(line)
            if len(seen) < _LINES_MAX:
                seen[line] = read
        if read[0] != 2:
            if read[0] == 1:
                root: dict[str, Any] = {}
                gpus[read[1]] = root
                stack = [(0, root)]
            continue
        _, indent, key, value, kv = read
        if not stack:
            if kv:
                header[key] = value
            continue
        while len(stack) > 1 and indent <= stack[-1][0]:
            stack.pop()
        parent = stack[-1][1]
        if value == "":
            child: dict[str, Any] = {}
            parent[key] = child
            stack.append((indent, child))
        else:
            parent[key] = value
    if not gpus and not header:
        return Unparseable.of("no 'Key : value' lines and no 'GPU <bus id>' sections", text)
    return QuerySections(header=header, gpus=gpus)
