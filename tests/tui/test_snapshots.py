"""Snapshot tests: each screen at 80×24 over the demo recording (SVGs in __snapshots__).

Refresh with `pytest tests/tui/test_snapshots.py --snapshot-update` and review the SVGs.
"""

from __future__ import annotations

import pytest
from textual.widgets import DataTable

from preflight.registry import GROUPS

from .conftest import demo_app, settle

pytest.importorskip("pytest_textual_snapshot")

SIZE = (80, 24)


async def _judged(pilot) -> None:
    await settle(pilot)


async def _cell(pilot, node: str, group: str) -> None:
    await settle(pilot)
    screen = pilot.app.screen
    screen.query_one("#fleet", DataTable).move_cursor(row=screen._shown.index(node), column=2 + GROUPS.index(group))
    await pilot.pause()


def test_fleet_screen(snap_compare, tmp_path):
    assert snap_compare(demo_app(tmp_path), terminal_size=SIZE, run_before=_judged)


def test_fleet_screen_failures_only(snap_compare, tmp_path):
    async def run(pilot):
        await settle(pilot)
        await pilot.press("f")
        await pilot.pause()
    assert snap_compare(demo_app(tmp_path), terminal_size=SIZE, run_before=run)


def test_node_screen(snap_compare, tmp_path):
    async def run(pilot):
        await _cell(pilot, "gpu-04", "nvlink")
        await pilot.press("enter")
        await pilot.pause()
    assert snap_compare(demo_app(tmp_path), terminal_size=SIZE, run_before=run)


def test_node_topology(snap_compare, tmp_path):
    async def run(pilot):
        await _cell(pilot, "gpu-04", "nvlink")
        await pilot.press("enter")
        await pilot.pause()
        await pilot.press("t")
        await pilot.pause()
    assert snap_compare(demo_app(tmp_path), terminal_size=SIZE, run_before=run)


def test_check_screen(snap_compare, tmp_path):
    async def run(pilot):
        await _cell(pilot, "gpu-03", "versions")
        await pilot.press("c")
        await pilot.pause()
    assert snap_compare(demo_app(tmp_path), terminal_size=SIZE, run_before=run)


def test_plan_screen(snap_compare, tmp_path):
    async def run(pilot):
        await settle(pilot)
        await pilot.press("p")
        await settle(pilot, lambda: pilot.app.screen.computations >= 1)
        await pilot.pause(0.4)  # past the inputs' debounce: nothing more to compute
        assert pilot.app.screen.computations == 1
    assert snap_compare(demo_app(tmp_path), terminal_size=SIZE, run_before=run)


def test_help_panel(snap_compare, tmp_path):
    async def run(pilot):
        await settle(pilot)
        await pilot.press("question_mark")
        await pilot.pause()
    assert snap_compare(demo_app(tmp_path), terminal_size=SIZE, run_before=run)
