"""`preflight run | replay | demo | checks`: a bundle (live, saved or recorded) judged, then every output asked for.

Exit codes: 0 pass, 1 warnings (--fail-on warn), 2 failures, 3 cannot run, 4 drift from --baseline
(regressions, when the run itself passed).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from rich.console import Console

from preflight.cli.common import DEMO_LABEL, consoles, demo_bundle_path, overrides, select, write_json, write_text
from preflight.collect.bundle import Bundle
from preflight.engine import FactsCache
from preflight.plan.result import PlanResult
from preflight.results import EXIT_CANNOT_RUN, RunReport, exit_code


def cmd_run(args: argparse.Namespace) -> int:
    if getattr(args, "subcommand", None) == "node-check":
        from preflight.cli.nodecheck import cmd_node_check

        return cmd_node_check(args)
    _out, err = consoles(args)
    if (getattr(args, "drain", False) or getattr(args, "resume", False)) and not args.slurm:
        err.print("[bold red]preflight: --drain/--resume act on Slurm nodes: give --slurm[/]")
        return EXIT_CANNOT_RUN
    if args.slurm:
        bundle = _slurm_bundle(args, err)
        if bundle is None:
            return EXIT_CANNOT_RUN
        return emit(args, bundle, {"kind": "live", "bundle": args.save, "label": "slurm", "inventory": args.inventory})
    if not (args.inventory or args.host_list or getattr(args, "ansible_inventory", None)):
        err.print("[bold red]preflight: give -i INVENTORY or -H HOSTS (or --slurm)[/]")
        return EXIT_CANNOT_RUN
    from preflight.cli.tui import interactive, run_live

    if interactive(args):
        return run_live(args)
    from preflight.cli.progress import live_bundle

    live = live_bundle(args, err, drop_raw=not getattr(args, "timings", False))  # --timings reads raw outputs
    if live is None:
        return EXIT_CANNOT_RUN
    bundle, cache = live
    return emit(args, bundle, {"kind": "live", "bundle": args.save, "label": None, "inventory": args.inventory},
                cache=cache)


def cmd_replay(args: argparse.Namespace) -> int:
    from preflight.collect.bundle import BundleError, load_bundle

    _out, err = consoles(args)
    try:
        bundle = load_bundle(args.bundle)
        select(args)
    except (BundleError, ValueError) as exc:
        err.print(f"[bold red]preflight: {exc}[/]")
        return EXIT_CANNOT_RUN
    label = DEMO_LABEL if bundle.label == "recording" else f"replay of {args.bundle}"
    return emit(args, bundle, {"kind": "replay", "bundle": str(args.bundle), "label": bundle.label or None,
                               "inventory": bundle.inventory.get("path")}, label)


def cmd_demo(args: argparse.Namespace) -> int:
    from preflight.collect.bundle import load_bundle

    bundle = load_bundle(demo_bundle_path())
    code = emit(args, bundle, {"kind": "demo", "bundle": "preflight/data/demo/bundle.json", "label": bundle.label,
                               "inventory": bundle.inventory.get("path")}, DEMO_LABEL)
    # The recording's faults are the point of the demo, not a failure of it: exit 0 unless asked.
    return code if (args.strict or code == EXIT_CANNOT_RUN) else 0


def cmd_checks(args: argparse.Namespace) -> int:
    from preflight.engine import all_checks
    from preflight.report.checks_doc import checks_markdown

    if args.markdown:
        sys.stdout.write(checks_markdown())
        return 0
    console = Console(highlight=False, emoji=False)
    for spec in all_checks():
        console.print(f"[bold]{spec.id}[/] [dim]({spec.group}, {spec.scope})[/] {spec.summary}")
    return 0


def emit(args: argparse.Namespace, bundle: Bundle, source: dict[str, Any], label: str = "", *,
         cache: FactsCache | None = None) -> int:
    """Judge, then every requested output. Exit: 3 cannot run; 2/1 the run's; else 4 on baseline regressions."""
    from preflight.engine import judge
    from preflight.report.json_report import report_dict

    out, err = consoles(args)
    if isinstance(bundle.options.get("shard"), dict) and "shard" not in source:  # a shard's run or its replay
        from preflight.merge import shard_label

        note = shard_label(bundle.options["shard"])
        source, label = {**source, "shard": bundle.options["shard"]}, f"{label}. {note}" if label else note
    try:
        specs = select(args)
        baseline = _load_baseline(args)
        over = overrides(args)
        from preflight.cli.history import acknowledgements, record_report

        acks = acknowledgements(args)  # --ack FILE (an InventoryError is a ValueError here)
    except ValueError as exc:  # BaselineError is a ValueError
        err.print(f"[bold red]preflight: {exc}[/]")
        return EXIT_CANNOT_RUN
    report, facts = judge(over.apply_to_bundle(bundle), specs, cache=cache, acks=acks)
    code = exit_code(report, args.fail_on)
    record_report(args, report, facts, source, code)  # the run history; never fails the run
    where = source.get("bundle") or source.get("inventory")
    plan = _plan_for(args, report, facts, Path(str(where)).name if where and source["kind"] != "demo" else source["kind"], err)
    doc = report_dict(report, source=source, fail_on=args.fail_on, lazy=True)  # nodes made as written
    if plan is not None:
        doc["plan"] = plan.to_dict()
    drift = None
    if baseline is not None:
        from preflight.report.baseline import compare

        doc["nodes"] = list(doc["nodes"])  # compared node by node, then written: made once, held
        drift = compare(baseline, doc, bandwidth_drop_pct=args.baseline_drop_pct)
    _write_files(args, report, doc, drift)
    if report.meta.get("partial") and (getattr(args, "drain", False) or getattr(args, "resume", False)):
        err.print(f"[bold red]preflight: --drain/--resume act on the whole fleet's verdict, and this is a partial set "
                  f"({report.meta['partial']}): merge every shard (`preflight merge ... --drain`) first[/]")
        return EXIT_CANNOT_RUN
    if not _act(args, report, facts, err):
        return EXIT_CANNOT_RUN
    if not args.quiet and args.json != "-":
        _render(args, report, bundle, plan, drift, label, out, facts)
    elif args.quiet and label:
        err.print(label)
    if drift is not None and drift.exit_code == 4 and code in (0, 1):
        return 4
    return code


