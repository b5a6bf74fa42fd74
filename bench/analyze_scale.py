"""Benchmark: `preflight.hang.verdict.analyze` on GENERATED logs of 1,024 ranks (128 nodes x 8 GPUs).

    python bench/analyze_scale.py [--nodes 128] [--gpus 8] [--channels 16] [--scenario xid] [--repeat 3]

Writes one scenario (per node: an NCCL_DEBUG=INFO + watchdog job log, and dmesg for 'xid') to a temporary
directory, then times analyze() end to end (reading, sniffing, parsing, joining, ranking). Also runs the
half-size input to show the time grows linearly. Prints seconds; the numbers go to docs/ by hand.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import tempfile
import time
from pathlib import Path

from preflight.hang.scenarios import SCENARIOS, build
from preflight.hang.verdict import analyze


def run(nodes: int, gpus: int, channels: int, scenario: str, repeat: int) -> tuple[float, int, int, str]:
    s = build(scenario, nodes=nodes, gpus=gpus, channels=channels)
    with tempfile.TemporaryDirectory(prefix="preflight-hang-bench-") as tmp:
        paths = s.write(Path(tmp))
        size = sum(p.stat().st_size for p in paths)
        lines = sum(t.count("\n") for t in s.files.values())
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            v = analyze([Path(tmp)])
            times.append(time.perf_counter() - t0)
        top = v.culprit
        assert top is not None and top.node == s.culprit_node, f"wrong culprit: {top}"
        return statistics.median(times), lines, size, top.title


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nodes", type=int, default=128)
    ap.add_argument("--gpus", type=int, default=8)
    ap.add_argument("--channels", type=int, default=16, help="channel lines per rank (log volume)")
    ap.add_argument("--scenario", choices=SCENARIOS, default="xid")
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    print(f"# {platform.processor() or platform.machine()}, Python {platform.python_version()}, scenario {a.scenario}")
    for nodes in (max(1, a.nodes // 2), a.nodes):
        sec, lines, size, title = run(nodes, a.gpus, a.channels, a.scenario, a.repeat)
        print(f"{nodes * a.gpus:5d} ranks  {nodes:4d} nodes  {lines:8d} lines  {size / 1e6:6.1f} MB  "
              f"analyze {sec:6.2f} s (median of {a.repeat})")
    print(f"verdict: {title}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
