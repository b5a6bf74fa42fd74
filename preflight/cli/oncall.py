"""On-call commands: `hang` (gather from a hung job's nodes), `analyze` (files copied off), `nccl-multinode`."""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from preflight.cli.common import consoles, write_json
from preflight.collect.bundle import Bundle
from preflight.results import EXIT_CANNOT_RUN


def cmd_hang(args: argparse.Namespace) -> int:
    """Exit 0 with a likely cause named, 2 when none, 3 when it cannot gather."""
    from preflight.collect.bundle import BundleError, load_bundle
    from preflight.hang.gather import judge_hang
    from preflight.inventory import InventoryError
    from preflight.report import hang_console

    out, err = consoles(args)
    try:
        re.compile(args.job_pattern)
        if args.bundle:
            bundle = load_bundle(args.bundle)
        elif args.inventory or args.host_list or getattr(args, "ansible_inventory", None):
            bundle = _gather(args, err)
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
    from preflight.cli.history import record_hang

    record_hang(args, result.verdict, 0 if result.verdict.causes else 2)  # the run history; never fails the command
    if args.json:
        write_json(args.json, {"schema": "preflight-hang", "schema_version": 1, **result.to_dict()})
    if args.tui and sys.stdout.isatty():
        from preflight.tui import run_hang_result

        return run_hang_result(result)
    if not args.quiet and args.json != "-":
        hang_console.render(result.verdict, out, title="preflight hang", live_rows=result.ranks)
        if result.nodes_without_job:
            out.print(f"[dim]no rank (a process matching {args.job_pattern!r} with RANK / OMPI_COMM_WORLD_RANK / "
                      f"SLURM_PROCID in its environment) on: {', '.join(result.nodes_without_job)}[/]", soft_wrap=True)
        for note in result.notes:
            out.print(f"[dim]{escape(note)}[/]", soft_wrap=True)
    return 0 if result.verdict.causes else 2


def _gather(args: argparse.Namespace, err: Console) -> Bundle:
    """`--sweeps` gathers over the same open connections; the bundle is the last sweep's (saved with --save)."""
    from preflight.cli.progress import collect_with_progress, live_request
    from preflight.collect.bundle import save_bundle
    from preflight.collect.probes import FR_PROBE, HANG_BASE, HANG_PROBES
    from preflight.hang.ib_rates import SWEEP_KEY, first_sweep
    from preflight.session import LiveSession

    req = live_request(args)
    job = {"pattern": args.job_pattern, "pyspy": not args.no_pyspy, "ib_interval_s": max(0.0, args.ib_interval)}
    first: dict[str, Any] = {}
    with LiveSession(req, keep_connections=True) as session:
        for sweep in range(max(1, args.sweeps)):
            t0 = time.monotonic()
            # --dump-fr: the flight-recorder trigger rides the last sweep only (the verdict is that sweep's)
            fr = (FR_PROBE,) if getattr(args, "dump_fr", False) and sweep == max(1, args.sweeps) - 1 else ()
            swept = {**job, "dump_fr": {"wait_s": max(0.0, args.fr_wait)}} if fr else job
            bundle = collect_with_progress(session, err, include_optional=HANG_PROBES + fr,
                                           only=HANG_BASE + HANG_PROBES + ("ib_sysfs",) + fr, job=swept)
            if args.sweeps > 1:
                err.print(f"sweep {sweep + 1}: {time.monotonic() - t0:.2f} s, {session.pool.opened} connection(s) "
                          f"opened, {session.pool.reused} reused")
            first = first or first_sweep(bundle)  # IB error counters as rates between the first and last sweep
        if args.sweeps > 1 and first:
            bundle.options = {**bundle.options, SWEEP_KEY: first}
        _ask_ras(session, bundle, job, err)
    bundle.label = "hang"
    if req.save:
        err.print(f"bundle saved: {save_bundle(bundle, req.save)}")
    return bundle


