"""Pilot tests: real keystrokes over the real demo recording, every screen and key."""

from __future__ import annotations

import json

import pytest
from textual.widgets import DataTable, Input, OptionList, Select, Static, TabbedContent

from preflight.collect.bundle import load_bundle
from preflight.registry import GROUPS
from preflight.tui.screens.check import CheckScreen
from preflight.tui.screens.fleet import FleetScreen
from preflight.tui.screens.help import HelpScreen
from preflight.tui.screens.node import NodeScreen
from preflight.tui.screens.plan import PlanScreen

from .conftest import settle

pytestmark = pytest.mark.asyncio

SIZE = (100, 32)


def cell(screen: FleetScreen, node: str, col: str) -> str:
    return screen.query_one("#fleet", DataTable).get_cell(node, col).plain.strip()


def rows(table: DataTable) -> list[str]:
    return [str(k.value) for k in table.rows]


def text_of(widget: Static) -> str:
    from rich.console import Console

    console = Console(width=200, record=True, color_system=None)
    console.print(widget.content)
    return console.export_text()


async def move_to(pilot, node: str, group: str) -> None:
    screen = pilot.app.screen
    table = screen.query_one("#fleet", DataTable)
    table.move_cursor(row=screen._shown.index(node), column=2 + GROUPS.index(group))
    await pilot.pause()


async def test_fleet_matrix_and_counts(app):
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, FleetScreen)
        table = screen.query_one("#fleet", DataTable)
        assert rows(table) == ["gpu-01", "gpu-02", "gpu-03", "gpu-04"]
        assert cell(screen, "gpu-04", "nvlink") == "✖ FAIL"
        assert cell(screen, "gpu-03", "versions") == "✖ FAIL"
        assert cell(screen, "gpu-01", "versions") == "✔ ok"
        assert cell(screen, "gpu-03", "state") == "✖ FAIL"
        counts = text_of(screen.query_one("#fleet-counts", Static))
        assert "✔ 2 passed" in counts and "✖ 2 failed" in counts and "⨯ 0 unreachable" in counts


async def test_enter_on_a_red_cell_opens_the_node_with_that_group_first(app):
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await move_to(pilot, "gpu-04", "nvlink")
        await pilot.press("enter")
        screen = app.screen
        assert isinstance(screen, NodeScreen) and screen.node_name == "gpu-04"
        first = screen._rows[0]
        assert (first.check, first.subject, first.status.value) == ("nvlink.links.active", "GPU5", "fail")
        detail = text_of(screen.query_one("#detail"))
        assert "16 of 18" in detail and "expected: 18" in detail and "hint:" in detail
        assert "│" in detail  # raw evidence lines
        await pilot.press("t")
        await pilot.pause()
        assert screen.query_one("#node-tabs", TabbedContent).active == "tab-topology"
        topo = text_of(screen.query_one("#topology"))
        assert "✖ 16/18" in topo and "NV18" in topo and "GPU5: 16 of 18 NVLinks active" in topo
        await pilot.press("t")
        await pilot.pause()
        assert screen.query_one("#node-tabs", TabbedContent).active == "tab-findings"
        await pilot.press("f")  # problems only
        assert all(f.status.rank >= 2 for f in screen._rows) and screen._rows
        await pilot.press("escape")
        assert isinstance(app.screen, FleetScreen)


async def test_node_screen_c_opens_the_finding_check(app):
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await move_to(pilot, "gpu-03", "versions")
        await pilot.press("enter")
        await pilot.pause()
        await pilot.press("c")
        screen = app.screen
        assert isinstance(screen, CheckScreen) and screen.check_id == "versions.driver.consistent"


