"""Command line: run | replay | demo | plan | tui | checks | nccl-multinode.

Exit codes: 0 pass, 1 warnings (--fail-on warn), 2 failures, 3 cannot run, 4 drift from --baseline
(regressions, when the run itself passed).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, NoReturn

from rich.console import Console

from preflight import __version__
from preflight.cli_plan import add_plan_args
from preflight.results import EXIT_CANNOT_RUN, exit_code

DEMO_LABEL = (
    "RECORDING: `preflight demo` replays a bundled recording, not your fleet. It was collected live over SSH from a "
    "simulated 4-node fleet whose stand-in tools print real published outputs of 8x H100 machines "
    "(provenance: preflight/sim/profiles/*/profile.yaml)."
)


def _add_output_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", metavar="FILE", help="write the JSON report to FILE ('-' for stdout)")
    p.add_argument("--junit", metavar="FILE", help="write a JUnit XML report (one testcase per check × node) for CI test reporters")
    p.add_argument("--markdown", metavar="FILE", help="write a Markdown summary (e.g. $GITHUB_STEP_SUMMARY)")
    p.add_argument("--baseline", metavar="GOOD.json",
                   help="compare with a known-good JSON report and report drift; regressions exit 4 (see README)")
    p.add_argument("--baseline-drop-pct", type=float, default=10.0, metavar="PCT",
                   help="bus bandwidth drop from the baseline that counts as drift (default 10)")
    p.add_argument("--fail-on", choices=("fail", "warn"), default="fail",
                   help="exit 1 on warnings too (default: only failures give a non-zero exit)")
    p.add_argument("--checks", metavar="PATTERNS", help="only these checks: comma-separated globs or groups, e.g. 'topology.*,ib'")
    p.add_argument("--skip", metavar="PATTERNS", help="skip these checks (same syntax as --checks)")
    p.add_argument("--timings", action="store_true", help="also show the slowest probes across the fleet")
    p.add_argument("--no-color", action="store_true", help="plain text output")
    p.add_argument("--quiet", "-q", action="store_true", help="no console report (use with --json)")
    _add_override_args(p)


def _add_override_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--expect", action="append", default=[], metavar="KEY=VALUE",
                   help="an expectation for every node, as an inventory's expect: says it "
                        "(e.g. gpus_per_node=0 for a CPU host; repeatable; see docs/inventory.md)")
    p.add_argument("--accept", action="append", default=[], metavar="CHECK_OR_FACT=WHY",
                   help="a gap accepted by design, shown as accepted with this reason instead of an error "
                        "(e.g. xid='no root for dmesg'; repeatable)")


def _add_slurm_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("Slurm (instead of SSH)")
    g.add_argument("--slurm", action="store_true",
                   help="run the collector on every node with one `srun --ntasks-per-node=1` (inside an allocation: its "
                        "nodes; else make one with --slurm-partition/--nodes); -i then only supplies expectations")
    g.add_argument("--slurm-partition", metavar="P", help="partition for the allocation srun makes (outside an allocation)")
    g.add_argument("--nodes", type=int, metavar="N", help="how many nodes srun allocates (outside an allocation)")
    g.add_argument("--slurm-nodelist", metavar="LIST", help="Slurm hostlist to run on, e.g. 'gpu[001-064]'")


def _add_connection_args(p: argparse.ArgumentParser, *, required: bool) -> None:
    src = p.add_mutually_exclusive_group(required=required)
    src.add_argument("-i", "--inventory", help="inventory YAML (preflight or Ansible format)")
    src.add_argument("-H", "--host-list", help="comma-separated [user@]host[:port] list instead of an inventory "
                                              "('local' is the controller itself)")
    p.add_argument("-l", "--limit", "--hosts", dest="limit", help="only these hosts: names, globs, gpu-[00-63], @group")
    p.add_argument("--forks", type=int, default=32, help="nodes contacted at once (default 32)")
    p.add_argument("--connect-timeout", type=float, help="seconds to connect to a node (default: inventory, else 10)")
    p.add_argument("--timeout", type=float, help="seconds for the collector on a node (default: inventory, else 120)")
    p.add_argument("--known-hosts", action="append", default=[], help="extra known_hosts file (repeatable)")
    p.add_argument("--accept-new-hostkeys", action="store_true",
                   help="trust and record host keys never seen before (a CHANGED key is still refused)")
    p.add_argument("--nccl", action="store_true",
                   help="also run nccl-tests all_reduce_perf on each node's GPUs, twice (takes the GPUs for a minute or two)")
    p.add_argument("--save", metavar="DIR", help="save the raw facts bundle to DIR (replay it with `preflight replay DIR`)")


class _Parser(argparse.ArgumentParser):
    """Bad command-line input is 'cannot run' (exit 3, one line), never exit 2, which means findings failed."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_CANNOT_RUN, f"{self.prog}: {message} (try '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    ap = _Parser(prog="preflight", description="GPU-fleet preflight and diagnostics.")
    ap.add_argument("--version", action="version", version=f"preflight {__version__}")
    sub = ap.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="collect from the nodes of an inventory over SSH (or Slurm) and judge")
    _add_connection_args(run, required=False)
    _add_slurm_args(run)
    run.add_argument("--headless", action="store_true",
                     help="no interactive UI (automatic when stdout is not a terminal or CI is set); progress lines on stderr")
    add_plan_args(run, required=False)
    _add_output_args(run)

    rep = sub.add_parser("replay", help="judge a saved bundle again (same parsing and checks as a live run)")
    rep.add_argument("bundle", help="bundle directory or bundle.json")
    _add_output_args(rep)
    add_plan_args(rep, required=False)

    demo = sub.add_parser("demo", help="replay the bundled recording of a small simulated fleet")
    demo.add_argument("--strict", action="store_true",
                      help="exit with the recording's own exit code (2: it contains failures) instead of 0")
    _add_output_args(demo)
    add_plan_args(demo, required=False)

    pl = sub.add_parser("plan", help="which TP/PP/DP/EP layouts the healthy nodes can run for a model, with the memory "
                                     "math, reasons and launch commands (default fleet: the bundled recording)")
    pl.add_argument("--bundle", help="plan on a saved bundle instead of a live run")
    _add_override_args(pl)
    _add_connection_args(pl, required=False)
    add_plan_args(pl, required=True)
    pl.add_argument("--verify", action="store_true",
                    help="run nccl-tests shaped like the recommended layout on its nodes (needs -i/-H): TP all-reduce, "
                         "PP send/recv, EP all-to-all at its decode and prefill message sizes; results feed the estimates")
    pl.add_argument("--layout", help="the layout to verify, e.g. 'TP8 PP1 DP2' (default: the throughput recommendation)")
    pl.add_argument("--via", choices=("mpirun", "srun"), help="launcher for groups across nodes (default: srun when the "
                                                              "inventory has a slurm section, else mpirun)")
    pl.add_argument("--verify-timeout", type=float, default=300.0, help="seconds per verification run (default 300)")
    pl.add_argument("--json", metavar="FILE", help="write the plan as JSON to FILE ('-' for stdout)")
    pl.add_argument("--no-color", action="store_true", help="plain text output")
    pl.add_argument("--quiet", "-q", action="store_true", help="no console output (use with --json)")

    mn = sub.add_parser("nccl-multinode", help="run nccl-tests across nodes with mpirun/srun from a launcher node; "
                                               "--pairs finds the slow node")
    mn.add_argument("-i", "--inventory", required=True)
    mn.add_argument("-l", "--limit", "--hosts", dest="limit", help="only these hosts")
    mn.add_argument("--launcher-node", help="node that runs mpirun/srun (default: the first selected node)")
    mn.add_argument("--via", choices=("mpirun", "srun"), default=None,
                    help="launcher (default: srun when the inventory has a slurm section, else mpirun)")
    mn.add_argument("--gpus-per-node", type=int, help="ranks per node (default: inventory gpus_per_node, else 8)")
    mn.add_argument("--min-busbw", type=float, help="GB/s below which a run is slow (default: inventory allreduce_busbw_gbps_min)")
    mn.add_argument("--pairs", action="store_true", help="also run every node in two 2-node tests and name the slow node")
    mn.add_argument("--timeout", type=float, default=600.0, help="seconds per mpirun/srun run (default 600)")
    mn.add_argument("--known-hosts", action="append", default=[])
    mn.add_argument("--json", metavar="FILE")

    tui = sub.add_parser("tui", help="browse a saved bundle (or the demo recording) in the interactive UI")
    tui.add_argument("bundle", nargs="?", help="bundle directory or bundle.json (default: the demo recording)")
    tui.add_argument("--model", help="model for the plan screen (catalog name or config.json)")

    hg = sub.add_parser("hang", help="on-call: why does this NCCL job hang? one round trip per node: the job's ranks, "
                                     "their stacks (py-spy), GPU use, Xid lines, IB counters read twice, NCCL debug files")
    hg.add_argument("--bundle", help="judge a saved hang gather again (from --save) instead of collecting")
    _add_connection_args(hg, required=False)
    hg.add_argument("--job-pattern", default=r"python|torchrun|deepspeed|accelerate|all_reduce_perf",
                    help="regex on process command lines that selects the job's ranks (default: python|torchrun|...)")
    hg.add_argument("--no-pyspy", action="store_true", help="do not run py-spy dump on the ranks")
    hg.add_argument("--ib-interval", type=float, default=3.0, help="seconds between the two IB counter reads (default 3)")
    hg.add_argument("--sweeps", type=int, default=1,
                    help="gather this many times over the same open SSH connections (watch a hang evolve); "
                         "the verdict is the last sweep's")
    hg.add_argument("--tui", action="store_true", help="show the verdict in the interactive ranks × causes screen")
    hg.add_argument("--json", metavar="FILE", help="write the verdict as JSON to FILE ('-' for stdout)")
    hg.add_argument("--no-color", action="store_true")
    hg.add_argument("--quiet", "-q", action="store_true")

    an = sub.add_parser("analyze", help="on-call: find why an NCCL job hangs from files copied off the cluster "
                                        "(NCCL_DEBUG logs, PyTorch watchdog timeouts, flight-recorder dumps, kernel logs)")
    an.add_argument("paths", nargs="+", help="files or directories (walked)")
    an.add_argument("--json", metavar="FILE", help="write the verdict as JSON to FILE ('-' for stdout)")
    an.add_argument("--no-color", action="store_true")
    an.add_argument("--quiet", "-q", action="store_true")

    lst = sub.add_parser("checks", help="list the registered checks")
    lst.add_argument("--markdown", action="store_true", help="print docs/checks.md")
    return ap