def _envelope(args: argparse.Namespace, report: RunReport, facts: Any, bundle: Bundle) -> Any:
    """The parallelism envelope (plan/envelope.py) that ends the console report; None when it cannot be had
    (no facts), never an error of the run."""
    if facts is None:
        return None
    from preflight.plan.envelope import envelope

    try:
        return envelope(report, facts, getattr(args, "model", None), source=str(bundle.inventory.get("path") or ""))
    except ValueError:  # PlanError: an unknown --model was already reported by the plan itself
        return envelope(report, facts, None)


def _write_files(args: argparse.Namespace, report: RunReport, doc: dict[str, Any], drift: Any) -> None:
    if args.json:
        write_json(args.json, doc)
    if args.junit:
        from preflight.report.junit import junit_xml

        write_text(args.junit, junit_xml(report, fail_on=args.fail_on))
    if args.markdown:
        from preflight.report.markdown_report import markdown_summary

        write_text(args.markdown, markdown_summary(report, fail_on=args.fail_on, drift=drift))


def _render(args: argparse.Namespace, report: RunReport, bundle: Bundle, plan: PlanResult | None, drift: Any,
            label: str, out: Console, facts: Any = None) -> None:
    from preflight.report import console as console_report

    console_report.render(report, out, source_label=label, envelope=_envelope(args, report, facts, bundle))
    if plan is not None:
        from preflight.cli.plan import render

        render(args, plan, out)
    if drift is not None:
        _render_drift(drift, args.baseline, out)
    if getattr(args, "timings", False):
        from preflight.report import timings

        timings.render(bundle, out)


def _plan_for(args: argparse.Namespace, report: RunReport, facts: Any, source: str, err: Console) -> PlanResult | None:
    """The plan when --model was given; a model/option error is printed and gives None (the report stands)."""
    if not getattr(args, "model", None):
        return None
    from preflight.cli.plan import build
    from preflight.plan.errors import PlanError

    try:
        return build(args, report, facts, source)
    except (PlanError, ValueError) as exc:
        err.print(f"[bold red]preflight plan: {exc}[/]")
        return None


def _load_baseline(args: argparse.Namespace) -> dict[str, Any] | None:
    if not getattr(args, "baseline", None):
        return None
    from preflight.report.baseline import load_report

    return load_report(args.baseline)


