"""The hang screen (ranks × where each is, causes beside them) driven by Pilot over a gathered-facts bundle."""

from __future__ import annotations

import json

import pytest

from preflight.collect.bundle import Bundle, NodeRaw
from preflight.hang.gather import judge_hang
from preflight.tui.screens.hang import HangApp, rank_rows

from .conftest import screen_text


def _raw(name: str, procs: list[dict]) -> NodeRaw:
    probes = {"job_procs": {"rc": 0, "stdout": json.dumps({"processes": procs}), "stderr": "", "error": None, "kind": "builtin"}}
    return NodeRaw(name=name, address="10.0.0.1", port=22, user="root", groups=[], outcome="ok", message="",
                   started=0.0, duration_s=0.1, transport="ssh", collector={"mode": "python", "probes": probes})


def _proc(pid: int, rank: int, state: str = "S (sleeping)") -> dict:
    return {"pid": pid, "cmdline": "python train.py", "state": state,
            "env": {"RANK": str(rank), "LOCAL_RANK": str(rank % 2), "WORLD_SIZE": "6"}}


@pytest.fixture
def result():
    bundle = Bundle(nodes=[_raw("gpu-01", [_proc(11, 0), _proc(12, 1)]), _raw("gpu-02", [_proc(21, 2), _proc(22, 3, "T (stopped)")]),
                           _raw("gpu-03", [_proc(31, 4)])], label="hang")
    return judge_hang(bundle)


def test_rows_are_one_per_rank(result) -> None:
    assert [r[0] for r in rank_rows(result)] == [0, 1, 2, 3, 4]


@pytest.mark.asyncio
async def test_culprit_first_and_keys_move_between_causes(result) -> None:
    app = HangApp(result, "test")
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        causes = app.screen.query_one("#hang-causes")
        assert causes.highlighted == 0
        assert "next:" in screen_text(app)
        first = result.verdict.causes[0]
        assert first.kind == "live_missing_rank" and first.rank == 5  # rank 5 of 6 has no process
        await pilot.press("c", "down")
        await pilot.pause()
        assert causes.highlighted == 1
        table = app.screen.query_one("#hang-ranks")
        assert table.row_count == 5 and table.cursor_row == 3  # the stopped rank 3 is selected
        await pilot.press("q")
    assert app.return_value == 0


@pytest.mark.asyncio
async def test_analyze_verdict_with_no_cause_opens_on_next_and_panes_switch() -> None:
    """`analyze --tui` on a real watchdog-only log that names no cause: the next pane first, with the NCCL
    logs to turn on; r / i / j show the RAS, IB and jobs panes; q exits 2 (no cause)."""
    from pathlib import Path

    from textual.widgets import TabbedContent

    from preflight.hang.verdict import analyze
    from preflight.tui.screens.hang import OfflineResult

    log = Path(__file__).resolve().parents[1] / "fixtures" / "corpus" / "nccl_logs" / "pytorch-watchdog-timeout-legacy-no-numel-1800s.txt"
    verdict = analyze([log])
    assert verdict.causes == ()
    app = HangApp(OfflineResult(verdict), "preflight analyze")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        tabs = app.screen.query_one("#hang-tabs", TabbedContent)
        assert tabs.active == "next"
        assert "no likely cause: run these, in order" in screen_text(app) and "NCCL_DEBUG=INFO" in screen_text(app)
        for key, pane, text in (("r", "ras", "no RAS report in these inputs"), ("i", "ib", "no IB port error rising"),
                                ("j", "jobs", "one job in these inputs")):
            await pilot.press(key)
            await pilot.pause()
            assert tabs.active == pane and text in screen_text(app)
        await pilot.press("q")
    assert app.return_value == 2
