"""The run history at scale: N nodes x R runs written through the real writer, then the queries timed.

Synthetic rows (not judged bundles): per run every node gets its verdict row, three key values (busbw_gbps,
nvlink_active, ib_active) and a row per non-pass check: 3 skips everywhere, plus 1-2 failing checks on ~3% of
nodes, a fixed 1% of nodes failing most runs (the repeat offenders) and a hang verdict every 50 runs. What
it measures is preflight's own cost: `history.write` per run (one transaction), `node_trend` (what
`preflight history NODE` reads) and `repeat_offenders`.

    .venv/bin/python bench/history_scale.py [--nodes 1000] [--runs 1000] [--path FILE]
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from pathlib import Path

from preflight.history import connect, node_trend, repeat_offenders, write
from preflight.history.record import RunRows

SKIPS = ("gpu.dcgm.diag", "ib.loopback_bw", "pcie.copy_bandwidth")
FAILS = ("gpu.ecc.uncorrectable", "nvlink.links.active", "ib.port.state", "versions.driver.consistent")


def synthetic_run(i: int, names: list[str], offenders: set[str], rng: random.Random) -> RunRows:
    rows = RunRows(run={"at": 1.7e9 + i * 3600, "kind": "run", "source": "bench.yaml", "label": None,
                        "tool_version": "bench", "exit_code": 2, "checks": "[]"})
    for name in names:
        failing = (name in offenders and rng.random() < 0.8) or rng.random() < 0.03
        status = "fail" if failing else "pass"
        rows.nodes.append((name, status, "ok", f"{FAILS[0]} GPU3: 2 uncorrectable" if failing else "all passed"))
        rows.checks.extend((name, c, "skip", None, None, "does not apply") for c in SKIPS)
        if failing:
            for c in rng.sample(FAILS, rng.choice((1, 2))):
                rows.checks.append((name, c, "fail", "GPU3", '"2"', f"{c}: synthetic failure"))
        rows.metrics.append((name, "busbw_gbps", 470.0 + rng.gauss(0, 5) - (60 if failing else 0), None))
        rows.metrics.append((name, "nvlink_active", 144.0 - (2 if failing and rng.random() < 0.5 else 0), None))
        rows.metrics.append((name, "ib_active", 8.0 - (1 if failing and rng.random() < 0.3 else 0), None))
    return rows


def _hang(i: int, offenders: list[str]) -> RunRows:
    return RunRows(run={"at": 1.7e9 + i * 3600 + 1, "kind": "hang", "source": "bench", "label": "hang",
                        "tool_version": "bench", "exit_code": 0, "checks": "[]"},
                   hang=[(offenders[i % len(offenders)], "rank 3 stuck in ncclAllReduce", "fr_stuck", 0.9)])


def _timed(fn, repeat: int = 5) -> tuple[float, object]:  # type: ignore[no-untyped-def]
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=1000)
    ap.add_argument("--path", help="history file (default: a temporary one)")
    args = ap.parse_args()
    path = Path(args.path or tempfile.mkdtemp(prefix="history-bench-")) / "history.sqlite" if not args.path \
        else Path(args.path)
    rng = random.Random(15)
    names = [f"gpu-{i:04d}" for i in range(args.nodes)]
    offenders = sorted(rng.sample(names, max(1, args.nodes // 100)))
    conn = connect(path)
    insert: list[float] = []
    t_all = time.perf_counter()
    for i in range(args.runs):
        rows = synthetic_run(i, names, set(offenders), rng)
        t0 = time.perf_counter()
        write(conn, rows)
        insert.append(time.perf_counter() - t0)
        if i % 50 == 49:
            write(conn, _hang(i, offenders))
    total = time.perf_counter() - t_all
    counts = {t: conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
              for t in ("node_runs", "check_results", "metrics", "hang_nodes")}
    size = path.stat().st_size + (Path(str(path) + "-wal").stat().st_size if Path(str(path) + "-wal").exists() else 0)
    trend_s, trend = _timed(lambda: node_trend(conn, offenders[0], 30))
    healthy = next(n for n in names if n not in offenders)
    trend_ok_s, _ = _timed(lambda: node_trend(conn, healthy, 30))
    rep_s, found = _timed(lambda: repeat_offenders(conn, 3, 5), repeat=3)
    rep_wide_s, _ = _timed(lambda: repeat_offenders(conn, 10, 20), repeat=3)
    print(f"{args.nodes} nodes x {args.runs} runs (synthetic rows), {path}")
    print(f"rows: {', '.join(f'{k} {v:,}' for k, v in counts.items())}; file {size / 2**20:.0f} MiB")
    print(f"insert per run ({args.nodes} nodes): median {statistics.median(insert) * 1000:.1f} ms, "
          f"p95 {sorted(insert)[int(len(insert) * 0.95)] * 1000:.1f} ms, max {max(insert) * 1000:.1f} ms "
          f"(total with row generation {total:.1f} s)")
    print(f"history NODE (node_trend, last 30 runs): offender {trend_s * 1000:.1f} ms "
          f"({len(trend.findings)} findings), healthy node {trend_ok_s * 1000:.1f} ms")  # type: ignore[attr-defined]
    print(f"repeat offenders k=3 n=5: {rep_s * 1000:.0f} ms ({len(found)} nodes); k=10 n=20: "  # type: ignore[arg-type]
          f"{rep_wide_s * 1000:.0f} ms")


if __name__ == "__main__":
    main()
