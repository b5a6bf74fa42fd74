"""The `--model` group (plan, and run / replay / demo with --model): flags -> PlanOptions, model, measured busbw."""

from __future__ import annotations

import argparse
from typing import Any

from preflight.plan.dtypes import KV_DTYPES, WEIGHT_DTYPES
from preflight.plan.shapes import PlanOptions

OBJECTIVES = ("latency", "throughput", "capacity")
DEFAULT_SEQS = PlanOptions.seqs


def add_plan_args(p: argparse.ArgumentParser, *, required: bool) -> None:
    g = p.add_argument_group("parallelism plan" + ("" if required else " (with --model)"))
    g.add_argument("--model", required=required,
                   help="a model of the built-in catalog (e.g. llama-3.1-70b, deepseek-v3) or a Hugging Face config.json path")
    g.add_argument("--weights", choices=WEIGHT_DTYPES, default="bf16", help="weight precision (default bf16)")
    g.add_argument("--kv-dtype", choices=KV_DTYPES, default="bf16", help="KV cache precision (default bf16)")
    g.add_argument("--context", type=int, default=8192, help="max model length every sequence is budgeted at (default 8192)")
    g.add_argument("--seqs", type=int, default=None,
                   help="sequences in flight across the deployment (default 16 for memory; throughput then ranks "
                        "each layout at its own capacity)")
    g.add_argument("--gpu-memory-utilization", type=float, default=0.9,
                   help="fraction of GPU memory the engine may use (vLLM's default 0.9)")
    g.add_argument("--multinode-result", metavar="FILE",
                   help="the JSON `preflight nccl-multinode --json` wrote: its measured inter-node busbw feeds the plan")
    g.add_argument("--objective", choices=OBJECTIVES,
                   help="rank for latency (decode tok/s per sequence), throughput (aggregate tok/s) or capacity "
                        "(full-context sequences); default: show latency and throughput")
    if required:  # `plan` only: fleets that were not collected, and what-ifs of the one that was
        g.add_argument("--fleet", action="append", metavar="NxG:GPU[,ib=NxGBITS][,nvl=GPUS]",
                       help="plan on a described fleet, e.g. 2x8:h100-sxm,ib=8x400 (GPU ids from gpus.yaml); "
                            "repeat for a mixed fleet")
        g.add_argument("--without", metavar="NODE[,NODE]", help="what-if: the measured fleet without these nodes")
        g.add_argument("--plus", action="append", metavar="N:NODE",
                       help="what-if: N more nodes like NODE (e.g. --plus 2:gpu-01)")
    g.add_argument("--all", dest="plan_all", action="store_true", help="list every layout, unsafe ones included")


def plan_options(args: argparse.Namespace) -> PlanOptions:
    seqs = getattr(args, "seqs", None)
    if args.context <= 0 or (seqs is not None and seqs <= 0):
        raise ValueError("--context and --seqs must be positive")
    if not 0.05 <= args.gpu_memory_utilization <= 1.0:
        raise ValueError("--gpu-memory-utilization must be between 0.05 and 1")
    return PlanOptions(weight_dtype=args.weights, kv_dtype=args.kv_dtype, context=args.context,
                       seqs=seqs if seqs is not None else DEFAULT_SEQS, seqs_given=seqs is not None,
                       gpu_memory_utilization=args.gpu_memory_utilization, objective=getattr(args, "objective", None) or "")


def what_if_args(args: argparse.Namespace) -> tuple[list[str], list[str]]:
    """(--without nodes, --plus N:NODE items) of `plan`; ([], []) elsewhere."""
    without = [n.strip() for n in (getattr(args, "without", None) or "").split(",") if n.strip()]
    return without, list(getattr(args, "plus", None) or [])


def multinode_from_bundle(options: object) -> tuple[float, str] | None:
    """The newest passing `nccl-multinode --save` record of a bundle (its `options["multinode"]`), if any."""
    from preflight.plan.fabric import newest_passing

    return newest_passing(options.get("multinode") if isinstance(options, dict) else None)


def load_plan_model(args: argparse.Namespace) -> Any:
    """The ModelSpec, or raise PlanError (unknown name / bad config.json) before any SSH."""
    from preflight.plan.models import load_model

    return load_model(args.model)


def internode(args: argparse.Namespace) -> tuple[float, str] | None:
    """(busbw GB/s, source) from a `nccl-multinode --json` file; ValueError with the path when unusable."""
    path = getattr(args, "multinode_result", None)
    if not path:
        return None
    import json
    from pathlib import Path

    try:
        doc = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(f"--multinode-result {path}: {exc}") from exc
    busbw = doc.get("busbw") if isinstance(doc, dict) else None
    if not isinstance(busbw, (int, float)) or busbw <= 0:
        raise ValueError(f"--multinode-result {path}: no positive 'busbw' (is it `preflight nccl-multinode --json` output?)")
    return float(busbw), f"{path}: {doc.get('via', 'multi-node')} nccl-tests busbw {busbw:g} GB/s ({doc.get('command', '')})"