def _consoles(args: argparse.Namespace) -> tuple[Console, Console]:
    out = Console(no_color=args.no_color or None, highlight=False, soft_wrap=False, emoji=False)
    err = Console(stderr=True, no_color=args.no_color or None, highlight=False, soft_wrap=True, emoji=False)
    return out, err


def _select(args: argparse.Namespace) -> Any:
    from preflight.engine import select_checks

    return select_checks(args.checks, args.skip)


def _plan_for(args: argparse.Namespace, report: Any, facts: Any, source: str, err: Console) -> Any:
    """The plan when --model was given; a model/option error is printed and gives None (the report stands)."""
    if not getattr(args, "model", None):
        return None
    from preflight import cli_plan
    from preflight.plan.errors import PlanError

    try:
        return cli_plan.build(args, report, facts, source)
    except (PlanError, ValueError) as exc:
        err.print(f"[bold red]preflight plan: {exc}[/]")
        return None


def _write_json(target: str, doc: dict[str, Any]) -> None:
    """A JSON document to FILE or '-': streamed (node text in it was cleaned where it entered, see textsafe)."""
    from preflight.report.json_report import write

    if target == "-":
        write(doc, sys.stdout)
        return
    Path(target).parent.mkdir(parents=True, exist_ok=True)
    with open(target, "w") as fh:
        write(doc, fh)


