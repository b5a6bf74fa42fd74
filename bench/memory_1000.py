"""Benchmark: controller peak memory and CPU for a large inventory (issue 7's 1,000 hosts, issue 18's 10,000).

    python bench/memory_1000.py [--hosts 1000] [--sshd 64] [--forks 32] [--save] [--timeout 3600]
    python bench/memory_1000.py --hosts 10000            # issue 18: peak RSS <= 1 GiB, CPU <= 12 ms/host

`--hosts` inventory hosts share `--sshd` real simulated sshd daemons (host i uses daemon i % sshd), so
the controller does the full work for every host (connections, collector outputs, parsing, judging,
the JSON report) on a 2-core machine. The run is the real CLI (`preflight run --headless -q --json`)
as a child process; its peak RSS (ru_maxrss) and CPU (user+sys) come from os.wait4, so the sshd
daemons and the collectors on the simulated nodes are not counted. `--save` adds `--save DIR` (the
bundle streamed to disk node by node) and reports the bundle's size.

CPU time, not wall time, is the number to read on a shared machine: wall time includes the simulated
nodes' own work (~180 ms CPU per host) and whatever else runs on the cores.
"""

from __future__ import annotations

import argparse
import os
import resource
import signal
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
    ap.add_argument("--save", action="store_true", help="also --save the bundle (streamed to disk)")
    ap.add_argument("--keep-raw", action="store_true",
                    help="add --timings, which keeps every node's raw output to the end (what a run held before)")
    ap.add_argument("--timeout", type=float, default=3600.0, help="stop the run after this many seconds")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp, SimFleet(Path(tmp), [(f"d{i:03d}", "h100-healthy") for i in range(args.sshd)]) as fleet:
        ports = [n.port for n in fleet.nodes.values()]
        hosts = {f"h{i:05d}": {"address": "127.0.0.1", "port": ports[i % len(ports)]} for i in range(args.hosts)}
        inv = Path(tmp) / "inv.yaml"
        inv.write_text(yaml.safe_dump({"defaults": {"user": fleet.user, "identity_file": str(fleet.client_key)},
                                       "known_hosts": str(fleet.known_hosts), "thresholds": fleet.sandbox_thresholds(),
                                       "groups": {"sim": {"hosts": hosts}}}))
        argv = [sys.executable, "-m", "preflight", "run", "-i", str(inv), "--headless", "-q",
                "--forks", str(args.forks), "--json", str(Path(tmp) / "r.json")]
        if args.save:
            argv += ["--save", str(Path(tmp) / "bundle")]
        if args.keep_raw:
            argv += ["--timings"]
        t0 = time.monotonic()
        with open(Path(tmp) / "stderr", "w") as err:
            proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=err, start_new_session=True)
        try:
            _, status, ru = _wait(proc, args.timeout)
        finally:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except OSError:
                pass
        wall = time.monotonic() - t0
        cpu = ru.ru_utime + ru.ru_stime
        text = (Path(tmp) / "stderr").read_text(errors="replace")
        ok = text.count(": ok (")
        saved = ""
        if args.save and (Path(tmp) / "bundle" / "bundle.json").exists():
            saved = f", bundle {(Path(tmp) / 'bundle' / 'bundle.json').stat().st_size / 2**20:.0f} MiB"
        flags = (" --save" if args.save else "") + (" --timings (raw kept)" if args.keep_raw else "")
        print(f"{args.hosts} hosts on {args.sshd} sshd, forks {args.forks}{flags}: "
              f"exit {os.waitstatus_to_exitcode(status)}, {ok} ok, wall {wall:.1f} s, controller CPU {cpu:.1f} s "
              f"({cpu / args.hosts * 1000:.1f} ms/host; user {ru.ru_utime:.1f} s, sys {ru.ru_stime:.1f} s), "
              f"peak RSS {ru.ru_maxrss / 1024:.0f} MiB{saved}", flush=True)


def _wait(proc: subprocess.Popen[bytes], timeout: float) -> tuple[int, int, resource.struct_rusage]:
    """os.wait4 with a deadline: the run's process group is killed when it passes (its rusage still comes back)."""
    deadline = time.monotonic() + timeout
    while True:
        pid, status, ru = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            return pid, status, ru
        if time.monotonic() > deadline:
            print(f"timeout after {timeout:.0f} s: stopping the run", file=sys.stderr, flush=True)
            os.killpg(proc.pid, signal.SIGKILL)
            return os.wait4(proc.pid, 0)
        time.sleep(0.5)


if __name__ == "__main__":
    main()
