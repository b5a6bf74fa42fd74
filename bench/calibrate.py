"""Planner estimates against published measured throughputs (docs/planner-calibration.yaml).

    .venv/bin/python bench/calibrate.py            # table of estimate / measured, before and after
    .venv/bin/python bench/calibrate.py --fit      # also the DECODE_EFFICIENCY that puts the median at 1

"Before" is the plain roofline (DECODE_EFFICIENCY = 1); "after" uses the value in
preflight/plan/estimate.py. Each estimate is the planner's own functions: memory_per_gpu for the
capacity and the KV read, decode_estimates for a decode step (HBM roofline, compute floor, TP
all-reduce, EP all-to-all), offline_throughput for prefill + decode of an ISL/OSL run.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
from pathlib import Path
from typing import Any

import yaml

from preflight.plan import PlanOptions, load_model, memory_per_gpu
from preflight.plan import estimate as est
from preflight.plan.models import ModelSpec, spec_from_config
from preflight.reference import gpu_specs

ROOT = Path(__file__).resolve().parent.parent
TABLE = ROOT / "docs" / "planner-calibration.yaml"
GIB = 1024**3
DEFAULT_MAX_BATCH = 2048


def _model(name: str, inline: dict[str, Any]) -> ModelSpec:
    if name in inline:
        return spec_from_config(inline[name], model_id=name, source=f"planner-calibration.yaml {name}")
    return load_model(name)


def estimate_row(row: dict[str, Any], inline: dict[str, Any], fabric: dict[str, Any]) -> dict[str, Any]:
    """The planner's offline output tok/s for one published setup, with the batch it assumed."""
    m = _model(str(row["model"]), inline)
    spec = next(s for s in gpu_specs() if s["id"] == row["gpu"])
    tp, pp, dp, ep = (int(row.get(k, 1)) for k in ("tp", "pp", "dp", "ep"))
    isl, osl = int(row["isl"]), int(row["osl"])
    mem_bytes = float(spec["memory_gb"]) * GIB
    w, kv = str(row.get("weights", "bf16")), str(row.get("kv", "bf16"))
    if row.get("concurrency", "max") == "max":
        cap = memory_per_gpu(m, tp=tp, pp=pp, dp=dp, ep=ep, gpu_memory_bytes=mem_bytes,
                             opts=PlanOptions(weight_dtype=w, kv_dtype=kv, context=isl + osl, seqs=dp))
        b = max(1, min(cap.max_seqs // dp, int(row.get("max_batch", DEFAULT_MAX_BATCH))))
    else:
        b = max(1, math.ceil(int(row["concurrency"]) / dp))
    # KV read at the mean length a sequence has while it decodes: ISL + OSL/2
    mem = memory_per_gpu(m, tp=tp, pp=pp, dp=dp, ep=ep, gpu_memory_bytes=mem_bytes,
                         opts=PlanOptions(weight_dtype=w, kv_dtype=kv, context=isl + osl // 2, seqs=b * dp))
    tflops, tsrc = est.peak_tflops(spec, w)
    assert tflops, f"{row['id']}: {tsrc}"
    hbm = float(spec["hbm_bw_tbps"]) * 1000
    ests = est.decode_estimates(
        m, mem, tp=tp, pp=pp, dp=dp, seqs=b * dp, hbm_gbps=hbm, hbm_source=f"gpus.yaml {spec['id']}",
        busbw_gbps=float(fabric["busbw_gbps"]), busbw_source="assumed", latency_us=float(fabric["latency_us"]),
        p2p_gbps=float(fabric["busbw_gbps"]), p2p_source="assumed", ep=ep,
        a2a_gbps=float(spec.get("nvlink_bw_gbps_unidir") or 0) or None, a2a_source="gpus.yaml nvlink",
        tflops=tflops, tflops_source=tsrc,
    )
    per_seq = next(e.value for e in ests if e.name == "decode_tokens_per_s_per_seq")
    assert per_seq
    off = est.offline_throughput(m, tp=tp, pp=pp, dp=dp, seqs_per_replica=b, prompt_tokens=isl, output_tokens=osl,
                                 decode_step_s=1.0 / per_seq, tflops=tflops, busbw_gbps=float(fabric["busbw_gbps"]))
    assert off.value
    return {"batch": b * dp, "estimate": off.value, "ratio": off.value / float(row["measured_tok_s"])}


def run(efficiency: float, data: dict[str, Any]) -> list[dict[str, Any]]:
    saved = est.DECODE_EFFICIENCY
    est.DECODE_EFFICIENCY = efficiency
    try:
        return [estimate_row(r, data.get("models") or {}, data["fabric"]) for r in data["rows"]]
    finally:
        est.DECODE_EFFICIENCY = saved


def summary(results: list[dict[str, Any]]) -> tuple[float, float]:
    """Median ratio and the worst one (farthest from 1 on a log scale)."""
    ratios = [r["ratio"] for r in results]
    return statistics.median(ratios), max(ratios, key=lambda x: abs(math.log(x)))


def fit(data: dict[str, Any]) -> float:
    """The DECODE_EFFICIENCY in (0.05, 1] whose median ratio is 1 (bisection: the ratio falls as it does)."""
    lo, hi = 0.05, 1.0
    if summary(run(hi, data))[0] <= 1.0:
        return hi
    for _ in range(40):
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if summary(run(mid, data))[0] > 1.0 else (mid, hi)
    return round((lo + hi) / 2, 3)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--table", type=Path, default=TABLE)
    ap.add_argument("--fit", action="store_true", help="print the DECODE_EFFICIENCY that puts the median ratio at 1")
    args = ap.parse_args(argv)
    data = yaml.safe_load(args.table.read_text())
    before, after = run(1.0, data), run(est.DECODE_EFFICIENCY, data)
    print(f"{'row':32} {'engine':14} {'batch':>6} {'measured':>9} {'est@1.0':>9} {'ratio':>6} "
          f"{'est@' + format(est.DECODE_EFFICIENCY, 'g'):>9} {'ratio':>6}")
    for r, b, a in zip(data["rows"], before, after, strict=True):
        print(f"{r['id']:32} {str(r['engine']).split()[0]:14} {a['batch']:6d} {float(r['measured_tok_s']):9,.0f} "
              f"{b['estimate']:9,.0f} {b['ratio']:6.2f} {a['estimate']:9,.0f} {a['ratio']:6.2f}")
    for label, res in (("before (roofline, efficiency 1.0)", before), (f"after (efficiency {est.DECODE_EFFICIENCY:g})", after)):
        med, worst = summary(res)
        print(f"{label}: {len(res)} rows, median estimate/measured {med:.2f}, worst {worst:.2f}")
    if args.fit:
        print(f"fitted DECODE_EFFICIENCY (median ratio 1): {fit(data)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
