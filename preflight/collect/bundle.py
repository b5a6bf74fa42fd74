"""Facts bundles: the raw collection of a run, saved and replayed bit for bit.

A bundle stores only raw outputs (plus what the inventory expected of each node), so a
parser fixed later applies to old bundles on replay. A `NodeRaw` is where node text enters the
model: whatever builds one (the SSH, local and Slurm transports, the hang gather, a bundle loaded
from disk, a test) gets its message, collector document, expectations and thresholds back through
`preflight.textsafe.clean` (inert and secrets scrubbed), so nothing downstream, a saved bundle
included, scrubs again. Parsers read that text: none needs a control character (see textsafe).
"""

from __future__ import annotations

import bisect
import functools
import hashlib
import itertools
import json
import os
import time
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from preflight.textsafe import _CONTROL, _HINTS, _redact_all, clean, clean_text, is_secret_key
from preflight.textsafe import scrub as scrub  # re-exported: older callers import it from here

BUNDLE_FORMAT = "preflight-bundle"
BUNDLE_VERSION = 1
BUNDLE_FILE = "bundle.json"

# Outcomes a node can have; anything but "ok" means no (or unusable) facts.
OUTCOMES = ("ok", "unreachable", "refused", "auth_failed", "hostkey_rejected", "timeout", "collector_error", "error")

# The NodeRaw fields that carry text from the node (or the inventory's expectations): cleaned whenever set.
_CLEANED_FIELDS = frozenset({"message", "collector", "expect", "expect_sources", "thresholds"})
_DOC_SERIALS = itertools.count(1)  # each collector document a NodeRaw is given gets the next (next() is atomic)


# Substrings each scrub hint holds (hints holding none of them are their own): a document holding none of a
# group's word holds none of its hints, so ~45 scans of a document become ~18.
_PREFILTER = ("api", "gh", "pass", "token", "secret", "credential", "private", "access", "authoriz", "akia", "asia",
              "hf_", "xox", "hooks.slack", "eyj", "bearer", "://", "-----begin")
_GROUPS: dict[str, tuple[str, ...]] = {p: tuple(h for h in dict.fromkeys(_HINTS) if p in h) for p in _PREFILTER}
_GROUPS.update({h: (h,) for h in dict.fromkeys(_HINTS) if not any(h in g for g in _GROUPS.values())})
# ASCII bytes clean_text leaves as they are: a document whose text is ASCII and holds no other byte has no control
_ASCII_INERT = bytes(i for i in range(128) if i in (9, 10) or 32 <= i < 127)
# The hints are searched in the document's ASCII bytes lower-cased with every byte no hint holds deleted (spaces,
# digits, newlines: 64 % of a demo document). Deleting bytes a hint does not hold cannot split a hint
# that is there, so no hint is missed; one made by the joins is tested again in the lower-cased text.
_HINT_BYTES = frozenset("".join(_HINTS).encode("ascii"))
_LOWER = bytes.maketrans(bytes(range(65, 91)), bytes(range(97, 123)))
_NOT_HINT = bytes(i for i in range(256) if _LOWER[i] not in _HINT_BYTES)
_GROUPS_B = tuple((word.encode(), tuple((h, h.encode()) for h in group)) for word, group in _GROUPS.items())
_secret_key = functools.lru_cache(maxsize=8192)(is_secret_key)  # a document's keys repeat node after node


def _copy_collect(obj: Any, out: list[str], depth: int = 0) -> Any:
    """A copy of a JSON-like value as `textsafe.clean` builds it (new dicts and lists, everything under a secret key
    redacted), its strings not cleaned yet but appended to `out` (keys included). Deeper than 64: RecursionError."""
    if isinstance(obj, str):
        out.append(obj)
        return obj
    if depth > 64:
        raise RecursionError
    if isinstance(obj, dict):
        copy: dict[Any, Any] = {}
        for k, v in obj.items():
            if isinstance(k, str):
                out.append(k)
                copy[k] = _redact_all(v) if _secret_key(k) else _copy_collect(v, out, depth + 1)
            else:
                copy[k] = _copy_collect(v, out, depth + 1)
        return copy
    if isinstance(obj, list):
        return [_copy_collect(v, out, depth + 1) for v in obj]
    if isinstance(obj, tuple):
        return tuple(_copy_collect(v, out, depth + 1) for v in obj)
    return obj


