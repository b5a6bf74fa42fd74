"""The TUI on a live run against real sshd daemons: the matrix fills as nodes answer, a slow node waits.

Nodes are real OpenSSH servers on 127.0.0.1 (preflight.sim); one is paused (SIGSTOP) so the
screen shows it waiting while the others are already judged, then resumed.
"""

from __future__ import annotations

import asyncio

import pytest
from textual.widgets import DataTable

from preflight.collect.bundle import load_bundle
from preflight.inventory import load_inventory
from preflight.session import LiveRequest
from preflight.transport.fanout import FanoutOptions
from preflight.transport.ssh import SshOptions
from preflight.tui.app import PreflightApp
from preflight.tui.messages import NodeJudged, NodeStarted, RunFinished
from preflight.tui.source import LiveSource

FLEET = [("node-01", "h100-healthy"), ("node-02", "h100-healthy"), ("node-03", "nvlink-down"),
         ("node-04", "h100-healthy")]


async def until(pilot, cond, timeout: float, what: str) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not cond():
        if loop.time() > end:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await pilot.pause(0.1)


def cell(app, node: str, col: str) -> str:
    return app.screen.query_one("#fleet", DataTable).get_cell(node, col).plain.strip()


@pytest.mark.asyncio
async def test_live_tui_fills_as_nodes_answer(sim_fleet_factory, tmp_path):
    fleet = sim_fleet_factory(FLEET)
    path = fleet.write_inventory(tmp_path / "sim.yaml", thresholds=fleet.sandbox_thresholds())
    inv = load_inventory(path)
    fleet.stop_node("node-04")  # connection refused: unreachable, judged at once
    fleet.pause("node-02")  # answers only once resumed
    req = LiveRequest(nodes=tuple(inv.nodes),
                      options=FanoutOptions(ssh=SshOptions(known_hosts=inv.known_hosts, use_default_known_hosts=False)),
                      include_optional=(), inventory_path=str(path), save=str(tmp_path / "saved"))
    seen: list[object] = []
    app = PreflightApp(LiveSource(req), output_dir=tmp_path)
    try:
        async with app.run_test(size=(100, 30), message_hook=seen.append) as pilot:
            st = app.state
            await until(pilot, lambda: {"node-01", "node-03", "node-04"} <= set(st.reports), 120,
                        "three nodes to be judged")
            await pilot.pause(1.2)  # one tick of the waiting clock
            # partial fill: the paused node waits, the others show their verdicts
            assert app.collecting and "node-02" not in st.reports
            assert cell(app, "node-02", "state").startswith("… waiting")
            assert cell(app, "node-03", "nvlink") == "✖ FAIL"
            assert cell(app, "node-04", "state").startswith("⨯")
            assert cell(app, "node-04", "nvlink") == "—"
            assert "collecting: 3/4 answered" in str(app.screen.query_one("#fleet-title").content)
            fleet.resume("node-02")
            await until(pilot, lambda: not app.collecting and not app.judging and not st.pending, 120,
                        "the run to finish")
            await pilot.pause()
            assert cell(app, "node-02", "nvlink") == "✔ ok"
            assert cell(app, "node-02", "versions") == "✔ ok"  # fleet checks ran once every node answered
            assert st.counts() == {"pass": 2, "warn": 0, "fail": 1, "error": 0, "skip": 0, "unreachable": 1,
                                   "waiting": 0}
            judged_order = [m.raw.name for m in seen if isinstance(m, NodeJudged)]
            assert judged_order[-1] == "node-02" and sorted(judged_order) == sorted(n for n, _ in FLEET)
            assert [i for i, m in enumerate(seen) if isinstance(m, RunFinished)][0] > max(
                i for i, m in enumerate(seen) if isinstance(m, NodeJudged))
            saved = load_bundle(tmp_path / "saved")  # --save honoured when the run ends
            assert sorted(n.name for n in saved.nodes) == sorted(n for n, _ in FLEET)
            # re-run one node: it is collected again over SSH
            table = app.screen.query_one("#fleet", DataTable)
            table.move_cursor(row=2, column=0)
            started = sum(isinstance(m, NodeStarted) and m.name == "node-03" for m in seen)
            await pilot.press("r")
            await until(pilot, lambda: st.version.get("node-03") == 2 and not app.judging and not st.pending, 120,
                        "node-03 to be collected again")
            assert sum(isinstance(m, NodeStarted) and m.name == "node-03" for m in seen) == started + 1
            assert cell(app, "node-03", "nvlink") == "✖ FAIL"
            await pilot.press("q")
        assert app.return_value == 2
    finally:
        fleet.resume("node-02")
