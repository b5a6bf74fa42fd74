"""Benchmark: wall time of a live `preflight run` against N simulated nodes (real sshd each).

    python bench/fleet_walltime.py 8 32 [--forks 32] [--repeat 3]

Starts N OpenSSH daemons on 127.0.0.1 serving the h100-healthy profile, runs the collection
through the real pipeline (SSH factory, bounded fan-out, collector, parse, checks) and prints
per-run wall time. Numbers go to docs/benchmarks.md by hand, with the machine they ran on.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

from preflight.engine import judge
from preflight.inventory import load_inventory
from preflight.session import collect
from preflight.sim.fleet import SimFleet
from preflight.transport.fanout import FanoutOptions
from preflight.transport.ssh import SshOptions


def bench(n: int, forks: int, repeat: int) -> list[float]:
    with tempfile.TemporaryDirectory(prefix="preflight-bench-") as tmp:
        fleet = SimFleet(Path(tmp), [(f"node-{i:03d}", "h100-healthy") for i in range(1, n + 1)])
        with fleet:
            inv = load_inventory(fleet.write_inventory(Path(tmp) / "inv.yaml", thresholds=fleet.sandbox_thresholds()))
            nodes = [dataclasses.replace(x, connect_timeout_s=10.0, command_timeout_s=60.0) for x in inv.nodes]
            opts = FanoutOptions(forks=forks, ssh=SshOptions(known_hosts=inv.known_hosts, use_default_known_hosts=False))
            times = []
            for _ in range(repeat):
                t0 = time.monotonic()
                bundle = collect(nodes, opts)
                report, _ = judge(bundle)
                times.append(time.monotonic() - t0)
                bad = [x.name for x in report.nodes if x.outcome != "ok"]
                assert not bad, f"nodes failed during the benchmark: {bad}"
            return times


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("sizes", nargs="+", type=int)
    ap.add_argument("--forks", type=int, default=32)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    print(f"# {platform.node()} {platform.machine()} cpus={os.cpu_count()} python={platform.python_version()} forks={args.forks}")
    for n in args.sizes:
        times = bench(n, args.forks, args.repeat)
        print(f"nodes={n:4d} runs={len(times)} median={statistics.median(times):.2f}s "
              f"min={min(times):.2f}s max={max(times):.2f}s")


if __name__ == "__main__":
    main()
