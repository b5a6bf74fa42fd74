"""`preflight plan` and the `--model` option of run / replay / demo: arguments, options, output."""

from __future__ import annotations

import argparse
from typing import Any

from rich.console import Console

from preflight.plan.dtypes import KV_DTYPES, WEIGHT_DTYPES
from preflight.plan.shapes import PlanOptions


def add_plan_args(p: argparse.ArgumentParser, *, required: bool) -> None:
    g = p.add_argument_group("parallelism plan" + ("" if required else " (with --model)"))
    g.add_argument("--model", required=required,
                   help="a model of the built-in catalog (e.g. llama-3.1-70b, deepseek-v3) or a Hugging Face config.json path")
    g.add_argument("--weights", choices=WEIGHT_DTYPES, default="bf16", help="weight precision (default bf16)")
    g.add_argument("--kv-dtype", choices=KV_DTYPES, default="bf16", help="KV cache precision (default bf16)")
    g.add_argument("--context", type=int, default=8192, help="max model length every sequence is budgeted at (default 8192)")
    g.add_argument("--seqs", type=int, default=16, help="sequences in flight across the deployment (default 16)")
    g.add_argument("--gpu-memory-utilization", type=float, default=0.9,
                   help="fraction of GPU memory the engine may use (vLLM's default 0.9)")
    g.add_argument("--multinode-result", metavar="FILE",
                   help="the JSON `preflight nccl-multinode --json` wrote: its measured inter-node busbw feeds the plan")
    g.add_argument("--all", dest="plan_all", action="store_true", help="list every layout, unsafe ones included")


def plan_options(args: argparse.Namespace) -> PlanOptions:
    if args.context <= 0 or args.seqs <= 0:
        raise ValueError("--context and --seqs must be positive")
    if not 0.05 <= args.gpu_memory_utilization <= 1.0:
        raise ValueError("--gpu-memory-utilization must be between 0.05 and 1")
    return PlanOptions(weight_dtype=args.weights, kv_dtype=args.kv_dtype, context=args.context, seqs=args.seqs,
                       gpu_memory_utilization=args.gpu_memory_utilization)


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


def build(args: argparse.Namespace, report: Any, facts: Any, source: str) -> Any:
    from preflight.plan.result import build_plan

    return build_plan(report, facts, load_plan_model(args), plan_options(args), source=source, internode=internode(args))


def render(args: argparse.Namespace, result: Any, out: Console) -> None:
    from preflight.report import plan_console

    plan_console.render(result, out, show_all=args.plan_all)


def verify(args: argparse.Namespace, result: Any, err: Console) -> Any:
    """Run the layout's communication tests on its nodes over SSH; a VerifyReport."""
    from preflight.cli import live_request
    from preflight.plan.verify import VerifyReport, feed_back, run_tests, verify_tests
    from preflight.transport.fanout import run_command

    p = result.plan
    wanted = (args.layout or "").replace(",", " ").split()
    if wanted:
        cand = next((c for c in p.candidates if c.label.split() == wanted), None)
        if cand is None:
            raise ValueError(f"--layout {args.layout!r} is not a layout of this plan (e.g. {p.candidates[0].label!r})")
    elif p.recommend_throughput:
        cand = p.recommend_throughput[0]
    else:
        raise ValueError("no safe layout to verify (choose one with --layout)")
    req = live_request(args)  # the same nodes, timeouts and host-key files the collection used
    by_name = {n.name: n for n in req.nodes}
    via = args.via or ("srun" if req.slurm else "mpirun")
    tests = verify_tests(cand, p.model, p.options, launcher=via)
    ssh = req.options.ssh

    def runner(node: str, argv: list[str]) -> tuple[int | None, str, str]:
        target = by_name.get(node)
        if target is None:
            return None, "", f"{node} is not in the inventory selection"
        err.print(f"verify: {node}: {' '.join(argv)}", soft_wrap=True)
        return run_command(target, argv, ssh, args.verify_timeout)

    results = run_tests(tests, runner)
    again = feed_back(result.fleet, p.model, p.options, cand, results) if result.fleet is not None else None
    return VerifyReport(cand, tuple(results), again)


def render_verify(v: Any, out: Console) -> None:
    from rich.markup import escape
    from rich.table import Table

    t = Table(title=f"verification of {v.candidate.label} (nccl-tests shaped like the layout)", title_justify="left")
    for col in ("test", "GPUs", "sizes (B)", "busbw GB/s", "decode-size time us", "result"):
        t.add_column(col, overflow="fold")
    for r in v.results:
        t.add_row(r.test.kind, escape(r.test.group), f"{r.test.decode_bytes}-{r.test.prefill_bytes}",
                  f"{r.busbw_gbps:g}" if r.busbw_gbps is not None else "–",
                  f"{r.small_time_us:g}" if r.small_time_us is not None else "–",
                  "ok" if r.ok else escape(f"FAILED {r.error}"))
    out.print(t)
    for r in v.results:
        out.print(f"  [dim]{escape(r.test.command)}[/]", soft_wrap=True)
    if v.again is not None:
        before = {e.name: e for e in v.candidate.estimates}
        for e in v.again.estimates:
            b = before.get(e.name)
            if e.value is not None:
                was = f" (was {b.value:.4g})" if b is not None and b.value is not None else ""
                out.print(f"  measured → {e.name}: {e.value:.4g} {e.unit}{was}  [dim]{escape(e.formula)}[/]", soft_wrap=True)
    out.print("[green]verification passed[/]" if v.passed else "[red]verification FAILED: a test did not run or parse[/]")
