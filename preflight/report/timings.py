"""Where a run spent its time on the nodes: each probe's duration across the fleet (`--timings`)."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any

from rich.console import Console, JustifyMethod
from rich.markup import escape
from rich.table import Table


@dataclass(frozen=True)
class ProbeTiming:
    probe: str
    nodes: int
    median_s: float
    max_s: float
    slowest_node: str
    timeouts: int


def probe_timings(bundle: Any) -> list[ProbeTiming]:
    """Slowest first (by the worst node), from the per-probe `duration_s` the collector records."""
    per: dict[str, list[tuple[float, str]]] = {}
    timeouts: dict[str, int] = {}
    for raw in bundle.nodes:
        for pid, res in ((raw.collector or {}).get("probes") or {}).items():
            if not isinstance(res, dict):
                continue
            if res.get("error") == "timeout":
                timeouts[pid] = timeouts.get(pid, 0) + 1
            if isinstance(res.get("duration_s"), (int, float)):
                per.setdefault(pid, []).append((float(res["duration_s"]), raw.name))
    out = [ProbeTiming(pid, len(v), statistics.median(d for d, _ in v), max(v)[0], max(v)[1], timeouts.get(pid, 0))
           for pid, v in per.items()]
    return sorted(out, key=lambda t: (-t.max_s, t.probe))


def render(bundle: Any, console: Console, *, limit: int = 12) -> None:
    rows = probe_timings(bundle)
    t = Table(title="slowest probes on the nodes (the collector runs them 4 at a time)", title_justify="left")
    columns: tuple[tuple[str, JustifyMethod], ...] = (
        ("probe", "left"), ("nodes", "right"), ("median s", "right"), ("max s", "right"), ("slowest node", "left"),
        ("timeouts", "right"))  # "left" is add_column's default
    for col, justify in columns:
        t.add_column(col, justify=justify)
    for r in rows[:limit]:
        t.add_row(r.probe, str(r.nodes), f"{r.median_s:.2f}", f"{r.max_s:.2f}", escape(r.slowest_node), str(r.timeouts or ""))
    console.print(t)
    walls = sorted(((raw.duration_s or 0.0), raw.name) for raw in bundle.nodes)
    if walls:
        console.print(f"[dim]per node, connect to last byte: median {statistics.median(w for w, _ in walls):.2f} s, "
                      f"slowest {escape(walls[-1][1])} {walls[-1][0]:.2f} s[/]")
