"""Benchmark: wall time of each `--level` on a simulated fleet (real sshd nodes, active-test stand-ins).

    python bench/levels.py [N] [--repeat 2]

N nodes of profile h100-active (real DCGM/nvbandwidth/all-reduce recordings, each stand-in pausing a
scaled-down duration: seconds, where a real node takes minutes) run `quick`, `standard` and `deep`
through the real pipeline (session, SSH fan-out, collector with its budget gate, parse, judge). The
numbers measure preflight's own overhead per level on top of the tools' time; the tools' real
durations on hardware are in docs/levels.md. Results go to docs/benchmarks.md by hand.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import tempfile
import time
from pathlib import Path

from preflight.engine import judge
from preflight.session import LiveSession
from preflight.session.request import RunArgs, live_request
from preflight.sim.fleet import SimFleet

ACCEPT = {"accept": {"ib_loopback": "no published NDR 400 loopback recording to replay"}}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("n", type=int, nargs="?", default=4)
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="preflight-bench-levels-") as tmp:
        with SimFleet(Path(tmp), [(f"n{i:02d}", "h100-active") for i in range(args.n)]) as fleet:
            inv = fleet.write_inventory(Path(tmp) / "inv.yaml", expectations=ACCEPT,
                                        thresholds=fleet.sandbox_thresholds())
            print(f"# {args.n} nodes (h100-active), {platform.node()}, {platform.processor() or platform.machine()}")
            for level in ("quick", "standard", "deep"):
                walls, verdicts = [], set()
                for _ in range(args.repeat):
                    session = LiveSession(live_request(RunArgs(inventory=str(inv), level=level)))
                    t0 = time.monotonic()
                    bundle = session.collect()
                    report, _ = judge(bundle, cache=session.facts)
                    walls.append(time.monotonic() - t0)
                    verdicts |= {n.status.value for n in report.nodes}
                print(f"{level:9s} wall median {statistics.median(walls):6.2f} s  min {min(walls):6.2f} s  "
                      f"verdicts {sorted(verdicts)}")


if __name__ == "__main__":
    main()