async def test_check_screen_groups_nodes_by_value(app):
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await move_to(pilot, "gpu-01", "versions")
        await pilot.press("c")
        screen = app.screen
        assert isinstance(screen, CheckScreen)
        assert screen.check_id == "versions.driver.consistent"  # the failing check of the group comes first
        groups = {g.value: g.nodes for g in screen._groups}
        assert groups == {"535.129.03": ("gpu-03",), "565.57.01": ("gpu-01", "gpu-02", "gpu-04")}
        assert screen._groups[0].status.value == "fail"
        detail = text_of(screen.query_one("#value-detail"))
        assert "2 distinct values" in detail and "fleet majority" in detail
        # another check from the list: the table follows
        ol = screen.query_one("#checks", OptionList)
        ol.focus()
        await pilot.press("down")
        assert screen.check_id != "versions.driver.consistent"
        assert screen.query_one("#values", DataTable).row_count == len(screen._groups)


async def test_check_screen_rerun_rejudges_recorded_facts(app):
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await settle(pilot)
        await move_to(pilot, "gpu-01", "versions")
        await pilot.press("c")
        before = app.state.run_report()
        await pilot.press("r")
        await settle(pilot, lambda: any("re-judged versions.driver.consistent" in n.message
                                        for n in app._notifications))
        assert app.state.run_report().counts() == before.counts()
        assert any("recorded facts" in n.message for n in app._notifications)
        await pilot.press("enter")  # the first value group's first node
        assert isinstance(app.screen, NodeScreen) and app.screen.node_name == "gpu-03"


async def test_header_click_opens_the_check_screen_for_the_column(app):
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        table = app.screen.query_one("#fleet", DataTable)
        x = sum(c.get_render_width(table) for c in list(table.columns.values())[:2 + GROUPS.index("nvlink")]) + 2
        await pilot.click("#fleet", offset=(x, 0))
        await pilot.pause()
        assert isinstance(app.screen, CheckScreen) and app.specs[app.screen.check_id].group == "nvlink"
        assert app.screen.check_id == "nvlink.links.active"


async def test_filter_to_failures_and_back(app):
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        table = app.screen.query_one("#fleet", DataTable)
        await pilot.press("f")
        assert rows(table) == ["gpu-03", "gpu-04"]
        assert "filter: failures" in text_of(app.screen.query_one("#fleet-title"))
        await pilot.press("f")
        assert rows(table) == ["gpu-01", "gpu-02", "gpu-03", "gpu-04"]


async def test_search_nodes(app):
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        table = app.screen.query_one("#fleet", DataTable)
        await pilot.press("slash")
        assert app.screen.query_one("#search", Input).has_focus
        await pilot.press(*"gpu-0[12]")
        assert rows(table) == ["gpu-01", "gpu-02"]
        await pilot.press("enter")  # keeps the filter, back to the table
        assert table.has_focus and rows(table) == ["gpu-01", "gpu-02"]
        await pilot.press("slash", "backspace", "backspace", "backspace", "backspace", "backspace", "3")
        assert rows(table) == ["gpu-03"]
        await pilot.press("escape")
        assert rows(table) == ["gpu-01", "gpu-02", "gpu-03", "gpu-04"]


async def test_rerun_node_in_a_bundle_rejudges_its_recorded_facts(app):
    from preflight.tui.messages import FleetJudged

    seen: list[object] = []
    async with app.run_test(size=SIZE, notifications=True, message_hook=seen.append) as pilot:
        await settle(pilot)
        shown: list[str] = []
        screen = app.screen
        original = screen.update_nodes

        def spy(names):
            n = original(names)
            if "gpu-04" in names:
                shown.append(cell(screen, "gpu-04", "state"))
            return n

        screen.update_nodes = spy
        judged_before = sum(isinstance(m, FleetJudged) for m in seen)
        await move_to(pilot, "gpu-04", "nvlink")
        await pilot.press("r")
        await settle(pilot)
        assert sum(isinstance(m, FleetJudged) for m in seen) == judged_before + 1
        assert shown[0] == "… re-judging" and shown[-1] == "✖ FAIL"
        assert cell(app.screen, "gpu-04", "nvlink") == "✖ FAIL"
        assert any("recorded" in n.message and "gpu-04" in n.message for n in app._notifications)