def _emit(args: argparse.Namespace, bundle: Any, source: dict[str, Any], label: str = "") -> int:
    """Judge, then every requested output. Exit: 3 cannot run; 2/1 the run's; else 4 on baseline regressions."""
    from preflight.engine import judge
    from preflight.report import console as console_report
    from preflight.report.json_report import report_dict

    out, err = _consoles(args)
    try:
        specs = _select(args)
        baseline = _load_baseline(args)
        _overrides(args)
    except ValueError as exc:  # BaselineError is a ValueError
        err.print(f"[bold red]preflight: {exc}[/]")
        return EXIT_CANNOT_RUN
    report, facts = judge(_overrides(args).apply_to_bundle(bundle), specs)
    code = exit_code(report, args.fail_on)
    where = source.get("bundle") or source.get("inventory")
    plan = _plan_for(args, report, facts, Path(str(where)).name if where and source["kind"] != "demo" else source["kind"], err)
    doc = report_dict(report, source=source, fail_on=args.fail_on)
    if plan is not None:
        doc["plan"] = plan.to_dict()
    drift = None
    if baseline is not None:
        from preflight.report.baseline import compare

        drift = compare(baseline, doc, bandwidth_drop_pct=args.baseline_drop_pct)
    if args.json:
        _write_json(args.json, doc)
    if args.junit:
        from preflight.report.junit import junit_xml

        _write_text(args.junit, junit_xml(report, fail_on=args.fail_on))
    if args.markdown:
        from preflight.report.markdown_report import markdown_summary

        _write_text(args.markdown, markdown_summary(report, fail_on=args.fail_on, drift=drift))
    if not args.quiet and args.json != "-":
        console_report.render(report, out, source_label=label)
        if plan is not None:
            from preflight import cli_plan

            cli_plan.render(args, plan, out)
        if drift is not None:
            _render_drift(drift, args.baseline, out)
        if getattr(args, "timings", False):
            from preflight.report import timings

            timings.render(bundle, out)
    elif args.quiet and label:
        err.print(label)
    if drift is not None and drift.exit_code == 4 and code in (0, 1):
        return 4
    return code


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


