"""Fixtures for the TUI tests: the app over the real demo recording, and a bounded wait for its workers."""

from __future__ import annotations

import asyncio

import pytest

from preflight.cli import demo_bundle_path
from preflight.collect.bundle import load_bundle
from preflight.tui.app import PreflightApp
from preflight.tui.source import BundleSource


def demo_app(tmp_path=None, *, model: str | None = None) -> PreflightApp:
    path = str(demo_bundle_path())
    return PreflightApp(BundleSource(load_bundle(path), path), model=model, output_dir=tmp_path)


async def settle(pilot, until=None, *, timeout: float = 60.0) -> None:
    """Pause until the run is judged (and `until()` holds, when given); fails after `timeout` seconds."""
    app = pilot.app
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while True:
        await pilot.pause()
        ready = (not app.collecting and not app.judging and len(app.state.reports) == len(app.state.order)
                 and not app.state.pending)
        if ready and (until is None or until()):
            await pilot.pause()
            return
        if loop.time() > end:
            raise AssertionError(f"TUI did not settle within {timeout} s (pending={dict(app.state.pending)})")
        await asyncio.sleep(0.02)


@pytest.fixture
def app(tmp_path):
    return demo_app(tmp_path)


def screen_text(app) -> str:
    """The screen as plain text, row by row, as the terminal shows it (the compositor's strips)."""
    strips = app.screen._compositor.render_strips()
    return "\n".join("".join(seg.text for seg in strip) for strip in strips)
