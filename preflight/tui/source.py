"""Where the TUI's run comes from: a saved bundle, or a live collection from an inventory."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from preflight.collect.bundle import Bundle, NodeRaw


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
    """`request` is a preflight.cli.LiveRequest (nodes, options, include_optional, inventory_path, save)."""

    request: Any

    kind = "live"

    @property
    def label(self) -> str:
        return f"live: {self.request.inventory_path or 'hosts'} ({len(self.request.nodes)} nodes)"

    def json_source(self) -> dict[str, Any]:
        return {"kind": "live", "bundle": self.request.save, "label": None,
                "inventory": self.request.inventory_path, "via": "tui"}

    def node(self, name: str) -> Any:
        return next(n for n in self.request.nodes if n.name == name)

    def fill_expect(self, raw: NodeRaw) -> NodeRaw:
        """What live.collect adds after the run, added as each node answers (judging needs it now)."""
        from preflight import live

        try:
            node = self.node(raw.name)
        except StopIteration:
            return raw
        raw.expect, raw.expect_sources = live._expect_of(node)
        raw.thresholds = {k: dict(v) for k, v in dict(getattr(node, "thresholds", {}) or {}).items()}
        return raw


RunSource = BundleSource | LiveSource