def _write_text(target: str, text: str) -> None:
    if target == "-":
        sys.stdout.write(text)
        return
    Path(target).parent.mkdir(parents=True, exist_ok=True)
    Path(target).write_text(text)


@dataclass(frozen=True)
class LiveRequest:
    """What a live run needs, resolved from the command line before any SSH (the TUI uses it too)."""

    nodes: tuple[Any, ...]
    options: Any  # FanoutOptions
    include_optional: tuple[str, ...]
    inventory_path: str | None
    save: str | None
    slurm: bool = False  # the inventory has a `slurm:` section (launchers default to srun)


def _overrides(args: argparse.Namespace) -> Any:
    """--expect/--accept, validated (ValueError with one line); empty for commands without them."""
    from preflight.overrides import parse_overrides

    return parse_overrides(getattr(args, "expect", None) or (), getattr(args, "accept", None) or ())


def live_request(args: argparse.Namespace) -> LiveRequest:
    """Inventory, limits, timeouts and SSH options; raises ValueError (InventoryError, PlanError) with the reason."""
    from preflight.collect.probes import NCCL_PROBES
    from preflight.inventory import inventory_from_hosts, load_inventory
    from preflight.transport.fanout import FanoutOptions
    from preflight.transport.ssh import SshOptions

    if args.inventory:
        inv = load_inventory(args.inventory)
    else:
        inv = inventory_from_hosts([h for h in args.host_list.split(",") if h.strip()])
    if args.limit:
        inv = inv.select(args.limit)
    if getattr(args, "checks", None) is not None or getattr(args, "skip", None) is not None:
        _select(args)  # bad --checks patterns fail before any SSH
    if getattr(args, "model", None):
        from preflight import cli_plan

        cli_plan.load_plan_model(args)  # an unknown model fails before any SSH too
        cli_plan.plan_options(args)
    nodes = _overrides(args).apply_to_nodes(inv.nodes)
    if args.connect_timeout or args.timeout:
        import dataclasses

        nodes = [dataclasses.replace(n, **({"connect_timeout_s": args.connect_timeout} if args.connect_timeout else {}),
                                     **({"command_timeout_s": args.timeout} if args.timeout else {})) for n in nodes]
    ssh = SshOptions(known_hosts=tuple(inv.known_hosts) + tuple(args.known_hosts),
                     accept_new_hostkeys=args.accept_new_hostkeys, ssh_config_path=inv.ssh_config)
    return LiveRequest(tuple(nodes), FanoutOptions(forks=max(1, args.forks), ssh=ssh),
                       NCCL_PROBES if args.nccl else (), args.inventory, args.save, bool(inv.slurm))


def _live_bundle(args: argparse.Namespace, err: Console) -> Any:
    """Inventory → SSH → bundle (saved with --save); None after printing why it cannot run."""
    from preflight.inventory import InventoryError

    try:
        req = live_request(args)
    except (InventoryError, ValueError) as exc:  # PlanError is a ValueError
        err.print(f"[bold red]preflight: {exc}[/]")
        return None
    bundle = _collect_with_progress(list(req.nodes), req.options, err, inventory_path=req.inventory_path,
                                    include_optional=req.include_optional)
    if req.save:
        from preflight.collect.bundle import save_bundle

        path = save_bundle(bundle, req.save)
        err.print(f"bundle saved: {path}")
    return bundle


