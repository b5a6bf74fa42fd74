"""engine.judge at fleet scale: CPU time per node on the demo recording's nodes, replicated to N.

Two fleets are built from `preflight/data/demo/bundle.json`:
  identical  every node a copy of one of the demo's 4 nodes under a new name (the same raw outputs)
  distinct   the same, but each node's outputs differ as real nodes' of one SKU do (`_perturb_text`): hostname,
             GPU serials and UUIDs, IB GUIDs, PCI bus ids (a bijection, the same in every output of the node),
             timestamps, temperatures, power draw, nccl-tests' pids, host names and measured timings, free memory;
             versions, counts and settings stay. No two nodes print the same text, and every node's verdict is its
             demo source node's (the bench prints how many differ: 0 expected)

Each is judged cold (`engine.judge(bundle)`, no FactsCache handed in: parse + every check), CPU time
(`time.process_time`) median of `--repeat` runs, then once more under cProfile to split the time between
parsing (`build_node_facts`) and the checks. Timing lives here, never in tests.

`--no-share` judges with `share_parses=False` (every node's document parsed, even a copy's).

Usage: python bench/judge_scale.py [--nodes 1000] [--repeat 3] [--fleet identical,distinct] [--top 0] [--profile]
       [--no-share] [--no-profile]
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
_UUID = re.compile(r"\b([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-)([0-9a-f]{12})\b")  # GPU/MIG UUIDs
# PCI bus ids in every spelling the outputs use: dddddddd:bb:dd.f (-q, table), dddd:bb:dd] (nccl-tests), bb:dd.f
# (lspci, topo), `Bus : 0xbb` (-q). The bus byte's low 2 bits are XOR-ed with the node's k: a bijection, the same in
# every output of a node, so whatever matched a GPU by bus id still matches it (and the order of GPUs is kept).
_BUS_ID = re.compile(r"\b((?:[0-9A-Fa-f]{4,8}:)?)([0-9A-Fa-f]{2})(:[0-9A-Fa-f]{2}(?:\.[0-7]|\]))")
_BUS_LINE = re.compile(r"(Bus\s+:\s+0x)([0-9A-Fa-f]{2})\b")
_CLOCK = re.compile(r"\b(\d\d:\d\d:)(\d\d)\b")  # timestamps: the seconds
_TEMP = re.compile(r"((?:GPU|Memory) Current Temp\s+:\s+|\|\s+\S+\s+)(\d\d)(\s?C\b)")  # -q and the table
_WATTS = re.compile(r"(Power Draw\s+:\s+\d+\.\d)(\d)( W)|(\s)(\d+)(W /)")
_PID = re.compile(r"(Pid\s+)(\d+)")
_NCCL_HOST = re.compile(r"( on\s+)(\S+)( device)")
_NCCL_ROW = re.compile(r"^(\s+\d+\s+\d+\s+\w+\s+\w+\s+-?\d+)(.*)$", re.M)  # a result row: vary the measured part
_DECIMAL = re.compile(r"(\d+\.\d)(\d)\b")
_MEMINFO_VARYING = re.compile(r"^((?:MemFree|MemAvailable|Buffers|Cached|Active|Inactive|Dirty|Mapped|Slab)\S*:\s+)(\d+)",
                              re.M)


def _bus(hexbyte: str, k: int) -> str:
    out = f"{int(hexbyte, 16) ^ k:02x}"
    return out.upper() if hexbyte.isupper() else out


def _perturb_text(text: str, i: int, probe: str = "", host: str = "") -> str:
    """What differs between real nodes of one SKU: serials, UUIDs, GUIDs, PCI bus ids, timestamps, temperatures,
    power draw, process ids, hostnames, measured timings, free memory. Versions, counts and settings stay."""
    k = i % 4
    text = _SERIAL.sub(lambda m: str(int(m.group(1)) + i * 17), text)
    text = _GUID.sub(lambda m: f"{m.group(1)}{(int(m.group(2), 16) + i) % 0x10000:04x}", text)
    text = _UUID.sub(lambda m: f"{m.group(1)}{(int(m.group(2), 16) + i * 7919) % (1 << 48):012x}", text)
    if k:
        text = _BUS_ID.sub(lambda m: f"{m.group(1)}{_bus(m.group(2), k)}{m.group(3)}", text)
        text = _BUS_LINE.sub(lambda m: f"{m.group(1)}{_bus(m.group(2), k)}", text)
    text = _CLOCK.sub(lambda m: f"{m.group(1)}{(int(m.group(2)) + i) % 60:02d}", text)
    text = _TEMP.sub(lambda m: f"{m.group(1)}{int(m.group(2)) + i % 3}{m.group(3)}", text)
    text = _WATTS.sub(lambda m: f"{m.group(1)}{(int(m.group(2)) + i) % 10}{m.group(3)}" if m.group(1)
                      else f"{m.group(4)}{int(m.group(5)) + i % 5}{m.group(6)}", text)
    if probe.startswith("nccl"):
        text = _PID.sub(lambda m: f"{m.group(1)}{int(m.group(2)) + i}", text)
        text = _NCCL_HOST.sub(lambda m: f"{m.group(1)}{host}{m.group(3)}", text)
        text = _NCCL_ROW.sub(lambda m: m.group(1) + _DECIMAL.sub(
            lambda d: f"{d.group(1)}{(int(d.group(2)) + i) % 10}", m.group(2)), text)
    if probe == "meminfo":
        text = _MEMINFO_VARYING.sub(lambda m: f"{m.group(1)}{int(m.group(2)) + i * 4}", text)
    return text


def _perturb(obj: Any, i: int, probe: str = "", host: str = "") -> Any:
    if isinstance(obj, str):
        return _perturb_text(obj, i, probe, host)
    if isinstance(obj, dict):
        return {k: _perturb(v, i, probe, host) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_perturb(v, i, probe, host) for v in obj]
    return obj


def _perturb_collector(doc: dict[str, Any], i: int, host: str) -> dict[str, Any]:
    out = dict(doc, hostname=host)
    if isinstance(doc.get("started"), (int, float)):
        out["started"] = doc["started"] + (i % 7) * 0.013  # clocks a few ms apart (well inside the skew check)
    probes = doc.get("probes")
    if isinstance(probes, dict):
        out["probes"] = {pid: _perturb(p, i, pid, host) for pid, p in probes.items()}
    return out


def fleet(n: int, distinct: bool, demo: Bundle | None = None) -> Bundle:
    """The demo's nodes replicated to `n` (names gpu-0001..); `distinct`: every node's outputs differ."""
    demo = demo or load_bundle(DEMO)
    nodes: list[NodeRaw] = []
    for i in range(n):
        src = demo.nodes[i % len(demo.nodes)]
        name = f"gpu-{i + 1:04d}"
        if distinct:
            collector = _perturb_collector(copy.deepcopy(src.collector or {}), i + 1, name)
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


def verdicts_changed(bundle: Bundle, demo: Bundle, report: Any) -> int:
    """How many nodes' findings (check, status, in order) differ from their demo source node's: 0 expected."""
    ref, _ = engine.judge(demo)
    want = {r.name: [(f.check, f.status) for f in r.findings] for r in ref.nodes}
    return sum(1 for i, r in enumerate(report.nodes)
               if [(f.check, f.status) for f in r.findings] != want[demo.nodes[i % len(demo.nodes)].name])


def measure(n: int, distinct: bool, repeat: int, top: int, share: bool = True, profile: bool = True) -> dict[str, Any]:
    demo = load_bundle(DEMO)
    bundle = fleet(n, distinct, demo)
    cpu = [_cpu(lambda: _judge(bundle, share)) for _ in range(repeat)]
    med = statistics.median(cpu)
    res = {"fleet": ("distinct" if distinct else "identical") + ("" if share else " (no shared parses)"), "nodes": n,
           "cpu_s": cpu, "median_s": med, "ms_per_node": med / n * 1000,
           "verdicts_changed": verdicts_changed(bundle, demo, _judge(bundle, share)[0])}
    if profile:
        res.update(profile_split(bundle, top, share))
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nodes", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--fleet", default="identical,distinct")
    ap.add_argument("--top", type=int, default=0, help="print the profile's top N functions by own time")
    ap.add_argument("--no-share", action="store_true", help="judge(share_parses=False): parse every node's document")
    ap.add_argument("--no-profile", action="store_true", help="skip the extra run under cProfile (parse/checks split)")
    ap.add_argument("--profile", action="store_true", help="print the profile's top 40 functions (same as --top 40)")
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args(argv)
    print(f"python {platform.python_version()}, {platform.machine()}, nodes={args.nodes}, repeat={args.repeat}")
    if args.profile and not args.top:
        args.top = 40
    results = []
    for kind in args.fleet.split(","):
        r = measure(args.nodes, kind == "distinct", args.repeat, args.top, share=not args.no_share,
                    profile=not args.no_profile)
        results.append(r)
        runs = ", ".join(f"{c:.2f}" for c in r["cpu_s"])
        split = f"; profile: parse {r['parse_share']:.0%}, checks {r['checks_share']:.0%}" if "parse_share" in r else ""
        print(f"{r['fleet']}: judge {r['median_s']:.3f} s CPU median ({runs}) = {r['ms_per_node']:.2f} ms/node; "
              f"nodes whose verdicts differ from their demo source: {r['verdicts_changed']}{split}")
        if args.top:
            print(r["top"])
    if args.json:
        Path(args.json).write_text(json.dumps([{k: v for k, v in r.items() if k != "top"} for r in results], indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
