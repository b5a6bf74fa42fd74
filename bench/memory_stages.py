"""Benchmark: what a node costs in controller memory at each stage of a run (tracemalloc, no SSH).

    python bench/memory_stages.py [--nodes 300] [--fleet distinct|identical]

The demo recording's nodes replicated to `--nodes` (bench/judge_scale.py's fleets: `identical` copies, or
`distinct`, each node's hostname, GPU serials and IB GUIDs changed), then, as `preflight run` does: each
node parsed into the session's facts cache (preflight.session.RunFacts), its raw output let go
(`NodeRaw.drop_collector`), the fleet judged, the JSON report streamed to /dev/null (`report_dict(lazy=True)`,
as `preflight run --json` writes it: its peak while written); then the whole report dict is built, for
comparison. Prints the memory still held after each stage (tracemalloc's current size after a full
collection, per node) and the largest holders by file. This is what decides the peak RSS of a 10,000-host
run (bench/memory_1000.py --hosts 10000).
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from judge_scale import fleet

from preflight.engine import judge
from preflight.report.json_report import report_dict, write
from preflight.session import RunFacts


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", type=int, default=300)
    ap.add_argument("--fleet", choices=("distinct", "identical"), default="distinct")
    args = ap.parse_args()
    n = args.nodes
    tracemalloc.start()

    def held() -> float:
        gc.collect()
        return tracemalloc.get_traced_memory()[0] / 2**10

    bundle = fleet(n, args.fleet == "distinct")
    m1 = held()
    cache = RunFacts()
    for raw in bundle.nodes:
        cache.add(raw)
    m2 = held()
    for raw in bundle.nodes:
        raw.drop_collector()
    m3 = held()
    report, _facts = judge(bundle, cache=cache)
    m4 = held()
    tracemalloc.reset_peak()
    with open(os.devnull, "w") as fh:  # what `preflight run --json` does: nodes made as they are written
        write(report_dict(report, source={"kind": "live"}, lazy=True), fh)
    streamed_peak = tracemalloc.get_traced_memory()[1] / 2**10
    doc = report_dict(report, source={"kind": "live"})  # the whole dict, as before (the TUI's export, tests)
    m5 = held()
    print(f"{n} {args.fleet} nodes, KiB per node: raw documents {m1 / n:.0f}, parsed facts +{(m2 - m1) / n:.0f}, "
          f"raw let go -{(m2 - m3) / n:.0f}, judged (findings) +{(m4 - m3) / n:.0f}; JSON report streamed: peak "
          f"+{(streamed_peak - m4) / n:.1f} while written; the whole report dict +{(m5 - m4) / n:.0f} "
          f"({len(doc['nodes'])} nodes)")
    print(f"held at the end of a run (streamed report): {m4 / n:.0f} KiB/node; with the whole dict {m5 / n:.0f}")
    for stat in tracemalloc.take_snapshot().statistics("filename")[:8]:
        print(f"  {stat.size / 2**20:7.1f} MiB  {stat.traceback[0].filename}")


if __name__ == "__main__":
    main()
