"""Where the TUI's run comes from: a saved bundle, or a live collection from an inventory."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from preflight.collect.bundle import Bundle, NodeRaw
from preflight.session import LiveRequest, Node, attach_expectations


@dataclass(frozen=True)
class BundleSource:
    bundle: Bundle
    path: str

    kind = "bundle"

    @property
    def label(self) -> str:
        if self.bundle.label == "recording":
            return "demo recording (simulated fleet)"
        return f"bundle {Path(self.path).name if Path(self.path).name != 'bundle.json' else self.path}"

    def json_source(self) -> dict[str, Any]:
        return {"kind": "replay", "bundle": self.path, "label": self.bundle.label or None,
                "inventory": self.bundle.inventory.get("path"), "via": "tui"}


@dataclass(frozen=True)
class LiveSource:
    """A live run: the request the CLI resolved (nodes, transport options, include_optional, inventory, save)."""

    request: LiveRequest

    kind = "live"

    @property
    def label(self) -> str:
        return f"live: {self.request.inventory_path or 'hosts'} ({len(self.request.nodes)} nodes)"

    def json_source(self) -> dict[str, Any]:
        return {"kind": "live", "bundle": self.request.save, "label": None,
                "inventory": self.request.inventory_path, "via": "tui"}

    def node(self, name: str) -> Node:
        return next(n for n in self.request.nodes if n.name == name)

    def fill_expect(self, raw: NodeRaw) -> NodeRaw:
        """The inventory's expectations on a raw (the session's own attach; a session sweep already did it)."""
        try:
            node = self.node(raw.name)
        except StopIteration:
            return raw
        return attach_expectations(raw, node)


RunSource = BundleSource | LiveSource
