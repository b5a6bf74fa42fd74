"""The interactive UI (Textual). Entry points used by the CLI; the app lives in preflight/tui/app.py."""

from __future__ import annotations

from typing import Any


def run_bundle(path: str, *, model: str | None = None) -> int:
    """Browse a saved bundle; exit code of the judged run (0/1/2) when the user quits."""
    from preflight.collect.bundle import load_bundle
    from preflight.tui.app import PreflightApp
    from preflight.tui.source import BundleSource

    bundle = load_bundle(path)
    if bundle.label == "hang":  # a `preflight hang --save` gather: the ranks × causes screen
        return run_hang(bundle, title=f"preflight hang · {path}")
    app = PreflightApp(BundleSource(bundle, str(path)), model=model)
    code = app.run()
    return 3 if code is None else int(code)


def run_hang(bundle: Any, *, title: str = "preflight hang") -> int:
    from preflight.hang.live import judge_hang
    from preflight.tui.screens.hang import HangApp

    code = HangApp(judge_hang(bundle), title).run()
    return 3 if code is None else int(code)


def run_live(args: Any) -> int:
    """Collect from an inventory with live updates (args: the `run` command's namespace)."""
    import sys

    from preflight.cli import live_request
    from preflight.inventory import InventoryError
    from preflight.tui.app import PreflightApp
    from preflight.tui.source import LiveSource

    try:
        req = live_request(args)
    except (InventoryError, ValueError) as exc:  # PlanError is a ValueError
        print(f"preflight: {exc}", file=sys.stderr)
        return 3
    app = PreflightApp(LiveSource(req), model=getattr(args, "model", None))
    code = app.run()
    return 3 if code is None else int(code)