def interactive(args: argparse.Namespace) -> bool:
    """The TUI opens for a person at a terminal: not with --headless, CI set, output redirected or --json -."""
    import os

    if getattr(args, "headless", False) or os.environ.get("CI") or getattr(args, "json", None) == "-":
        return False
    # outputs and policies only the headless path writes or applies: asking for one means headless
    if any(getattr(args, k, None) for k in ("json", "junit", "markdown", "baseline", "timings", "checks", "skip")):
        return False
    if getattr(args, "fail_on", "fail") != "fail":
        return False
    if getattr(args, "quiet", False):
        return False
    return sys.stdin.isatty() and sys.stdout.isatty()


def _slurm_bundle(args: argparse.Namespace, err: Console) -> Any:
    """The collector on every node through one srun; inventory expectations applied by node name."""
    from preflight import __version__
    from preflight.collect.bundle import Bundle
    from preflight.collect.probes import NCCL_PROBES
    from preflight.collect.script import build_script, select_probes
    from preflight.inventory import InventoryError, load_inventory
    from preflight.live import _expect_of
    from preflight.transport.slurm import SlurmOptions, collect_slurm, in_allocation

    try:
        inv = load_inventory(args.inventory) if args.inventory else None
        if inv is not None and args.limit:
            inv = inv.select(args.limit)
        if not in_allocation() and not (args.slurm_partition or args.nodes or args.slurm_nodelist or inv):
            raise ValueError("--slurm outside an allocation needs --slurm-partition P --nodes N (or --slurm-nodelist)")
        _select(args)
    except (InventoryError, ValueError) as exc:
        err.print(f"[bold red]preflight: {exc}[/]")
        return None
    limit = float(args.timeout or 300.0)
    include = NCCL_PROBES if args.nccl else ()
    script = build_script(select_probes(include), ngpus=8, deadline_s=max(10.0, limit - 10))
    by_name = {n.name: n for n in inv.nodes} if inv is not None else {}
    nodelist = args.slurm_nodelist or (",".join(by_name) if by_name and not (args.nodes or args.slurm_partition) else None)
    opts = SlurmOptions(partition=args.slurm_partition, nodes=args.nodes, nodelist=nodelist, time_limit_s=limit)
    err.print(f"collecting through srun ({'inside allocation' if in_allocation() else 'new allocation'})")
    raws = collect_slurm(script, opts, expected_nodes=list(by_name) if nodelist and by_name else None)
    for raw in raws:
        node = by_name.get(raw.name)
        if node is not None:
            raw.expect, raw.expect_sources = _expect_of(node)
            raw.thresholds = {k: dict(v) for k, v in dict(node.thresholds or {}).items()}
    bundle = Bundle(nodes=raws, tool_version=__version__, inventory={"path": args.inventory},
                    options={"transport": "slurm", "probes": [p.id for p in select_probes(include)]})
    if args.save:
        from preflight.collect.bundle import save_bundle

        err.print(f"bundle saved: {save_bundle(bundle, args.save)}")
    return bundle


def cmd_run(args: argparse.Namespace) -> int:
    _out, err = _consoles(args)
    if args.slurm:
        bundle = _slurm_bundle(args, err)
        if bundle is None:
            return EXIT_CANNOT_RUN
        return _emit(args, bundle, {"kind": "live", "bundle": args.save, "label": "slurm", "inventory": args.inventory})
    if not (args.inventory or args.host_list):
        err.print("[bold red]preflight: give -i INVENTORY or -H HOSTS (or --slurm)[/]")
        return EXIT_CANNOT_RUN
    if interactive(args):
        from preflight.tui import run_live

        return run_live(args)
    bundle = _live_bundle(args, err)
    if bundle is None:
        return EXIT_CANNOT_RUN
    return _emit(args, bundle, {"kind": "live", "bundle": args.save, "label": None, "inventory": args.inventory})