def _replace(obj: Any, new: dict[str, str]) -> Any:
    """`obj` (a fresh copy from _copy_collect) with the strings in `new` replaced, keys included, order kept."""
    if isinstance(obj, str):
        return new.get(obj, obj)
    if isinstance(obj, dict):
        return {(new.get(k, k) if isinstance(k, str) else k): _replace(v, new) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_replace(v, new) for v in obj]
    if isinstance(obj, tuple):
        return tuple(_replace(v, new) for v in obj)
    return obj


def _holding(texts: list[str], joined: str, low: str, hints: tuple[str, ...]) -> set[str]:
    """The strings of `texts` (joined by newlines into `joined`, lower-cased `low`) that hold one of `hints`."""
    if len(low) != len(joined):  # lower-casing changed the length (some non-ASCII letters): test string by string
        return {t for t in texts if any(h in t.lower() for h in hints)}
    starts, pos = [], 0
    for t in texts:
        starts.append(pos)
        pos += len(t) + 1
    found: set[str] = set()
    for h in hints:
        at = low.find(h)
        while at != -1:
            found.add(texts[bisect.bisect_right(starts, at) - 1])
            at = low.find(h, at + 1)
    return found


def clean_document(doc: Any) -> Any:
    """`textsafe.clean(doc)`, the same result, at a fraction of its cost on a node's collector document (~115 KB).

    clean() tests each of its ~45 scrub hints against every string (~400 per document, 4 ms). Here the document
    is copied once (secret keys redacted as clean() does) while its strings are gathered; they are joined
    (newline-separated: no hint holds a newline, so a hint found in the join lies in one string), lower-cased and
    searched for each hint in one C pass (ASCII text: in its bytes with every byte no hint holds deleted, `_NOT_HINT`). Only the strings that hold a hint go through clean_text (usually none,
    or os-release's `://`, which it leaves as it is); a document holding any control character goes through
    clean() whole. Every other string comes back unchanged, as clean_text() returns it.
    """
    if not isinstance(doc, (dict, list, tuple)):
        return clean(doc)
    texts: list[str] = []
    try:
        copy = _copy_collect(doc, texts)
    except RecursionError:  # a document nested this deep is no collector's: the plain walk decides
        return clean(doc)
    joined = "\n".join(texts)
    if joined.isascii():
        control = bool(joined.encode("ascii").translate(None, _ASCII_INERT))
    else:
        control = _CONTROL.search(joined) is not None
    if control:  # rare (node text with escapes, carriage returns): every string is cleaned
        return clean(doc)
    if joined.isascii():
        squeezed = joined.encode("ascii").translate(_LOWER, _NOT_HINT)
        maybe = tuple(h for word, group in _GROUPS_B if word in squeezed for h, hb in group if hb in squeezed)
        if not maybe:
            return copy
        low = joined.lower()
        hints = tuple(h for h in maybe if h in low)
    else:
        low = joined.lower()
        hints = tuple(h for word, group in _GROUPS.items() if word in low for h in group if h in low)
    if not hints:
        return copy
    changed = {t: c for t in _holding(texts, joined, low, hints) if (c := clean_text(t)) != t}
    return _replace(copy, changed) if changed else copy


