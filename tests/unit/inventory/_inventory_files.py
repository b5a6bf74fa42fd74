"""Shared by the inventory tests: where the fixture inventories are, and small helpers."""

from __future__ import annotations

from pathlib import Path

from preflight.inventory import Inventory, Node

ROOT = Path(__file__).resolve().parents[3]
FIX = ROOT / "tests" / "fixtures" / "inventories"
BAD = FIX / "bad"


def by_name(inv: Inventory) -> dict[str, Node]:
    return {n.name: n for n in inv.nodes}


def write(tmp_path: Path, text: str, name: str = "inv.yaml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p