def _ask_ras(session: Any, bundle: Bundle, job: dict[str, Any], err: Console) -> None:
    """Ask the job's NCCL RAS service once, from the node of its lowest rank (hang/ras_live.py picks it); its
    answer joins that node's raw in the bundle (saved with --save), why not goes to bundle.options['ncclras']."""
    from preflight.hang.gather import ranks_of
    from preflight.hang.ras_live import RAS_PROBE, ras_target

    ranks = [r for raw in bundle.nodes if raw.outcome == "ok" for r in ranks_of(raw)]
    node, cfg, why = ras_target(bundle, ranks)
    bundle.options = {**bundle.options, "ncclras": why}
    if node is None:
        return
    answer = session.collect([node], only=(RAS_PROBE,), include_optional=(RAS_PROBE,), job={**job, "ras": cfg})
    got = next((r.probe(RAS_PROBE) for r in answer.nodes if r.name == node), None)
    target = next((r for r in bundle.nodes if r.name == node), None)
    if got is None or target is None or target.collector is None:
        bundle.options = {**bundle.options, "ncclras": f"{why}: no answer from {node}"}
        return
    target.collector.setdefault("probes", {})[RAS_PROBE] = got
    err.print(f"ncclras: {why}: {'answered' if (got.get('stdout') or '').strip() else got.get('error') or 'no output'}")


def cmd_analyze(args: argparse.Namespace) -> int:
    """Exit 0 with a likely cause named, 2 when the inputs name none, 3 when no input could be read."""
    from preflight.hang.verdict import analyze
    from preflight.report import hang_console

    out, err = consoles(args)
    missing = [p for p in args.paths if not Path(p).exists()]
    if len(missing) == len(args.paths):
        err.print(f"[bold red]preflight analyze: not found: {', '.join(missing)}[/]")
        return EXIT_CANNOT_RUN
    verdict = analyze([Path(p) for p in args.paths])
    if args.json:
        write_json(args.json, {"schema": "preflight-hang", "schema_version": 1, **verdict.to_dict()})
    if not args.quiet and args.json != "-":
        if len(verdict.jobs) > 1:
            out.print(f"[bold]preflight hang analysis[/]: {escape(verdict.summary)}", soft_wrap=True)
            for job in verdict.jobs:
                out.rule(f"job {job.index}: {len(job.files)} file(s)")
                out.print(f"[dim]{escape(job.description)}"
                          + (f"; together by {escape(', '.join(job.why[:3]))}" if job.why else "") + "[/]", soft_wrap=True)
                hang_console.render(job.verdict, out, title=f"job {job.index}")
        else:
            hang_console.render(verdict, out)
        if len(verdict.jobs) > 1 or not verdict.causes or len(verdict.files) <= 12:
            _files_table(verdict, out)
        else:
            out.print(f"[dim]{len(verdict.files)} file(s) read, one job; the files table is in --json (files)[/]")
    return 0 if verdict.causes else 2


def _files_table(verdict: Any, out: Console) -> None:
    """Every input: the job it went to, what it was read as, and why not when it was not."""
    from rich.table import Table

    t = Table(title="files", title_justify="left")
    for col in ("job", "file", "read as", "note"):
        t.add_column(col, overflow="fold")
    for f in verdict.files:
        t.add_row(str(f.job) if f.job is not None else "–", escape(f.path), escape(", ".join(f.kinds) or "not recognised"),
                  escape(f.note))
    out.print(t)


def cmd_nccl_multinode(args: argparse.Namespace) -> int:
    """Exit 0 when the run is fast enough and proves its network, 2 when not, 3 when it cannot run."""
    from rich.markup import escape

    from preflight.inventory import InventoryError, load_inventory
    from preflight.multinode import LaunchSpec, judge_run, run_test

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
    runner = _runner(launcher, inv, args)
    hosts = tuple(n.name for n in nodes)
    whole = run_test(LaunchSpec(hosts=hosts, gpus_per_node=gpus, launcher=via), runner)
    console.print(f"[bold]{via}[/] on {launcher.name}: {whole.command}")
    if whole.result is None:
        console.print(f"[bold red]no result[/]: {whole.error}")
    else:
        console.print(f"{len(hosts)} nodes × {gpus} GPUs: busbw {whole.busbw} GB/s at the largest size"
                      + (f" (expected >= {threshold:g})" if threshold else ""))
    derived = _derived_expectation(args, gpus) if threshold is None and "IB" in whole.net.transports else None
    judged = judge_run(whole, threshold, launcher.expect.get("nccl_net"), derived)
    style = {"pass": "green", "warn": "yellow", "fail": "bold red"}[judged.status]
    console.print(f"[{style}]{judged.status}[/]: " + escape("; ".join(judged.reasons)), soft_wrap=True)
    for line in judged.evidence:
        console.print("  " + escape(line), soft_wrap=True)
    doc: dict[str, Any] = {"launcher": launcher.name, "via": via, "command": whole.command, "busbw": whole.busbw,
                           "error": whole.error, "threshold": threshold, "status": judged.status,
                           "reasons": list(judged.reasons), "transport": list(whole.net.transports),
                           "gdrdma": whole.net.gdrdma, "derived_threshold": list(derived) if derived else None,
                           "evidence": list(judged.evidence), "hosts": list(hosts), "gpus_per_node": gpus}
    low = whole.busbw is None or (threshold is not None and whole.busbw < threshold) or judged.status == "fail"
    if args.pairs and threshold is not None and len(hosts) >= 2:
        doc.update(_pairs(hosts, gpus, threshold, runner, via, console))
    low = low or (derived is not None and whole.busbw is not None and whole.busbw < derived[0])
    if args.json:
        write_json(args.json, doc)
    if args.save:
        err.print(_save_measurement(args.save, doc))
    return 2 if low else 0


