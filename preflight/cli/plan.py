"""`preflight plan` and the `--model` option of run / replay / demo: the plan built, verified and shown.

The flags themselves are cli/plan_args.py; the planner is preflight/plan (pure), its console view
preflight/report/plan_console.py.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rich.console import Console

from preflight.cli.common import DEMO_LABEL, consoles, demo_bundle_path, overrides, write_json
from preflight.cli.plan_args import internode, load_plan_model, multinode_from_bundle, plan_options, what_if_args
from preflight.facts import FleetFacts
from preflight.plan.result import PlanResult
from preflight.results import EXIT_CANNOT_RUN, RunReport


def cmd_plan(args: argparse.Namespace) -> int:
    """Exit 0 when a safe layout exists, 2 when none does, 3 when it cannot plan."""
    from preflight.collect.bundle import BundleError
    from preflight.engine import judge
    from preflight.plan.errors import PlanError

    out, err = consoles(args)
    try:
        load_plan_model(args)
        plan_options(args)
        if args.fleet:
            result, verified = described(args), None
        else:
            fleet = _fleet(args, err)
            if fleet is None:
                return EXIT_CANNOT_RUN
            bundle, source, cache = fleet
            if args.verify and not (args.inventory or args.host_list or getattr(args, "ansible_inventory", None)):
                raise ValueError("--verify runs tests on the fleet: give -i INVENTORY or -H HOSTS")
            report, facts = judge(overrides(args).apply_to_bundle(bundle), cache=cache)
            result = build(args, report, facts, source, bundle_options=getattr(bundle, "options", None))
            verified = verify(args, result, err) if args.verify else None
    except (BundleError, PlanError, ValueError) as exc:
        err.print(f"[bold red]preflight plan: {exc}[/]")
        return EXIT_CANNOT_RUN
    if args.json:
        doc = {"schema": "preflight-plan", "schema_version": 1, **result.to_dict()}
        if verified is not None:
            doc["verify"] = verified.to_dict()
        write_json(args.json, doc)
    if not args.quiet and args.json != "-":
        render(args, result, out)
        if verified is not None:
            render_verify(verified, out)
    if verified is not None and not verified.passed:
        return 2
    return 0 if result.plan.recommend_throughput else 2


def _fleet(args: argparse.Namespace, err: Console) -> tuple[Any, str, Any] | None:
    """(bundle, source name, facts cache) to plan on: --bundle, a live run (-i/-H), else the demo recording."""
    from preflight.cli.progress import live_bundle
    from preflight.collect.bundle import load_bundle

    if args.bundle and (args.inventory or args.host_list or getattr(args, "ansible_inventory", None)):
        raise ValueError("give --bundle or -i/-H, not both")
    if args.bundle:
        return load_bundle(args.bundle), Path(args.bundle).name, None
    if args.inventory or args.host_list or getattr(args, "ansible_inventory", None):
        live = live_bundle(args, err)
        if live is None:
            return None
        return live[0], str(args.inventory or args.host_list or getattr(args, "ansible_inventory", None)), live[1]
    err.print(DEMO_LABEL)
    return load_bundle(demo_bundle_path()), "demo", None


def described(args: argparse.Namespace) -> PlanResult:
    """The plan on a `--fleet` description: no collection, no judging; the same planner."""
    from preflight.plan.described import described_fleet
    from preflight.plan.result import plan_on

    if args.bundle or args.inventory or args.host_list or getattr(args, "ansible_inventory", None) or args.without or args.plus or args.verify:
        raise ValueError("--fleet describes the whole fleet: not with --bundle, -i/-H, --without, --plus or --verify")
    terms = [t for arg in args.fleet for t in arg.split()]
    shape = described_fleet(terms)
    return plan_on(shape, load_plan_model(args), plan_options(args),
                   source=f"described fleet {' + '.join(terms)} (described fleet, not measured)")


def build(args: argparse.Namespace, report: RunReport, facts: FleetFacts, source: str, *,
          bundle_options: object = None) -> PlanResult:
    """Measured evidence for the fabric: --multinode-result, else the bundle's newest passing nccl-multinode record."""
    from preflight.plan.result import build_plan

    without, plus = what_if_args(args)
    measured = internode(args) or multinode_from_bundle(bundle_options)
    inv = getattr(args, "inventory", None) or "INVENTORY"
    command = f"preflight nccl-multinode -i {inv} --save {getattr(args, 'bundle', None) or 'DIR'}"
    return build_plan(report, facts, load_plan_model(args), plan_options(args), source=source, internode=measured,
                      without=without, plus=plus, multinode_command=command)


def render(args: argparse.Namespace, result: PlanResult, out: Console) -> None:
    from preflight.report import plan_console

    plan_console.render(result, out, show_all=args.plan_all)


def verify(args: argparse.Namespace, result: PlanResult, err: Console) -> Any:
    """Run the layout's communication tests on its nodes over SSH; a VerifyReport."""
    from preflight.cli.progress import live_request
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
    by_name: dict[str, Any] = {n.name: n for n in req.nodes}  # inventory Nodes: the transport's Targets
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
