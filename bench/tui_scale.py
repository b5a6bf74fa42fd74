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

from textual.widgets import DataTable

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


async def measure(n: int, updates: int) -> dict[str, float]:
    bundle = cloned_bundle(n)
    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        app = PreflightApp(BundleSource(bundle, "bench"), output_dir=tmp)
        t0 = time.perf_counter()
        c0 = time.process_time()  # CPU time of the whole process (the UI thread and the judging worker)
        async with app.run_test(size=(120, 40)) as pilot:
            while not (isinstance(app.screen, FleetScreen) and app.screen.query_one("#fleet", DataTable).row_count == n):
                await asyncio.sleep(0.001)
            await pilot.pause()  # the first frame with the rows
            out["first_paint_s"] = time.perf_counter() - t0
            out["first_paint_cpu_s"] = time.process_time() - c0
            while app.judging or len(app.state.reports) < n or app.state.pending:
                await asyncio.sleep(0.01)
            await pilot.pause()
            out["judged_s"] = time.perf_counter() - t0
            out["judged_cpu_s"] = time.process_time() - c0
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
            for _ in range(4):  # on, off, on, off
                t, c = time.perf_counter(), time.process_time()
                await pilot.press("f")
                await pilot.pause()
                walls.append((time.perf_counter() - t) * 1e3)
                cpus.append((time.process_time() - c) * 1e3)
            out["filter_toggle_ms"] = statistics.median(walls)
            out["filter_toggle_cpu_ms"] = statistics.median(cpus)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", type=int, default=1000)
    ap.add_argument("--updates", type=int, default=50)
    args = ap.parse_args()
    res = asyncio.run(measure(args.nodes, args.updates))
    print(f"machine: {os.cpu_count()} CPUs (nproc), {cpu_model()}; Python {platform.python_version()}; "
          f"load average {os.getloadavg()[0]:.1f}")
    print(f"nodes: {args.nodes}")
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
