"""The interactive UI (Textual). Entry points used by the CLI; the app lives in preflight/tui/app.py."""

from __future__ import annotations

from typing import Any


def run_bundle(path: str, *, model: str | None = None) -> int:
    """Browse a saved bundle; exit code of the judged run (0/1/2) when the user quits."""
    raise NotImplementedError("preflight.tui.run_bundle: being built (issue 5)")


def run_live(args: Any) -> int:
    """Collect from an inventory with live updates (args: the `run` command's namespace)."""
    raise NotImplementedError("preflight.tui.run_live: being built (issue 5)")
