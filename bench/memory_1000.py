"""Benchmark: controller peak memory and CPU for a 1,000-host inventory (issue 7's memory goal).

    python bench/memory_1000.py [--hosts 1000] [--sshd 64] [--forks 32]

1,000 inventory hosts share `--sshd` real simulated sshd daemons (host i uses daemon i % sshd), so
the controller does the full work for 1,000 nodes (connections, collector outputs, parsing,
judging, the JSON report) on a 2-core machine. The run is the real CLI as a child process;
its peak RSS and CPU come from getrusage(RUSAGE_CHILDREN).
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from preflight.sim.fleet import SimFleet


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--hosts", type=int, default=1000)
    ap.add_argument("--sshd", type=int, default=64)
    ap.add_argument("--forks", type=int, default=32)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp, SimFleet(Path(tmp), [(f"d{i:03d}", "h100-healthy") for i in range(args.sshd)]) as fleet:
        ports = [n.port for n in fleet.nodes.values()]
        hosts = {f"h{i:04d}": {"address": "127.0.0.1", "port": ports[i % len(ports)]} for i in range(args.hosts)}
        inv = Path(tmp) / "inv.yaml"
        inv.write_text(yaml.safe_dump({"defaults": {"user": fleet.user, "identity_file": str(fleet.client_key)},
                                       "known_hosts": str(fleet.known_hosts), "thresholds": fleet.sandbox_thresholds(),
                                       "groups": {"sim": {"hosts": hosts}}}))
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.monotonic()
        proc = subprocess.run([sys.executable, "-m", "preflight", "run", "-i", str(inv), "--headless", "-q",
                               "--forks", str(args.forks), "--json", str(Path(tmp) / "r.json")], capture_output=True, text=True)
        wall = time.monotonic() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        ok = proc.stderr.count(": ok (")
        print(f"{args.hosts} hosts on {args.sshd} sshd, forks {args.forks}: exit {proc.returncode}, {ok} ok, wall {wall:.1f} s, "
              f"controller CPU {cpu:.1f} s ({cpu / args.hosts * 1000:.1f} ms/host), peak RSS {after.ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
