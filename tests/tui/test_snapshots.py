"""Snapshot tests: every screen at 80×24 and 200×50 over the demo recording (SVGs in __snapshots__).

Refresh with `pytest tests/tui/test_snapshots.py --snapshot-update` and review the SVGs. Each test also
reads the screen's text back and asserts the footer and headers are whole at that size.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from textual.widgets import DataTable

from preflight.collect.bundle import Bundle, NodeRaw
from preflight.hang.gather import judge_hang
from preflight.hang.verdict import analyze
from preflight.parse.common import strip_corpus_header
from preflight.registry import GROUPS
from preflight.tui.screens.hang import HangApp, OfflineResult

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
    return _still(HangApp(judge_hang(bundle), "snapshot"))


def _still(app: HangApp) -> HangApp:
    """No animation: the tab underline slides to the active tab over a few frames, and a snapshot taken mid-slide
    differs from run to run."""
    app.animation_level = "none"
    return app


@pytest.mark.parametrize("size", SIZES)
def test_hang_screen(snap_compare, size):
    async def run(pilot):
        await pilot.pause()
        _whole(pilot, "causes", "ranks")
    assert snap_compare(_hang_app(), terminal_size=size, run_before=run)


CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "corpus"
PYSPY = Path(__file__).resolve().parents[2] / "preflight" / "sim" / "profiles" / "pyspy-collective" / "py-spy-dump.txt"


def _node(name: str, address: str, procs: list[dict], **probes: str) -> NodeRaw:
    full = {"job_procs": {"rc": 0, "stdout": json.dumps({"processes": procs}), "stderr": "", "error": None, "kind": "builtin"}}
    full.update({k: {"rc": 0, "stdout": v, "stderr": "", "error": None} for k, v in probes.items()})
    return NodeRaw(name=name, address=address, port=22, user="root", groups=[], outcome="ok", message="",
                   started=0.0, duration_s=0.1, transport="ssh", collector={"mode": "python", "probes": full})


def _procs(first: int, pid0: int, n: int = 8, world: int = 32, stack: str | None = None) -> list[dict]:
    out = []
    for i in range(n):
        p = {"pid": pid0 + i, "cmdline": "python train.py", "state": "S (sleeping)",
             "env": {"RANK": str(first + i), "LOCAL_RANK": str(i), "WORLD_SIZE": str(world)}}
        if stack is not None:
            p["pyspy"] = {"rc": 0, "stdout": stack, "stderr": ""}
        out.append(p)
    return out


def _evidence_app() -> HangApp:
    """NCCL RAS, IB rates and mlx5 health in one gather (constructed from recorded outputs): the NCCL guide's MISMATCH
    report (6 ranks behind on 172.16.64.210, whose pids gpu-01's ranks 0-7 are given), symbol errors rising on
    gpu-02's mlx5_1/1 between the two ib_traffic reads, and a real mlx5_core health log as gpu-03's kernel log."""
    ras = strip_corpus_header((CORPUS / "nccl_logs" / "ncclras-docs-32rank-mismatch-6-ranks-behind.txt").read_text())[1]
    mlx5 = strip_corpus_header((CORPUS / "xid" / "mlx5-health-compromised-fw-internal-error-synd-0x1-cx6dx.txt").read_text())[1]
    base = {"port_xmit_data": 10, "port_rcv_data": 10, "link_downed": 0, "symbol_error": 4127, "port_rcv_errors": 0}
    ib = json.dumps({"interval_s": 3.0, "first": {"mlx5_1/1": base},
                     "second": {"mlx5_1/1": {**base, "symbol_error": 4151, "port_xmit_data": 99}}})
    bundle = Bundle(nodes=[_node("gpu-01", "172.16.64.210", _procs(0, 483072), ncclras=ras),
                           _node("gpu-02", "172.16.64.211", _procs(8, 2000), ib_traffic=ib),
                           _node("gpu-03", "172.16.64.212", _procs(16, 3000), kernel_log=mlx5),
                           _node("gpu-04", "172.16.64.213", _procs(24, 4000))], label="hang")
    return _still(HangApp(judge_hang(bundle), "snapshot"))


@pytest.mark.parametrize("size", SIZES)
def test_hang_screen_ras(snap_compare, size):
    async def run(pilot):
        await pilot.pause()
        await pilot.press("r")
        await pilot.pause()
        _whole(pilot, "NCCL RAS", "behind: ranks 0, 2", "gpu-01", "n next")
    assert snap_compare(_evidence_app(), terminal_size=size, run_before=run)


@pytest.mark.parametrize("size", SIZES)
def test_hang_screen_ib(snap_compare, size):
    async def run(pilot):
        await pilot.pause()
        await pilot.press("i")
        await pilot.pause()
        _whole(pilot, "IB ports and NICs", "mlx5_1/1", "n next")
    assert snap_compare(_evidence_app(), terminal_size=size, run_before=run)


@pytest.mark.parametrize("size", SIZES)
def test_hang_screen_jobs(snap_compare, size):
    """`preflight analyze --tui` on two real logs of unrelated jobs: the jobs pane."""
    logs = CORPUS / "nccl_logs"
    verdict = analyze([logs / "err-sglang-h100-socket-c-abort-then-python-traceback.txt",
                       logs / "pytorch-watchdog-mismatched-optype-broadcast-vs-allreduce.txt"])

    async def run(pilot):
        await pilot.pause()
        await pilot.press("j")
        await pilot.pause()
        _whole(pilot, "2 job(s) in these inputs", "job 1", "job 2", "n next")
    assert snap_compare(_still(HangApp(OfflineResult(verdict), "preflight analyze")), terminal_size=size, run_before=run)


@pytest.mark.parametrize("size", SIZES)
def test_hang_screen_nothing_found(snap_compare, size):
    """Every rank present and in all_reduce (the recorded py-spy dump): no cause, the next pane first."""
    stack = strip_corpus_header(PYSPY.read_text())[1]
    bundle = Bundle(nodes=[_node("gpu-01", "10.0.0.1", _procs(0, 100, 2, 4, stack)),
                           _node("gpu-02", "10.0.0.2", _procs(2, 200, 2, 4, stack))], label="hang",
                    options={"job": {"pattern": "train.py", "pyspy": True}})

    async def run(pilot):
        await pilot.pause()
        _whole(pilot, "no likely cause: run these, in order", "1. ssh gpu-01", "n next")
    assert snap_compare(_still(HangApp(judge_hang(bundle), "snapshot")), terminal_size=size, run_before=run)
