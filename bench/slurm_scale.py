"""The controller's cost per node when one `srun` carries the collector (run --slurm), against a real local Slurm.

For each N (default 4, 8, 16, 32) a `preflight.sim.slurm.SlurmCluster` is started with N slurmd daemons on this
host (Debian's slurm-wlm runs several slurmd on one machine: one `NodeName=simK ... Port=P` each), every node
an `h100-healthy` simulated node (its stand-in tools print recorded outputs). Then, `--repeat` times, a
*separate controller process* (this script with `--controller`) does what `preflight run --slurm` does:
`transport.slurm.collect_slurm` (one srun over the partition, the collector broadcast on stdin, every task's
output split and decoded) and `engine.judge` on the bundle. The controller reports its own CPU from
`resource.getrusage`:

  self      RUSAGE_SELF of the controller: preflight's Python (launching, reading and decoding srun's
            output, parsing, judging). Neither slurmd, slurmstepd nor the collectors (they run under slurmd).
  srun      RUSAGE_CHILDREN of the controller: the srun client (and scontrol), which runs on the controller.

split into collect (srun + decode) and judge. CPU time, not wall time: the machine is shared (2 cores and
other work), and the N collectors run on the same cores as the controller, so wall time says more about
the cores than about preflight. Wall time is printed for reference only. Medians of --repeat.

`--split S` collects the same nodes as S sruns, one per `--shard K/S` nodelist, one after the other: what a
controller pays when it runs the shards itself.

Usage: python bench/slurm_scale.py [--nodes 4,8,16,32] [--repeat 3] [--split 1] [--json FILE]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _cpu(who: int) -> float:
    r = resource.getrusage(who)
    return r.ru_utime + r.ru_stime


def controller(args: argparse.Namespace) -> int:
    """One collection + judge, in this process; prints its own CPU as JSON on stdout."""
    t_self, t_child, t_wall = _cpu(resource.RUSAGE_SELF), _cpu(resource.RUSAGE_CHILDREN), time.monotonic()
    from preflight import engine  # imports (and the checks' registration) count as start-up, not per node
    from preflight.collect.bundle import Bundle
    from preflight.collect.script import build_script, select_probes
    from preflight.sim.fleet import SimFleet
    from preflight.transport.slurm import SlurmOptions, collect_slurm

    s0, c0, w0 = _cpu(resource.RUSAGE_SELF), _cpu(resource.RUSAGE_CHILDREN), time.monotonic()
    script = build_script(select_probes(), ngpus=8, deadline_s=max(10.0, args.timeout - 10))
    opts = SlurmOptions(partition=args.partition, nodes=args.n, time_limit_s=args.timeout,
                        command=tuple(args.command.split("\x1f")), env=(("SLURM_CONF", args.slurm_conf),))
    if args.split > 1:  # --shard K/N's nodelists, one srun after the other, from this one controller
        from preflight.inventory.shard import Shard, members

        names = [f"sim{i}" for i in range(1, args.n + 1)]
        raws = []
        for k in range(1, args.split + 1):
            part = members(names, Shard(k, args.split))
            raws += collect_slurm(script, dataclasses.replace(opts, nodes=len(part), nodelist=",".join(part)))
    else:
        raws = collect_slurm(script, opts)
    s1, c1, w1 = _cpu(resource.RUSAGE_SELF), _cpu(resource.RUSAGE_CHILDREN), time.monotonic()
    over = SimFleet.sandbox_thresholds()  # this host's memlock limit, as the tests state it
    for raw in raws:
        raw.thresholds = {k: dict(v) for k, v in over.items()}
    report, _ = engine.judge(Bundle(nodes=raws))
    s2, w2 = _cpu(resource.RUSAGE_SELF), time.monotonic()
    from collections import Counter

    problems = Counter(f"{f.check} {f.status.value}" for n in report.nodes for f in n.findings
                       if f.status.value in ("fail", "error"))
    print(json.dumps({"n": len(raws), "ok": sum(r.outcome == "ok" for r in raws),
                      "statuses": sorted({n.status.value for n in report.nodes}),
                      "problems": dict(problems.most_common(6)),
                      "startup_self_s": s0 - t_self, "collect_self_s": s1 - s0, "collect_srun_s": c1 - c0,
                      "judge_self_s": s2 - s1, "collect_wall_s": w1 - w0, "judge_wall_s": w2 - w1,
                      "startup_wall_s": w0 - t_wall, "startup_child_s": c0 - t_child}))
    return 0


def measure(n: int, repeat: int, timeout: float, split: int = 1) -> dict[str, Any]:
    from preflight.sim.slurm import SlurmCluster

    with tempfile.TemporaryDirectory(prefix=f"slurm-scale-{n}-") as tmp:
        cluster = SlurmCluster(Path(tmp), [(f"sim{i}", "h100-healthy") for i in range(1, n + 1)])
        t0 = time.monotonic()
        try:
            cluster.start(timeout_s=60 + 2 * n)
            start_s = time.monotonic() - t0
            runs = []
            for i in range(repeat):
                if i:  # every node free again before the next run
                    cluster.wait_idle(list(cluster.nodes), time.monotonic() + 60 + n)
                proc = subprocess.run(
                    [sys.executable, __file__, "--controller", "--n", str(n), "--partition", cluster.partition,
                     "--slurm-conf", str(cluster.conf), "--command", "\x1f".join(cluster.node_command),
                     "--timeout", str(timeout), "--split", str(split)],
                    capture_output=True, text=True, timeout=timeout + 120, env=cluster.env())
                if proc.returncode != 0:
                    raise RuntimeError(f"controller failed at N={n}: {proc.stderr[-2000:]}")
                runs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
                print(f"# N={n} run {i + 1}: {json.dumps(runs[-1])}", file=sys.stderr, flush=True)
        finally:
            cluster.stop()
    med = {k: statistics.median(r[k] for r in runs) for k in runs[0] if k.endswith("_s")}
    return {"n": n, "split": split, "cluster_start_s": start_s, "runs": runs, "median": med, "problems": runs[-1]["problems"],
            "ok": [r["ok"] for r in runs], "statuses": sorted({s for r in runs for s in r["statuses"]})}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", default="4,8,16,32", help="comma-separated cluster sizes (default 4,8,16,32)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--timeout", type=float, default=300.0, help="seconds per collection (default 300)")
    ap.add_argument("--json", metavar="FILE", help="also write every measurement as JSON")
    ap.add_argument("--split", type=int, default=1, metavar="S",
                    help="collect as S sruns of one --shard K/S nodelist each, one after the other (default 1)")
    ap.add_argument("--controller", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--n", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--partition", help=argparse.SUPPRESS)
    ap.add_argument("--slurm-conf", help=argparse.SUPPRESS)
    ap.add_argument("--command", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.controller:
        return controller(args)
    from preflight.sim.slurm import missing_binaries

    if missing_binaries():
        print(f"Slurm/munge missing: {', '.join(missing_binaries())}", file=sys.stderr)
        return 2
    out = subprocess.run(["slurmd", "-V"], capture_output=True, text=True).stdout.strip()
    print(f"# {out}; python {platform.python_version()}; {platform.machine()}; repeat {args.repeat} (medians); "
          f"{args.split} srun(s) per collection")
    print("| N | ok | cluster start | collect wall | controller CPU: collect | judge | total | per node | srun CPU | "
          "srun per node |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    results = []
    for n in [int(x) for x in args.nodes.split(",") if x.strip()]:
        r = measure(n, args.repeat, args.timeout, args.split)
        results.append(r)
        m = r["median"]
        own = m["collect_self_s"] + m["judge_self_s"]
        print(f"| {n} | {min(r['ok'])}/{n} | {r['cluster_start_s']:.1f} s | {m['collect_wall_s']:.1f} s | "
              f"{m['collect_self_s'] * 1000:.0f} ms | {m['judge_self_s'] * 1000:.0f} ms | {own * 1000:.0f} ms | "
              f"{own / n * 1000:.1f} ms | {m['collect_srun_s'] * 1000:.0f} ms | {m['collect_srun_s'] / n * 1000:.1f} ms |",
              flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