@dataclass
class NodeRaw:
    """What one node gave back, or why it gave nothing: failure is data."""

    name: str
    address: str
    port: int | None
    user: str | None
    groups: list[str]
    outcome: str
    message: str
    started: float
    duration_s: float
    transport: str
    collector: dict[str, Any] | None = None
    expect: dict[str, Any] = field(default_factory=dict)
    expect_sources: dict[str, str] = field(default_factory=dict)
    thresholds: dict[str, Any] = field(default_factory=dict)

    def __setattr__(self, name: str, value: Any) -> None:
        """Node text is made inert and scrubbed once, here: at construction and on every later assignment
        (live.collect attaches the inventory's expectations after the node answered)."""
        if name in _CLEANED_FIELDS and value is not None:
            value = clean_text(value) if isinstance(value, str) else clean_document(value)
        if name == "collector":
            object.__setattr__(self, "_doc_serial", next(_DOC_SERIALS))
            object.__setattr__(self, "_dropped", False)
        object.__setattr__(self, name, value)

    def facts_key(self) -> tuple[Any, ...]:
        """What parsed facts depend on: the collector output (which document this raw was given: a serial number,
        never reused, that survives `drop_collector`), outcome, expectations, thresholds."""
        return (self.__dict__.get("_doc_serial"), self.outcome, repr(sorted(self.expect.items())),
                repr(sorted(self.thresholds.items())))

    def drop_collector(self) -> None:
        """Let the collector document go (its facts were parsed and, with --save, it was written): a 10,000-node
        run keeps no raw output in memory. `facts_key()` is unchanged, so facts parsed before still match; the
        raw knows it was dropped (`dropped`), so nothing mistakes the gap for a node that printed nothing."""
        object.__setattr__(self, "collector", None)
        object.__setattr__(self, "_dropped", True)

    @property
    def dropped(self) -> bool:
        return bool(self.__dict__.get("_dropped"))

    def to_dict(self) -> dict[str, Any]:
        """The bundle's node entry: every field, the collector document shared, not copied (dataclasses.asdict
        deep-copies it: ~1 ms a node for nothing, as the document is only serialised)."""
        if self.dropped:
            raise ValueError(f"{self.name}: its collector output was dropped after parsing; it cannot be saved now")
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def probe(self, probe_id: str) -> dict[str, Any] | None:
        if not self.collector:
            return None
        value = self.collector.get("probes", {}).get(probe_id)
        return value if isinstance(value, dict) else None


@dataclass
class Bundle:
    nodes: list[NodeRaw]
    created: float = field(default_factory=time.time)
    tool_version: str = ""
    inventory: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    label: str = ""  # e.g. "recording" for the bundled demo

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": BUNDLE_FORMAT,
            "version": BUNDLE_VERSION,
            "tool_version": self.tool_version,
            "created": self.created,
            "label": self.label,
            "inventory": self.inventory,
            "options": self.options,
            "nodes": [n.to_dict() for n in self.nodes],
        }

    def header(self) -> dict[str, Any]:
        """to_dict() without the nodes: what a streamed bundle writes before its first node."""
        return {"format": BUNDLE_FORMAT, "version": BUNDLE_VERSION, "tool_version": self.tool_version,
                "created": self.created, "label": self.label, "inventory": self.inventory, "options": self.options}


class BundleError(Exception):
    """A bundle that cannot be read: one line naming the file and what is wrong."""


def saved_path(directory: str | Path) -> Path:
    """The file `save_bundle`/`BundleWriter` write for DIR (DIR/bundle.json) or a .json path."""
    path = Path(directory)
    return path if path.suffix == ".json" else path / BUNDLE_FILE


def _target(directory: str | Path) -> Path:
    path = Path(directory)
    if path.suffix == ".json":
        path.parent.mkdir(parents=True, exist_ok=True)
        return path
    path.mkdir(parents=True, exist_ok=True)
    return path / BUNDLE_FILE


