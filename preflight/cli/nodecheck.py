"""`preflight node-check`: the collector and the judgement on this node itself (no SSH), for Slurm's
HealthCheckProgram, a prolog or an epilog.

Exit codes (docs/slurm.md): 0 healthy; 1 warnings only, with --fail-on warn; 2 unhealthy (a check failed or
could not judge); 3 could not run (bad arguments, an --expect file that does not validate, the collector did not
answer within --timeout). With --drain-self an unhealthy node drains itself (`scontrol update nodename=<this
node> state=drain reason="preflight: <check> <observed>"`); a node a person drained keeps that person's reason.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import socket
import sys
from typing import Any

from preflight.results import EXIT_CANNOT_RUN, EXIT_FAIL, RunReport, exit_code


def node_name(args: argparse.Namespace) -> str:
    return args.node_name or os.environ.get("SLURMD_NODENAME") or socket.gethostname().split(".")[0]


def this_node(args: argparse.Namespace, name: str) -> Any:
    """The controller itself as an inventory node named `name`, with the --expect FILE's expectations
    (read by the inventory's own readers: a bad key or value is an InventoryError naming it)."""
    import yaml

    from preflight.inventory import InventoryError, inventory_from_hosts

    doc: dict[str, Any] = {}
    if args.expect:
        try:
            with open(args.expect) as fh:
                doc = yaml.safe_load(fh) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ValueError(f"--expect {args.expect}: {exc}") from exc
        if not isinstance(doc, dict) or set(doc) - {"expect", "thresholds"}:
            raise InventoryError(args.expect, None, "", "a mapping with `expect:` (and optionally `thresholds:`)")
    node = inventory_from_hosts(["local"], expect=doc.get("expect"), thresholds=doc.get("thresholds")).nodes[0]
    sources = dict.fromkeys(node.expect_sources, f"{args.expect} expect")
    return dataclasses.replace(node, name=name, command_timeout_s=max(5.0, float(args.timeout) - 5),
                               expect_sources=sources)


def cmd_node_check(args: argparse.Namespace) -> int:
    from preflight.cli.common import select
    from preflight.inventory import InventoryError

    name = node_name(args)
    try:
        specs = select(args)
        node = this_node(args, name)
    except (InventoryError, ValueError) as exc:
        print(f"preflight node-check: {exc}", file=sys.stderr)
        return EXIT_CANNOT_RUN
    report = _judge(node, specs, float(args.timeout))
    code = exit_code(report, args.fail_on)
    nrep = report.nodes[0] if report.nodes else None
    if nrep is not None and nrep.outcome != "ok":
        code = EXIT_CANNOT_RUN  # the collector did not answer: a fact about the tool run, not the node's health
    if args.json:
        from preflight.cli.common import write_json
        from preflight.report.json_report import report_dict

        write_json(args.json, report_dict(report, source={"kind": "live", "bundle": None, "label": "node-check",
                                                          "inventory": args.expect}, fail_on=args.fail_on))
    if not args.quiet and nrep is not None:
        from preflight.actions.suggest import node_action

        print(f"preflight node-check {name}: {nrep.status.value} (exit {code}; action {node_action(nrep)}): {nrep.reason}")
    if args.drain_self and code == EXIT_FAIL:
        _drain_self(args, report, name)
    return code


def _judge(node: Any, specs: Any, timeout_s: float) -> RunReport:
    from preflight.engine import judge
    from preflight.session import LiveSession
    from preflight.session.request import RunArgs, live_request

    req = dataclasses.replace(live_request(RunArgs(host_list="local", timeout=timeout_s)), nodes=(node,))
    with LiveSession(req) as session:
        bundle = session.collect()
    report, _facts = judge(bundle, specs, cache=session.facts)
    return report


def _drain_self(args: argparse.Namespace, report: RunReport, name: str) -> None:
    """Drain this node with preflight's reason; a drain a person set stays as it is."""
    from preflight.actions.slurm import plan_drain
    from preflight.session.slurm import apply_actions, slurm_node_states

    try:
        states = slurm_node_states([name], scontrol=args.scontrol)
    except Exception as exc:  # scontrol missing or hung: say so, the exit code already says unhealthy
        print(f"preflight node-check: cannot read {name}'s Slurm state: {exc}", file=sys.stderr)
        return
    for act, rc, msg in apply_actions(plan_drain(report, states, scontrol=args.scontrol)):
        print(f"{'drained' if rc == 0 else 'drain FAILED'}: {act.line()}" + (f" ({msg})" if msg else ""),
              file=sys.stderr)
    for act in plan_drain(report, states, scontrol=args.scontrol):
        if act.verb == "skip":
            print(f"not drained: {act.line()}", file=sys.stderr)
