"""Benchmark: the cost of a second sweep over the same nodes on open SSH connections (ConnectionPool).

    python bench/sweep_reuse.py [--nodes 32] [--sweeps 3] [--forks 32]

Starts a simulated fleet (real sshd per node), runs the full collector over it `--sweeps` times
sharing one ConnectionPool, and prints each sweep's wall time and the ratio to the first.
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
from pathlib import Path

from preflight.inventory import load_inventory
from preflight.session import collect
from preflight.sim.fleet import SimFleet
from preflight.transport.fanout import ConnectionPool, FanoutOptions
from preflight.transport.ssh import SshOptions


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", type=int, default=32)
    ap.add_argument("--sweeps", type=int, default=3)
    ap.add_argument("--forks", type=int, default=32)
    ap.add_argument("--hang", action="store_true", help="the `preflight hang` probe set (what its --sweeps repeat)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp, SimFleet(Path(tmp), [(f"n{i:03d}", "h100-healthy") for i in range(args.nodes)]) as fleet:
        inv = load_inventory(fleet.write_inventory(Path(tmp) / "inv.yaml"))
        opts = FanoutOptions(forks=args.forks, ssh=SshOptions(known_hosts=inv.known_hosts, use_default_known_hosts=False))
        with ConnectionPool() as pool:
            opts = dataclasses.replace(opts, pool=pool)
            times = []
            cpus = []
            for i in range(args.sweeps):
                t0 = time.monotonic()
                c0 = time.process_time()
                if args.hang:
                    from preflight.collect.probes import HANG_BASE, HANG_PROBES

                    bundle = collect(list(inv.nodes), opts, include_optional=HANG_PROBES, only=HANG_BASE + HANG_PROBES,
                                     job={"pattern": "train.py", "ib_interval_s": 0.0})
                else:
                    bundle = collect(list(inv.nodes), opts)
                times.append(time.monotonic() - t0)
                cpus.append(time.process_time() - c0)
                ok = sum(1 for n in bundle.nodes if n.outcome == "ok")
                print(f"sweep {i + 1}: wall {times[-1]:.2f} s, controller CPU {cpus[-1]:.2f} s, {ok}/{args.nodes} ok, "
                      f"opened {pool.opened}, reused {pool.reused}"
                      + (f"; wall {times[-1] / times[0]:.0%} and controller CPU {cpus[-1] / cpus[0]:.0%} of the first" if i else ""))


if __name__ == "__main__":
    main()