def _render_drift(drift: Any, path: str, out: Console) -> None:
    from rich.markup import escape

    if not drift.items:
        out.print(f"[green]no drift from the baseline {escape(path)}[/]")
        return
    out.print(f"[bold]drift from the baseline {escape(path)}[/]: {len(drift.regressions)} regression(s), "
              f"{len(drift.improvements)} improvement(s)")
    for line in drift.lines():
        out.print("  " + escape(line), soft_wrap=True)


def _slurm_bundle(args: argparse.Namespace, err: Console) -> Bundle | None:
    """The collector on every node through one srun; inventory expectations applied by node name."""
    from preflight.inventory import InventoryError
    from preflight.session.request import RunArgs, load_sharded
    from preflight.session.slurm import SlurmRequest, in_allocation, slurm_bundle

    try:
        if getattr(args, "shard", None) and not args.inventory:
            raise ValueError("--shard with --slurm splits an inventory: give -i INVENTORY (its nodes become the nodelist)")
        if getattr(args, "shard", None) and (args.slurm_nodelist or args.nodes):
            raise ValueError("--shard picks the nodes: give it without --slurm-nodelist/--nodes")
        _whole, inv, shard = load_sharded(RunArgs.of(args)) if args.inventory else (None, None, None)
        if not in_allocation() and not (args.slurm_partition or args.nodes or args.slurm_nodelist or inv):
            raise ValueError("--slurm outside an allocation needs --slurm-partition P --nodes N (or --slurm-nodelist)")
        select(args)
    except (InventoryError, ValueError) as exc:
        err.print(f"[bold red]preflight: {exc}[/]")
        return None
    err.print(f"collecting through srun ({'inside allocation' if in_allocation() else 'new allocation'})")
    bundle = slurm_bundle(SlurmRequest(inv, args.inventory, partition=args.slurm_partition, nodes=args.nodes,
                                       nodelist=args.slurm_nodelist or (",".join(n.name for n in inv.nodes) if shard and inv else None),
                                       timeout=args.timeout, nccl=args.nccl))
    if shard is not None:
        bundle.options["shard"] = shard
    if args.save:
        from preflight.collect.bundle import save_bundle

        err.print(f"bundle saved: {save_bundle(bundle, args.save)}")
    return bundle


def _act(args: argparse.Namespace, report: RunReport, facts: Any, err: Console) -> bool:
    """--emit-hosts / --emit-excluded, then --drain / --resume (Slurm); False after printing why it could not."""
    from preflight.actions.hostlist import render_excluded, render_hosts, split
    from preflight.actions.suggest import node_action

    try:
        if getattr(args, "emit_hosts", None) or getattr(args, "emit_excluded", None):
            gpus = {n.name: len(n.gpus or ()) for n in getattr(facts, "reachable", ())}
            hosts = split(report, gpus)
            if args.emit_hosts:
                write_text(args.emit_hosts, render_hosts(hosts, args.hosts_format))
            if args.emit_excluded:
                write_text(args.emit_excluded, render_excluded(hosts, {n.name: node_action(n) for n in report.nodes}))
    except OSError as exc:
        err.print(f"[bold red]preflight: {exc}[/]")
        return False
    if getattr(args, "drain", False) or getattr(args, "resume", False):
        return _slurm_actions(args, report, err)
    return True


def _slurm_actions(args: argparse.Namespace, report: RunReport, err: Console) -> bool:
    from preflight.actions.slurm import names_of, plan_drain, plan_resume
    from preflight.session.slurm import apply_actions, slurm_node_states

    try:
        states = slurm_node_states(list(names_of(report)))
    except Exception as exc:  # scontrol missing, hung or refused
        err.print(f"[bold red]preflight: cannot read the nodes' Slurm state (scontrol show node): {exc}[/]")
        return False
    acts = (plan_drain(report, states) if args.drain else []) + (plan_resume(report, states) if args.resume else [])
    stream = sys.stderr if args.json == "-" else sys.stdout
    if not args.apply:
        stream.write("".join(f"{a.line()}\n" for a in acts) or "# nothing to drain or resume\n")
        return True
    for a in acts:
        if a.verb == "skip":
            stream.write(a.line() + "\n")
    failed = 0
    for act, rc, msg in apply_actions(acts):
        failed += rc != 0
        stream.write(f"{'done' if rc == 0 else f'FAILED ({rc})'}: {act.line()}" + (f"  # {msg}" if msg else "") + "\n")
    return failed == 0
