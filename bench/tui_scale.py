"""TUI at fleet scale: time to first paint and per-update cost of the fleet screen with N nodes.

Builds an N-node bundle by cloning the demo recording's nodes under new names, opens the real
app headless (App.run_test) and measures:
  first paint   app start until the fleet table holds all N rows (each "… judging")
  judged        app start until every row shows its verdicts (includes engine.judge of N nodes)
  update 1 node one node's report changes: re-render its row (only changed cells), then repaint
  no-op pass    update_nodes() over all N rows when nothing changed (what a fleet re-judge costs the UI)
  filter        toggle "failures only" on and off (median of 4)
Wall time and CPU time (`time.process_time`: every thread of the process) are both printed; on a contended
machine only the CPU time means anything.

Each moment is taken when Textual has painted the frame (`call_after_refresh`: the screen's callbacks run on
its first idle with nothing left dirty), not after `Pilot.pause()`: that waits until the whole process's CPU
goes quiet (textual._wait.wait_for_idle, up to 1 s), so with the judging thread busy it measured the judge,
not the frame.

Usage: python bench/tui_scale.py [--nodes 1000] [--updates 50]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import judge_scale  # type: ignore[import-not-found]  # bench/, beside this file
from textual.widgets import DataTable

import preflight.tui.app
from preflight.cli import demo_bundle_path
from preflight.collect.bundle import Bundle, load_bundle
from preflight.results import Finding, Status
from preflight.tui.app import PreflightApp
from preflight.tui.screens.fleet import FleetScreen
from preflight.tui.source import BundleSource


def cloned_bundle(n: int) -> Bundle:
    demo = load_bundle(demo_bundle_path())
    nodes = []
    for i in range(n):
        src = demo.nodes[i % len(demo.nodes)]
        nodes.append(dataclasses.replace(src, name=f"gpu-{i + 1:04d}"))
    return dataclasses.replace(demo, nodes=nodes, label="bench")


def cpu_model() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


class _TimedApp(PreflightApp):
    """The real app, noting when its frames land: the first fleet frame, and the frame after the fleet's reports."""

    CSS_PATH = str(Path(preflight.tui.app.__file__).with_name(PreflightApp.CSS_PATH))  # relative to the app's module

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.marks: dict[str, tuple[float, float, int]] = {}

    def fleet_painted(self) -> None:
        table = self.screen.query_one("#fleet", DataTable)
        self.marks.setdefault("first_paint", (time.perf_counter(), time.process_time(), table.row_count))
        super().fleet_painted()

    def on_fleet_judged(self, message: object) -> None:
        super().on_fleet_judged(message)  # type: ignore[arg-type]
        self.screen.call_after_refresh(lambda: self.marks.setdefault(
            "judged", (time.perf_counter(), time.process_time(), len(self.state.reports))))


async def _painted(app: PreflightApp) -> tuple[float, float]:
    """(wall, CPU) when the current screen has painted what is pending now."""
    done: asyncio.Future[tuple[float, float]] = asyncio.get_running_loop().create_future()
    app.screen.call_after_refresh(lambda: done.done() or done.set_result((time.perf_counter(), time.process_time())))
    return await done


