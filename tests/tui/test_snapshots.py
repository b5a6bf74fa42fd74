"""Snapshot tests: every screen at 80×24 and 200×50 over the demo recording (SVGs in __snapshots__).

Refresh with `pytest tests/tui/test_snapshots.py --snapshot-update` and review the SVGs. Each test also
reads the screen's text back and asserts the footer and headers are whole at that size.
"""

from __future__ import annotations

import json

import pytest
from textual.widgets import DataTable

from preflight.collect.bundle import Bundle, NodeRaw
from preflight.hang.gather import judge_hang
from preflight.registry import GROUPS
from preflight.tui.screens.hang import HangApp

from .conftest import demo_app, screen_text, settle

pytest.importorskip("pytest_textual_snapshot")

SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((200, 50), id="200x50")]


async def _judged(pilot) -> None:
    await settle(pilot, lambda: pilot.app.screen.envelope_computations >= 1)


async def _cell(pilot, node: str, group: str) -> None:
    await _judged(pilot)
    screen = pilot.app.screen
    screen.query_one("#fleet", DataTable).move_cursor(row=screen._shown.index(node), column=2 + GROUPS.index(group))
    await pilot.pause()


def _whole(pilot, *needles: str) -> None:
    """Nothing cut off: each needle (a footer's last key, a header) is on the screen in full."""
    text = screen_text(pilot.app)
    for needle in needles:
        assert needle in text, f"{needle!r} is not on the screen:\n{text}"


@pytest.mark.parametrize("size", SIZES)
def test_fleet_screen(snap_compare, tmp_path, size):
    async def run(pilot):
        await _judged(pilot)
        _whole(pilot, "p full plan", "TP ≤ 8", "fabric estimated", "p plan")
    assert snap_compare(demo_app(tmp_path), terminal_size=size, run_before=run)


@pytest.mark.parametrize("size", SIZES)
def test_fleet_screen_with_model(snap_compare, tmp_path, size):
    async def run(pilot):
        await _judged(pilot)
        _whole(pilot, "model meta-llama/Llama-3.1-70B", "✔ TP8", "p plan")
    assert snap_compare(demo_app(tmp_path, model="meta-llama/Llama-3.1-70B"), terminal_size=size, run_before=run)


@pytest.mark.parametrize("size", SIZES)
def test_fleet_screen_failures_only(snap_compare, tmp_path, size):
    async def run(pilot):
        await _judged(pilot)
        await pilot.press("f")
        await pilot.pause()
        _whole(pilot, "filter: failures", "p plan")
    assert snap_compare(demo_app(tmp_path), terminal_size=size, run_before=run)


@pytest.mark.parametrize("size", SIZES)
def test_node_screen(snap_compare, tmp_path, size):
    async def run(pilot):
        await _cell(pilot, "gpu-04", "nvlink")
        await pilot.press("enter")
        await pilot.pause()
        _whole(pilot, "nvlink first", "7 pairs NV16", "p plan")
    assert snap_compare(demo_app(tmp_path), terminal_size=size, run_before=run)


@pytest.mark.parametrize("size", SIZES)
def test_node_topology_finding(snap_compare, tmp_path, size):
    async def run(pilot):
        await _cell(pilot, "gpu-04", "topology")
        await pilot.press("enter")
        await pilot.pause()
        screen = pilot.app.screen
        table = screen.query_one("#findings", DataTable)
        table.move_cursor(row=next(i for i, f in enumerate(screen._rows) if f.check == "topology.consistent"))
        await pilot.pause()
        _whole(pilot, "differs: GPU0↔GPU5", "p plan")
    assert snap_compare(demo_app(tmp_path), terminal_size=size, run_before=run)


@pytest.mark.parametrize("size", SIZES)
def test_node_topology(snap_compare, tmp_path, size):
    async def run(pilot):
        await _cell(pilot, "gpu-04", "nvlink")
        await pilot.press("enter")
        await pilot.pause()
        await pilot.press("t")
        await pilot.pause()
        _whole(pilot, "NVLink near NIC NUMA", "p plan")
    assert snap_compare(demo_app(tmp_path), terminal_size=size, run_before=run)


@pytest.mark.parametrize("size", SIZES)
def test_check_screen(snap_compare, tmp_path, size):
    async def run(pilot):
        await _cell(pilot, "gpu-03", "versions")
        await pilot.press("c")
        await pilot.pause()
        _whole(pilot, "check versions.driver.consistent", "p plan")
    assert snap_compare(demo_app(tmp_path), terminal_size=size, run_before=run)


@pytest.mark.parametrize("size", SIZES)
def test_plan_screen(snap_compare, tmp_path, size):
    async def run(pilot):
        await _judged(pilot)
        await pilot.press("p")
        await settle(pilot, lambda: pilot.app.screen.computations >= 1)
        await pilot.pause(0.4)  # past the inputs' debounce: nothing more to compute
        assert pilot.app.screen.computations == 1
        _whole(pilot, "reasons", "copy launch cmd", "p plan")
    assert snap_compare(demo_app(tmp_path), terminal_size=size, run_before=run)


@pytest.mark.parametrize("size", SIZES)
def test_help_panel(snap_compare, tmp_path, size):
    async def run(pilot):
        await _judged(pilot)
        await pilot.press("question_mark")
        await pilot.pause()
        _whole(pilot, "preflight keys", "p plan")
    assert snap_compare(demo_app(tmp_path), terminal_size=size, run_before=run)


def _hang_app() -> HangApp:
    def raw(name: str, ranks: list[tuple[int, str]]) -> NodeRaw:
        procs = [{"pid": 100 + r, "cmdline": "python train.py", "state": state,
                  "env": {"RANK": str(r), "LOCAL_RANK": str(r % 2), "WORLD_SIZE": "6"}} for r, state in ranks]
        probes = {"job_procs": {"rc": 0, "stdout": json.dumps({"processes": procs}), "stderr": "", "error": None,
                                "kind": "builtin"}}
        return NodeRaw(name=name, address="10.0.0.1", port=22, user="root", groups=[], outcome="ok", message="",
                       started=0.0, duration_s=0.1, transport="ssh", collector={"mode": "python", "probes": probes})

    bundle = Bundle(nodes=[raw("gpu-01", [(0, "S (sleeping)"), (1, "S (sleeping)")]),
                           raw("gpu-02", [(2, "S (sleeping)"), (3, "T (stopped)")]), raw("gpu-03", [(4, "S (sleeping)")])],
                    label="hang")
    return HangApp(judge_hang(bundle), "snapshot")


@pytest.mark.parametrize("size", SIZES)
def test_hang_screen(snap_compare, size):
    async def run(pilot):
        await pilot.pause()
        _whole(pilot, "causes", "ranks")
    assert snap_compare(_hang_app(), terminal_size=size, run_before=run)