async def test_save_bundle_and_export_json(app, tmp_path):
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("s")
        saved = app.last_written
        assert saved is not None and saved.parent.parent == tmp_path
        again = load_bundle(saved)
        assert [n.name for n in again.nodes] == ["gpu-01", "gpu-02", "gpu-03", "gpu-04"]
        await pilot.press("e")
        exported = app.last_written
        assert exported is not None and exported.suffix == ".json" and exported.parent == tmp_path
        doc = json.loads(exported.read_text())
        assert doc["schema"] == "preflight-report" and doc["summary"]["exit_code"] == 2
        assert doc["source"]["kind"] == "replay" and len(doc["nodes"]) == 4


async def test_help_panel_toggles(app):
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        assert "re-run the check" in text_of(app.screen.query_one("#help"))
        await pilot.press("question_mark")
        assert isinstance(app.screen, FleetScreen)


async def test_plan_screen_updates_on_model_change_and_copies_launch(app):
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await settle(pilot)
        await pilot.press("p")
        screen = app.screen
        assert isinstance(screen, PlanScreen)
        await settle(pilot, lambda: screen.computations >= 1)
        assert screen.result is not None and screen.model.id == "meta-llama/Llama-3.1-70B"
        excluded = {n for n, _ in screen.result.plan.excluded}
        assert excluded == {"gpu-03", "gpu-04"}
        best = screen._rows[0]
        assert best.verdict == "safe"
        table = screen.query_one("#candidates", DataTable)
        assert table.row_count == len(screen.result.plan.candidates)
        await pilot.press("y")
        assert app.clipboard.startswith("# on gpu-0") and "vllm serve meta-llama/Llama-3.1-70B" in app.clipboard
        assert screen.last_copied == app.clipboard
        assert "copied to the clipboard" in text_of(screen.query_one("#plan-detail"))
        # DeepSeek-V3 in bf16 fits nowhere on two 8-GPU nodes: the table says so, with reasons
        n = screen.computations
        screen.query_one("#model", Select).value = "deepseek-ai/DeepSeek-V3"
        await settle(pilot, lambda: screen.computations > n)
        assert screen.model.id == "deepseek-ai/DeepSeek-V3"
        assert not screen.result.plan.recommend_throughput
        assert "no safe layout" in text_of(screen.query_one("#plan-title"))
        # context typed into its input re-plans too
        n = screen.computations
        screen.query_one("#model", Select).value = "meta-llama/Llama-3.1-8B"
        await settle(pilot, lambda: screen.computations > n)
        n = screen.computations
        ctx = screen.query_one("#context", Input)
        ctx.focus()
        ctx.value = ""
        await pilot.press(*"32768", "enter")
        await settle(pilot, lambda: screen.computations > n and screen.opts.context == 32768)
        assert "--max-model-len 32768" in "\n".join(
            __import__("preflight.tui.screens.plan", fromlist=["launch_text"]).launch_text(c, screen.model, screen.opts)
            for c in screen.result.plan.recommend_throughput[:1])
        await pilot.press("escape")
        assert isinstance(app.screen, FleetScreen)


async def test_plan_screen_uses_the_model_given_on_the_command_line(tmp_path):
    from .conftest import demo_app

    app = demo_app(tmp_path, model="llama-3.1-8b")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("p")
        await settle(pilot, lambda: app.screen.computations >= 1)
        assert app.screen.model.id == "meta-llama/Llama-3.1-8B"


async def test_bad_plan_input_is_reported_not_crashed(app):
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("p")
        screen = app.screen
        await settle(pilot, lambda: screen.computations >= 1)
        screen.query_one("#seqs", Input).value = "0"
        await pilot.pause(0.4)
        assert "must be positive" in text_of(screen.query_one("#plan-title"))


async def test_quit_returns_the_run_exit_code(app):
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("q")
    assert app.return_value == 2