async def measure(n: int, updates: int, distinct: bool = False) -> dict[str, float]:
    bundle = judge_scale.fleet(n, distinct=True) if distinct else cloned_bundle(n)
    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        app = _TimedApp(BundleSource(bundle, "bench"), output_dir=tmp)
        t0 = time.perf_counter()
        c0 = time.process_time()  # CPU time of the whole process (the UI thread and the judging worker)
        async with app.run_test(size=(120, 40)) as pilot:
            for _ in range(600_000):  # bounded: 10 minutes of 1 ms polls
                if "judged" in app.marks and not app.judging and not app.state.pending:
                    break
                await asyncio.sleep(0.001)
            wall, cpu, rows = app.marks["first_paint"]
            if rows != n:
                raise SystemExit(f"the first fleet frame held {rows} rows, not {n}")
            out["first_paint_s"], out["first_paint_cpu_s"] = wall - t0, cpu - c0
            wall, cpu, reports = app.marks["judged"]
            if reports != n:
                raise SystemExit(f"the judged frame showed {reports} reports, not {n}")
            out["judged_s"], out["judged_cpu_s"] = wall - t0, cpu - c0
            await pilot.pause()
            screen = app.screen
            assert isinstance(screen, FleetScreen)
            st = app.state
            name = st.order[n // 2]
            original = st.reports[name]
            broken = dataclasses.replace(original, findings=original.findings + (
                Finding(check="nvlink.links.active", node=name, status=Status.FAIL, subject="GPU0", observed=17,
                        expected=18, msg="bench"),))
            render, total, cells = [], [], 0
            for i in range(updates):
                st.reports[name] = broken if i % 2 == 0 else original
                t = time.perf_counter()
                cells += max(0, screen.update_nodes([name]))
                render.append(time.perf_counter() - t)
                await pilot.pause()
                total.append(time.perf_counter() - t)
            idle = []
            for _ in range(updates):
                t = time.perf_counter()
                await pilot.pause()
                idle.append(time.perf_counter() - t)
            out["idle_pause_ms"] = statistics.median(idle) * 1e3
            out["update_one_node_ms"] = statistics.median(render) * 1e3
            out["update_one_node_with_repaint_ms"] = statistics.median(total) * 1e3
            out["cells_touched_per_update"] = cells / updates
            t = time.perf_counter()
            screen.update_nodes(list(st.order))
            out["noop_pass_all_rows_ms"] = (time.perf_counter() - t) * 1e3
            walls, cpus = [], []
            await pilot.pause()
            for _ in range(4):  # on, off, on, off: the action, until its frame is painted
                t, c = time.perf_counter(), time.process_time()
                screen.action_toggle_failures()
                wall, cpu = await _painted(app)
                walls.append((wall - t) * 1e3)
                cpus.append((cpu - c) * 1e3)
                await pilot.pause()
            out["filter_toggle_ms"] = statistics.median(walls)
            out["filter_toggle_cpu_ms"] = statistics.median(cpus)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", type=int, default=1000)
    ap.add_argument("--updates", type=int, default=50)
    ap.add_argument("--distinct", action="store_true",
                    help="nodes that differ as real ones do (bench/judge_scale.py's fleet), not copies")
    args = ap.parse_args()
    res = asyncio.run(measure(args.nodes, args.updates, args.distinct))
    print(f"machine: {os.cpu_count()} CPUs (nproc), {cpu_model()}; Python {platform.python_version()}; "
          f"load average {os.getloadavg()[0]:.1f}")
    print(f"nodes: {args.nodes} ({'distinct, as real nodes differ' if args.distinct else 'copies of the demo nodes'})")
    print(f"first paint (all rows listed):      {res['first_paint_s']:.2f} s wall, {res['first_paint_cpu_s']:.2f} s CPU")
    print(f"judged (every row filled):          {res['judged_s']:.2f} s wall, {res['judged_cpu_s']:.2f} s CPU   "
          f"(engine.judge of {args.nodes} nodes included)")
    print(f"update one node (changed cells):    {res['update_one_node_ms']:.2f} ms  "
          f"({res['cells_touched_per_update']:.1f} cells touched)")
    print(f"  … including the repaint:          {res['update_one_node_with_repaint_ms']:.2f} ms")
    print(f"  (a Pilot pause with no change:    {res['idle_pause_ms']:.2f} ms)")
    print(f"no-op pass over all rows:           {res['noop_pass_all_rows_ms']:.1f} ms")
    print(f"filter toggle (median of 4):        {res['filter_toggle_ms']:.1f} ms wall, "
          f"{res['filter_toggle_cpu_ms']:.1f} ms CPU")


if __name__ == "__main__":
    main()
