"""Benchmark: `plan()` over every layout for a 1,000-node measured fleet (issue 14's 50 ms goal).

    python bench/plan_scale.py [--nodes 1000] [--repeat 5] [--model deepseek-v3 ...]

The fleet is the demo recording's healthy nodes (gpu-01, gpu-02: 8x H100 80GB, measured NVLink
domain, busbw and 2 x 400 Gb/s IB) replicated to --nodes, built by the same judged_fleet.fleet_shape
the CLI uses. Each timing is one cold `plan()` (fresh Pool, no cache carried between repeats);
the best and the median of --repeat are printed, with the layouts judged.
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import replace

from preflight.cli.common import demo_bundle_path
from preflight.collect.bundle import load_bundle
from preflight.engine import judge
from preflight.plan import PlanOptions, load_model, plan
from preflight.plan.judged_fleet import fleet_shape
from preflight.plan.shapes import FleetShape


def fleet(nodes: int) -> FleetShape:
    report, facts = judge(load_bundle(demo_bundle_path()))
    demo = fleet_shape(report, facts, source="demo")
    healthy = demo.nodes
    return replace(demo, nodes=tuple(replace(healthy[i % len(healthy)], name=f"node-{i:04d}") for i in range(nodes)))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--model", action="append", help="default: llama-3.1-70b, llama-3.1-405b, deepseek-v3")
    ap.add_argument("--seqs-given", action="store_true", help="rank throughput at --seqs 16 (skips the at-capacity pass)")
    args = ap.parse_args()
    shape = fleet(args.nodes)
    opts = PlanOptions(seqs_given=args.seqs_given)
    print(f"{args.nodes} nodes, {shape.total_gpus} GPUs; seqs_given={args.seqs_given}")
    for name in args.model or ["llama-3.1-70b", "llama-3.1-405b", "deepseek-v3"]:
        model = load_model(name)
        times, cpu = [], []
        for _ in range(args.repeat):
            t, c = time.perf_counter(), time.process_time()
            p = plan(shape, model, opts)
            times.append((time.perf_counter() - t) * 1e3)
            cpu.append((time.process_time() - c) * 1e3)
        print(f"{name:16} {len(p.candidates):5} layouts  best {min(times):7.1f} ms  median {statistics.median(times):7.1f} ms"
              f"  CPU best {min(cpu):6.1f} ms  safe {len(p.recommend_throughput)}")


if __name__ == "__main__":
    main()
