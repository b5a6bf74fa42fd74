"""Facts bundles: the raw collection of a run, saved and replayed bit for bit.

A bundle stores only raw outputs (plus what the inventory expected of each node), so a
parser fixed later applies to old bundles on replay. A `NodeRaw` is where node text enters the
model: whatever builds one (the SSH, local and Slurm transports, the hang gather, a bundle loaded
from disk, a test) gets its message, collector document, expectations and thresholds back through
`preflight.textsafe.clean` (inert and secrets scrubbed), so nothing downstream, a saved bundle
included, scrubs again. Parsers read that text: none needs a control character (see textsafe).
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from preflight.textsafe import clean, clean_text
from preflight.textsafe import scrub as scrub  # re-exported: older callers import it from here

BUNDLE_FORMAT = "preflight-bundle"
BUNDLE_VERSION = 1
BUNDLE_FILE = "bundle.json"

# Outcomes a node can have; anything but "ok" means no (or unusable) facts.
OUTCOMES = ("ok", "unreachable", "refused", "auth_failed", "hostkey_rejected", "timeout", "collector_error", "error")

# The NodeRaw fields that carry text from the node (or the inventory's expectations): cleaned whenever set.
_CLEANED_FIELDS = frozenset({"message", "collector", "expect", "expect_sources", "thresholds"})


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
            value = clean_text(value) if isinstance(value, str) else clean(value)
        object.__setattr__(self, name, value)

    def facts_key(self) -> tuple[Any, ...]:
        """What parsed facts depend on: the collector output (by identity), outcome, expectations, thresholds."""
        return (id(self.collector), self.outcome, repr(sorted(self.expect.items())), repr(sorted(self.thresholds.items())))

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
            "nodes": [asdict(n) for n in self.nodes],
        }


class BundleError(Exception):
    """A bundle that cannot be read: one line naming the file and what is wrong."""


def save_bundle(bundle: Bundle, directory: str | Path) -> Path:
    """Write DIR/bundle.json (created if needed); refuse to overwrite a non-bundle file."""
    path = Path(directory)
    if path.suffix == ".json":
        target = path
        target.parent.mkdir(parents=True, exist_ok=True)
    else:
        path.mkdir(parents=True, exist_ok=True)
        target = path / BUNDLE_FILE
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
    return Bundle(
        nodes=nodes,
        created=float(data.get("created") or 0.0),
        tool_version=str(data.get("tool_version", "")),
        inventory=dict(data.get("inventory") or {}),
        options=dict(data.get("options") or {}),
        label=str(data.get("label", "")),
    )