def _derived_expectation(args: argparse.Namespace, gpus: int) -> tuple[float, str] | None:
    """What the nodes' own IB ports should give (multinode.expected_busbw), from one sweep of ibstat and
    /sys/class/infiniband over SSH; None when a node cannot be read or shows no active port."""
    from preflight.multinode import expected_busbw
    from preflight.parse.node import build_node_facts
    from preflight.session import LiveSession
    from preflight.session.request import RunArgs, live_request

    req = live_request(RunArgs(inventory=args.inventory, limit=args.limit, known_hosts=tuple(args.known_hosts)))
    bundle = LiveSession(req).collect(only=("ibstat", "ib_sysfs"))
    ports: dict[str, list[float]] = {}
    for raw in bundle.nodes:
        facts = build_node_facts(raw)
        if facts.ib is None:
            return None
        ports[raw.name] = [float(p.rate_gbps) for p in facts.ib
                           if p.rate_gbps and (p.state or "").lower() == "active"]
    return expected_busbw(ports, gpus)


def _save_measurement(directory: str, doc: dict[str, Any]) -> str:
    """Add this run to the bundle in DIR (`preflight run --save DIR` made it) as options["multinode"], where
    `preflight plan --bundle DIR` finds it: the measured fabric joins the node facts it belongs to."""
    import time
    from pathlib import Path

    from preflight.collect.bundle import BUNDLE_FILE, Bundle, BundleError, load_bundle, save_bundle

    path = Path(directory)
    try:
        bundle = load_bundle(path) if (path / BUNDLE_FILE).exists() or path.suffix == ".json" else Bundle(nodes=[])
    except BundleError as exc:
        return f"not saved: {exc}"
    record = {k: doc.get(k) for k in ("busbw", "status", "transport", "gdrdma", "hosts", "gpus_per_node",
                                      "command", "threshold", "derived_threshold")}
    record["created"] = time.time()
    bundle.options = {**bundle.options, "multinode": [*list(bundle.options.get("multinode") or []), record]}
    target = save_bundle(bundle, path)
    return f"measurement saved: {target} (options.multinode, {len(bundle.options['multinode'])} run(s))"


def _runner(launcher: Any, inv: Any, args: argparse.Namespace) -> Any:
    """argv -> (rc, stdout, stderr) on the launcher node over SSH, bounded by --timeout."""
    from preflight.transport.fanout import run_command
    from preflight.transport.ssh import SshOptions

    ssh = SshOptions(known_hosts=tuple(inv.known_hosts) + tuple(args.known_hosts), ssh_config_path=inv.ssh_config)

    def runner(argv: list[str]) -> tuple[int | None, str, str]:
        return run_command(launcher, argv, ssh, args.timeout)

    return runner


def _pairs(hosts: tuple[str, ...], gpus: int, threshold: float, runner: Any, via: str,
           console: Console) -> dict[str, Any]:
    """Every node in two 2-node runs (ring order): the slow node and the suspects, printed and as JSON."""
    from preflight.multinode import locate_slow_nodes

    verdict, _outcomes = locate_slow_nodes(hosts, gpus, threshold, runner, launcher=via)
    for a, b, bw in verdict.pairs:
        console.print(f"  pair {a} + {b}: {bw if bw is not None else 'failed'} GB/s")
    console.print(f"slow: {', '.join(verdict.slow) or 'none'}; suspect: {', '.join(verdict.suspect) or 'none'}")
    return {"pairs": [{"hosts": [a, b], "busbw": bw} for a, b, bw in verdict.pairs],
            "slow": list(verdict.slow), "suspect": list(verdict.suspect)}