class BundleWriter:
    """A bundle written node by node as each answers (`run --save`), so no node's raw output has to stay in memory.

    The file is the same JSON document `save_bundle` writes (one object: format, version, ..., `nodes`), so every
    reader reads it; nodes come in the order they answered, one compact line each, and `node_order` (the
    inventory's order, written last) tells `load_bundle` the order to give them back in. It is written to
    `bundle.json.tmp` and renamed on `close()`, so a run that dies leaves no half bundle under the real name.
    """

    def __init__(self, directory: str | Path, header: dict[str, Any]) -> None:
        self.path = _target(directory)
        self._tmp = self.path.with_suffix(".json.tmp")
        self._fh = self._tmp.open("w")
        self._written: set[str] = set()
        head = json.dumps({k: v for k, v in header.items() if k != "nodes"}, sort_keys=True)  # never empty: format
        self._fh.write(head[:-1] + ', "nodes": [\n')

    def add(self, node: NodeRaw) -> None:
        """Write one node (once: a node written before is not written again)."""
        if node.name in self._written:
            return
        self._fh.write((",\n" if self._written else "") + json.dumps(node.to_dict(), sort_keys=True))
        self._written.add(node.name)

    def __contains__(self, name: str) -> bool:
        return name in self._written

    def close(self, order: list[str]) -> Path:
        """Finish the document with the nodes' order and put it in place."""
        self._fh.write('\n], "node_order": ' + json.dumps(order) + "}\n")
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self._fh.close()
        self._tmp.replace(self.path)
        return self.path

    def abort(self) -> None:
        """Stop writing and remove the partial file."""
        if not self._fh.closed:
            self._fh.close()
        self._tmp.unlink(missing_ok=True)


def save_bundle(bundle: Bundle, directory: str | Path) -> Path:
    """Write DIR/bundle.json (created if needed); refuse to overwrite a non-bundle file."""
    target = _target(directory)
    text = json.dumps(bundle.to_dict(), indent=1, sort_keys=True) + "\n"  # node text was cleaned in NodeRaw
    tmp = target.with_suffix(".json.tmp")
    tmp.write_text(text)
    tmp.replace(target)
    return target


def bundle_digest(bundle: Bundle) -> str:
    return hashlib.sha256(json.dumps(bundle.to_dict(), sort_keys=True).encode()).hexdigest()


def _node_from(d: Any, where: str) -> NodeRaw:
    if not isinstance(d, dict):
        raise BundleError(f"{where}: node entry is not an object")
    try:
        return NodeRaw(
            name=str(d["name"]),
            address=str(d.get("address", "")),
            port=d.get("port"),
            user=d.get("user"),
            groups=list(d.get("groups") or []),
            outcome=str(d["outcome"]),
            message=str(d.get("message", "")),
            started=float(d.get("started") or 0.0),
            duration_s=float(d.get("duration_s") or 0.0),
            transport=str(d.get("transport", "")),
            collector=d.get("collector"),
            expect=dict(d.get("expect") or {}),
            expect_sources=dict(d.get("expect_sources") or {}),
            thresholds=dict(d.get("thresholds") or {}),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise BundleError(f"{where}: node entry malformed: {exc}") from exc


def load_bundle(source: str | Path) -> Bundle:
    """Read a bundle from DIR (DIR/bundle.json) or a .json file."""
    path = Path(source)
    target = path / BUNDLE_FILE if path.is_dir() else path
    try:
        data = json.loads(target.read_text())
    except FileNotFoundError as exc:
        raise BundleError(f"{target}: no such bundle (expected a directory with {BUNDLE_FILE} or a .json file)") from exc
    except (OSError, ValueError) as exc:
        raise BundleError(f"{target}: not a readable bundle: {exc}") from exc
    if not isinstance(data, dict) or data.get("format") != BUNDLE_FORMAT:
        raise BundleError(f"{target}: not a preflight bundle (format is {data.get('format') if isinstance(data, dict) else None!r})")
    if int(data.get("version", 0)) > BUNDLE_VERSION:
        raise BundleError(f"{target}: bundle version {data.get('version')} is newer than this preflight reads ({BUNDLE_VERSION})")
    nodes = [_node_from(n, f"{target}: nodes[{i}]") for i, n in enumerate(data.get("nodes") or [])]
    order = data.get("node_order")  # a streamed bundle (BundleWriter): nodes as they answered, this the inventory's order
    if isinstance(order, list):
        rank = {str(name): i for i, name in enumerate(order)}
        nodes.sort(key=lambda n: rank.get(n.name, len(rank)))
    return Bundle(
        nodes=nodes,
        created=float(data.get("created") or 0.0),
        tool_version=str(data.get("tool_version", "")),
        inventory=dict(data.get("inventory") or {}),
        options=dict(data.get("options") or {}),
        label=str(data.get("label", "")),
    )
