"""engine.judge at fleet scale: CPU time per node on the demo recording's nodes, replicated to N.

Two fleets are built from `preflight/data/demo/bundle.json`:
  identical  every node a copy of one of the demo's 4 nodes under a new name (the same raw outputs)
  distinct   the same, but each node's hostname (the collector's `hostname`), every GPU serial number and
             every IB GUID (0x + 16 hex) in its outputs is changed per node, so no two nodes print the same text (what a real fleet looks like)

Each is judged cold (`engine.judge(bundle)`, no FactsCache handed in: parse + every check), CPU time
(`time.process_time`) median of `--repeat` runs, then once more under cProfile to split the time between
parsing (`build_node_facts`) and the checks. Timing lives here, never in tests.

`--no-share` judges with `share_parses=False` (every node's document parsed, even a copy's).

Usage: python bench/judge_scale.py [--nodes 1000] [--repeat 3] [--fleet identical,distinct] [--top 0] [--no-share]
"""

from __future__ import annotations

import argparse
import copy
import cProfile
import dataclasses
import io
import json
import platform
import pstats
import re
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from preflight import engine  # noqa: E402
from preflight.collect.bundle import Bundle, NodeRaw, load_bundle  # noqa: E402

DEMO = ROOT / "preflight" / "data" / "demo" / "bundle.json"
_SERIAL = re.compile(r"\b(1\d{12})\b")  # nvidia-smi serial numbers (13 digits)
_GUID = re.compile(r"\b(0x[0-9a-f]{12})([0-9a-f]{4})\b")  # IB GUIDs: keep the vendor part, vary the tail


def _perturb_text(text: str, i: int) -> str:
    text = _SERIAL.sub(lambda m: str(int(m.group(1)) + i * 17), text)
    return _GUID.sub(lambda m: f"{m.group(1)}{(int(m.group(2), 16) + i) % 0x10000:04x}", text)


def _perturb(obj: Any, i: int) -> Any:
    if isinstance(obj, str):
        return _perturb_text(obj, i)
    if isinstance(obj, dict):
        return {k: _perturb(v, i) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_perturb(v, i) for v in obj]
    return obj


def fleet(n: int, distinct: bool, demo: Bundle | None = None) -> Bundle:
    """The demo's nodes replicated to `n` (names gpu-0001..); `distinct`: every node's outputs differ."""
    demo = demo or load_bundle(DEMO)
    nodes: list[NodeRaw] = []
    for i in range(n):
        src = demo.nodes[i % len(demo.nodes)]
        name = f"gpu-{i + 1:04d}"
        if distinct:
            collector = _perturb(copy.deepcopy(src.collector), i + 1)
            collector["hostname"] = name
            nodes.append(dataclasses.replace(src, name=name, collector=collector))
        else:
            nodes.append(dataclasses.replace(src, name=name))
    return dataclasses.replace(demo, nodes=nodes, label="bench")


def _cpu(fn: Any) -> float:
    t0 = time.process_time()
    fn()
    return time.process_time() - t0


def _judge(bundle: Bundle, share: bool) -> Any:
    return engine.judge(bundle) if share else engine.judge(bundle, share_parses=False)


def profile_split(bundle: Bundle, top: int, share: bool = True) -> dict[str, Any]:
    prof = cProfile.Profile()
    prof.enable()
    _judge(bundle, share)
    prof.disable()
    stats = pstats.Stats(prof)
    total = parse = 0.0
    for (file, _line, func), (_cc, _nc, _tt, ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        if func == "judge" and file.endswith("engine.py"):
            total = ct
        if func == "build_node_facts":
            parse += ct
    out: dict[str, Any] = {"profiled_total_s": total, "parse_share": parse / total if total else 0.0,
                           "checks_share": 1 - parse / total if total else 0.0}
    if top:
        buf = io.StringIO()
        pstats.Stats(prof, stream=buf).sort_stats("tottime").print_stats(top)
        out["top"] = buf.getvalue()
    return out


def measure(n: int, distinct: bool, repeat: int, top: int, share: bool = True) -> dict[str, Any]:
    bundle = fleet(n, distinct)
    cpu = [_cpu(lambda: _judge(bundle, share)) for _ in range(repeat)]
    med = statistics.median(cpu)
    res = {"fleet": ("distinct" if distinct else "identical") + ("" if share else " (no shared parses)"), "nodes": n,
           "cpu_s": cpu, "median_s": med, "ms_per_node": med / n * 1000}
    res.update(profile_split(bundle, top, share))
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nodes", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--fleet", default="identical,distinct")
    ap.add_argument("--top", type=int, default=0, help="print the profile's top N functions by own time")
    ap.add_argument("--no-share", action="store_true", help="judge(share_parses=False): parse every node's document")
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args(argv)
    print(f"python {platform.python_version()}, {platform.machine()}, nodes={args.nodes}, repeat={args.repeat}")
    results = []
    for kind in args.fleet.split(","):
        r = measure(args.nodes, kind == "distinct", args.repeat, args.top, share=not args.no_share)
        results.append(r)
        runs = ", ".join(f"{c:.2f}" for c in r["cpu_s"])
        print(f"{r['fleet']}: judge {r['median_s']:.3f} s CPU median ({runs}) = {r['ms_per_node']:.2f} ms/node; "
              f"profile: parse {r['parse_share']:.0%}, checks {r['checks_share']:.0%}")
        if args.top:
            print(r["top"])
    if args.json:
        Path(args.json).write_text(json.dumps([{k: v for k, v in r.items() if k != "top"} for r in results], indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