def cmd_plan(args: argparse.Namespace) -> int:
    """Exit 0 when a safe layout exists, 2 when none does, 3 when it cannot plan."""
    from preflight import cli_plan
    from preflight.collect.bundle import BundleError, load_bundle
    from preflight.engine import judge
    from preflight.plan.errors import PlanError

    out, err = _consoles(args)
    try:
        cli_plan.load_plan_model(args)
        cli_plan.plan_options(args)
        if args.bundle and (args.inventory or args.host_list):
            raise ValueError("give --bundle or -i/-H, not both")
        if args.bundle:
            bundle, source = load_bundle(args.bundle), Path(args.bundle).name
        elif args.inventory or args.host_list:
            bundle, source = _live_bundle(args, err), str(args.inventory or args.host_list)
            if bundle is None:
                return EXIT_CANNOT_RUN
        else:
            bundle, source = load_bundle(demo_bundle_path()), "demo"
            err.print(DEMO_LABEL)
        if args.verify and not (args.inventory or args.host_list):
            raise ValueError("--verify runs tests on the fleet: give -i INVENTORY or -H HOSTS")
        report, facts = judge(_overrides(args).apply_to_bundle(bundle))
        result = cli_plan.build(args, report, facts, source)
        verified = cli_plan.verify(args, result, err) if args.verify else None
    except (BundleError, PlanError, ValueError) as exc:
        err.print(f"[bold red]preflight plan: {exc}[/]")
        return EXIT_CANNOT_RUN
    if args.json:
        doc = {"schema": "preflight-plan", "schema_version": 1, **result.to_dict()}
        if verified is not None:
            doc["verify"] = verified.to_dict()
        _write_json(args.json, doc)
    if not args.quiet and args.json != "-":
        cli_plan.render(args, result, out)
        if verified is not None:
            cli_plan.render_verify(verified, out)
    if verified is not None and not verified.passed:
        return 2
    return 0 if result.plan.recommend_throughput else 2


