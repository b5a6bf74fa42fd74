"""The interactive UI (Textual). Entry points used by the CLI; the app lives in preflight/tui/app.py.

The TUI is handed data (a bundle path, a session LiveRequest, a judged hang gather), never flags: it
imports the session, engine, plan and report layers, never the CLI or the transport.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from preflight.collect.bundle import Bundle
    from preflight.hang.gather import LiveHang
    from preflight.session import LiveRequest


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


def run_hang(bundle: Bundle, *, title: str = "preflight hang") -> int:
    from preflight.hang.gather import judge_hang

    return run_hang_result(judge_hang(bundle), title=title)


def run_hang_result(result: LiveHang, *, title: str = "preflight hang") -> int:
    """The ranks × causes screen on a judged gather; its exit code when the user quits (3 if none)."""
    from preflight.tui.screens.hang import HangApp

    code = HangApp(result, title).run()
    return 3 if code is None else int(code)


def run_verdict(verdict: Any, *, title: str = "preflight analyze") -> int:
    """The hang screen on an `analyze` verdict (no live ranks): causes, ranks from the logs, jobs, next commands."""
    from preflight.tui.screens.hang import HangApp, OfflineResult

    code = HangApp(OfflineResult(verdict), title).run()
    return 3 if code is None else int(code)


def run_live(request: LiveRequest, *, model: str | None = None) -> int:
    """Collect from the request's nodes with live updates (the CLI resolved the flags into the request)."""
    from preflight.tui.app import PreflightApp
    from preflight.tui.source import LiveSource

    app = PreflightApp(LiveSource(request), model=model)
    code = app.run()
    return 3 if code is None else int(code)