def _collect_with_progress(nodes: list[Any], options: Any, err: Console, *, inventory_path: str | None,
                           include_optional: tuple[str, ...] = (), **collect_kw: Any) -> Any:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from preflight.live import collect

    if err.is_terminal:
        with Progress(TextColumn("collecting"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      TextColumn("{task.description}"), console=err, transient=True) as progress:
            task = progress.add_task("", total=len(nodes))

            def on_event(kind: str, name: str, raw: Any) -> None:
                if kind == "finished":
                    progress.update(task, advance=1, description=f"{name}: {raw.outcome}")

            return collect(nodes, options, inventory_path=inventory_path, on_event=on_event,
                           include_optional=include_optional, **collect_kw)
    done = [0]

    def on_line(kind: str, name: str, raw: Any) -> None:
        if kind == "finished":
            done[0] += 1
            err.print(f"[{done[0]}/{len(nodes)}] {name}: {raw.outcome} ({raw.duration_s:.1f}s)"
                      + (f" {raw.message}" if raw.outcome != "ok" else ""), soft_wrap=True)

    return collect(nodes, options, inventory_path=inventory_path, on_event=on_line, include_optional=include_optional,
                   **collect_kw)


def cmd_replay(args: argparse.Namespace) -> int:
    from preflight.collect.bundle import BundleError, load_bundle

    _out, err = _consoles(args)
    try:
        bundle = load_bundle(args.bundle)
        _select(args)
    except (BundleError, ValueError) as exc:
        err.print(f"[bold red]preflight: {exc}[/]")
        return EXIT_CANNOT_RUN
    label = DEMO_LABEL if bundle.label == "recording" else f"replay of {args.bundle}"
    return _emit(args, bundle, {"kind": "replay", "bundle": str(args.bundle), "label": bundle.label or None,
                                "inventory": bundle.inventory.get("path")}, label)


def demo_bundle_path() -> Path:
    return Path(str(resources.files("preflight.data").joinpath("demo", "bundle.json")))


def cmd_demo(args: argparse.Namespace) -> int:
    from preflight.collect.bundle import load_bundle

    bundle = load_bundle(demo_bundle_path())
    code = _emit(args, bundle, {"kind": "demo", "bundle": "preflight/data/demo/bundle.json", "label": bundle.label,
                                "inventory": bundle.inventory.get("path")}, DEMO_LABEL)
    # The recording's faults are the point of the demo, not a failure of it: exit 0 unless asked.
    return code if (args.strict or code == EXIT_CANNOT_RUN) else 0


def cmd_tui(args: argparse.Namespace) -> int:
    from preflight.collect.bundle import BundleError, load_bundle
    from preflight.tui import run_bundle

    _out, err = _consoles(argparse.Namespace(no_color=False))
    path = args.bundle or str(demo_bundle_path())
    try:
        load_bundle(path)  # a clear error before the screen takes over
    except BundleError as exc:
        err.print(f"[bold red]preflight: {exc}[/]")
        return EXIT_CANNOT_RUN
    return run_bundle(path, model=args.model)


def cmd_hang(args: argparse.Namespace) -> int:
    """Exit 0 with a likely cause named, 2 when none, 3 when it cannot gather."""
    import re

    from preflight.collect.bundle import BundleError, load_bundle, save_bundle
    from preflight.collect.probes import HANG_BASE, HANG_PROBES
    from preflight.hang.live import judge_hang
    from preflight.inventory import InventoryError
    from preflight.report import hang_console

    out, err = _consoles(args)
    try:
        re.compile(args.job_pattern)
        if args.bundle:
            bundle = load_bundle(args.bundle)
        elif args.inventory or args.host_list:
            import dataclasses
            import time as _time

            from preflight.transport.fanout import ConnectionPool

            req = live_request(args)
            job = {"pattern": args.job_pattern, "pyspy": not args.no_pyspy, "ib_interval_s": max(0.0, args.ib_interval)}
            with ConnectionPool() as pool:
                options = dataclasses.replace(req.options, pool=pool)
                for sweep in range(max(1, args.sweeps)):
                    t0 = _time.monotonic()
                    bundle = _collect_with_progress(list(req.nodes), options, err, inventory_path=req.inventory_path,
                                                    include_optional=HANG_PROBES, only=HANG_BASE + HANG_PROBES, job=job)
                    if args.sweeps > 1:
                        err.print(f"sweep {sweep + 1}: {_time.monotonic() - t0:.2f} s, {pool.opened} connection(s) "
                                  f"opened, {pool.reused} reused")
            bundle.label = "hang"
            if req.save:
                err.print(f"bundle saved: {save_bundle(bundle, req.save)}")
        else:
            raise ValueError("give -i INVENTORY / -H HOSTS to gather, or --bundle DIR to judge a saved gather")
    except re.error as exc:
        err.print(f"[bold red]preflight hang: bad --job-pattern: {exc}[/]")
        return EXIT_CANNOT_RUN
    except (BundleError, InventoryError, ValueError) as exc:
        err.print(f"[bold red]preflight hang: {exc}[/]")
        return EXIT_CANNOT_RUN
    try:
        result = judge_hang(bundle)
    except (ValueError, TypeError, KeyError, AttributeError) as exc:  # a hand-edited or foreign bundle
        err.print(f"[bold red]preflight hang: cannot judge this gather: {type(exc).__name__}: {exc}[/]")
        return EXIT_CANNOT_RUN
    if args.json:
        _write_json(args.json, {"schema": "preflight-hang", "schema_version": 1, **result.to_dict()})
    if args.tui and sys.stdout.isatty():
        from preflight.tui.screens.hang import HangApp

        code = HangApp(result).run()
        return 3 if code is None else int(code)
    if not args.quiet and args.json != "-":
        hang_console.render(result.verdict, out, title="preflight hang", live_rows=result.ranks)
        if result.nodes_without_job:
            out.print(f"[dim]no rank (a process matching {args.job_pattern!r} with RANK / OMPI_COMM_WORLD_RANK / "
                      f"SLURM_PROCID in its environment) on: {', '.join(result.nodes_without_job)}[/]", soft_wrap=True)
    return 0 if result.verdict.causes else 2


def cmd_analyze(args: argparse.Namespace) -> int:
    """Exit 0 with a likely cause named, 2 when the inputs name none, 3 when no input could be read."""
    from preflight.hang.verdict import analyze
    from preflight.report import hang_console

    out, err = _consoles(args)
    missing = [p for p in args.paths if not Path(p).exists()]
    if len(missing) == len(args.paths):
        err.print(f"[bold red]preflight analyze: not found: {', '.join(missing)}[/]")
        return EXIT_CANNOT_RUN
    verdict = analyze([Path(p) for p in args.paths])
    if args.json:
        _write_json(args.json, {"schema": "preflight-hang", "schema_version": 1, **verdict.to_dict()})
    if not args.quiet and args.json != "-":
        hang_console.render(verdict, out)
    return 0 if verdict.causes else 2


def cmd_checks(args: argparse.Namespace) -> int:
    from preflight.report.checks_doc import checks_markdown
    from preflight.engine import all_checks

    if args.markdown:
        sys.stdout.write(checks_markdown())
        return 0
    console = Console(highlight=False, emoji=False)
    for spec in all_checks():
        console.print(f"[bold]{spec.id}[/] [dim]({spec.group}, {spec.scope})[/] {spec.summary}")
    return 0


def cmd_nccl_multinode(args: argparse.Namespace) -> int:
    from rich.markup import escape

    from preflight.inventory import InventoryError, load_inventory
    from preflight.multinode import LaunchSpec, judge_run, locate_slow_nodes, run_test
    from preflight.transport.fanout import run_command
    from preflight.transport.ssh import SshOptions

    console = Console(highlight=False, emoji=False)
    err = Console(stderr=True, highlight=False, emoji=False)
    try:
        inv = load_inventory(args.inventory)
        if args.limit:
            inv = inv.select(args.limit)
    except InventoryError as exc:
        err.print(f"[bold red]preflight: {exc}[/]")
        return EXIT_CANNOT_RUN
    nodes = list(inv.nodes)
    launcher = next((n for n in nodes if n.name == args.launcher_node), None) if args.launcher_node else nodes[0]
    if launcher is None:
        err.print(f"[bold red]preflight: launcher node {args.launcher_node!r} is not in the selection[/]")
        return EXIT_CANNOT_RUN
    gpus = args.gpus_per_node or int(launcher.expect.gpus_per_node or 8)
    via = args.via or ("srun" if inv.slurm else "mpirun")
    threshold = args.min_busbw or launcher.expect.allreduce_busbw_gbps_min
    ssh = SshOptions(known_hosts=tuple(inv.known_hosts) + tuple(args.known_hosts), ssh_config_path=inv.ssh_config)

    def runner(argv: list[str]) -> tuple[int | None, str, str]:
        return run_command(launcher, argv, ssh, args.timeout)

    hosts = tuple(n.name for n in nodes)
    whole = run_test(LaunchSpec(hosts=hosts, gpus_per_node=gpus, launcher=via), runner)
    console.print(f"[bold]{via}[/] on {launcher.name}: {whole.command}")
    if whole.result is None:
        console.print(f"[bold red]no result[/]: {whole.error}")
    else:
        console.print(f"{len(hosts)} nodes × {gpus} GPUs: busbw {whole.busbw} GB/s at the largest size"
                      + (f" (expected >= {threshold:g})" if threshold else ""))
    judged = judge_run(whole, threshold, launcher.expect.get("nccl_net"))
    style = {"pass": "green", "warn": "yellow", "fail": "bold red"}[judged.status]
    console.print(f"[{style}]{judged.status}[/]: " + escape("; ".join(judged.reasons)), soft_wrap=True)
    for line in judged.evidence:
        console.print("  " + escape(line), soft_wrap=True)
    doc: dict[str, Any] = {"launcher": launcher.name, "via": via, "command": whole.command, "busbw": whole.busbw,
                           "error": whole.error, "threshold": threshold, "status": judged.status,
                           "reasons": list(judged.reasons), "transport": list(whole.net.transports),
                           "evidence": list(judged.evidence)}
    low = whole.busbw is None or (threshold is not None and whole.busbw < threshold) or judged.status == "fail"
    if args.pairs and threshold is not None and len(hosts) >= 2:
        verdict, outcomes = locate_slow_nodes(hosts, gpus, threshold, runner, launcher=via)
        for a, b, bw in verdict.pairs:
            console.print(f"  pair {a} + {b}: {bw if bw is not None else 'failed'} GB/s")
        console.print(f"slow: {', '.join(verdict.slow) or 'none'}; suspect: {', '.join(verdict.suspect) or 'none'}")
        doc["pairs"] = [{"hosts": [a, b], "busbw": bw} for a, b, bw in verdict.pairs]
        doc["slow"], doc["suspect"] = list(verdict.slow), list(verdict.suspect)
    if args.json:
        _write_json(args.json, doc)
    return 2 if low else 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handlers = {"run": cmd_run, "replay": cmd_replay, "demo": cmd_demo, "checks": cmd_checks,
                "nccl-multinode": cmd_nccl_multinode, "plan": cmd_plan, "tui": cmd_tui,
                "analyze": cmd_analyze, "hang": cmd_hang}
    try:
        return handlers[args.command](args)
    except KeyboardInterrupt:
        print("preflight: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
