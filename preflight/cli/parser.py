"""The argparse tree, one builder per subcommand. Every usage error is exit 3 with one line (see `_Parser`)."""

from __future__ import annotations

import argparse
from typing import Any, NoReturn

from preflight import __version__
from preflight.cli.plan_args import add_plan_args
from preflight.results import EXIT_CANNOT_RUN

Subparsers = Any  # argparse's _SubParsersAction, private in typeshed


class _Parser(argparse.ArgumentParser):
    """Bad command-line input is 'cannot run' (exit 3, one line), never exit 2, which means findings failed."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_CANNOT_RUN, f"{self.prog}: {message} (try '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    ap = _Parser(prog="preflight", description="GPU-fleet preflight and diagnostics.")
    ap.add_argument("--version", action="version", version=f"preflight {__version__}")
    sub = ap.add_subparsers(dest="command", required=True)
    for add in (_add_run, _add_replay, _add_merge, _add_demo, _add_plan, _add_multinode, _add_tui, _add_hang, _add_analyze,
                _add_checks, _add_history, _add_node_check):
        add(sub)
    return ap


def _add_run(sub: Subparsers) -> None:
    run = sub.add_parser("run", help="collect from the nodes of an inventory over SSH (or Slurm) and judge")
    _add_connection_args(run, required=False)
    _add_shard_arg(run)
    _add_slurm_args(run)
    run.add_argument("--headless", action="store_true",
                     help="no interactive UI (automatic when stdout is not a terminal or CI is set); progress lines on stderr")
    add_plan_args(run, required=False)
    _add_output_args(run)
    _add_history_args(run)


def _add_replay(sub: Subparsers) -> None:
    rep = sub.add_parser("replay", help="judge a saved bundle again (same parsing and checks as a live run)")
    rep.add_argument("bundle", help="bundle directory or bundle.json")
    _add_output_args(rep)
    rep.add_argument("--record", action="store_true", help="append this replay's verdicts to the run history")
    _add_history_args(rep)
    add_plan_args(rep, required=False)


def _add_merge(sub: Subparsers) -> None:
    mg = sub.add_parser("merge", help="join the shards of `run --shard K/N` (their bundles, or JSON reports) into one "
                                      "fleet verdict: fleet-wide checks judged across every shard (docs/scale.md)")
    mg.add_argument("inputs", nargs="+", metavar="BUNDLE|REPORT",
                    help="each shard's bundle (directory or bundle.json from --save) or JSON report (--json): all one kind")
    mg.add_argument("--save", metavar="DIR", help="save the merged bundle to DIR (replay it with `preflight replay DIR`)")
    _add_output_args(mg)
    g = mg.add_argument_group("Slurm actions (on the merged verdict)")
    g.add_argument("--drain", action="store_true", help="as `run --slurm --drain`: drain the nodes the merged verdict "
                                                        "excludes (prints the scontrol lines; --apply runs them)")
    g.add_argument("--resume", action="store_true", help="as `run --slurm --resume`, on the merged verdict")
    g.add_argument("--apply", action="store_true", help="run the --drain/--resume scontrol commands (default: print them)")
    mg.add_argument("--record", action="store_true", help="append the merged verdicts to the run history "
                                                          "(each shard's run was recorded already)")
    _add_history_args(mg)
    add_plan_args(mg, required=False)


def _add_demo(sub: Subparsers) -> None:
    demo = sub.add_parser("demo", help="replay the bundled recording of a small simulated fleet")
    demo.add_argument("--strict", action="store_true",
                      help="exit with the recording's own exit code (2: it contains failures) instead of 0")
    _add_output_args(demo)
    add_plan_args(demo, required=False)


def _add_plan(sub: Subparsers) -> None:
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


def _add_multinode(sub: Subparsers) -> None:
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
    mn.add_argument("--save", metavar="DIR", help="add this measurement to the bundle in DIR (from `preflight run "
                                                  "--save DIR`): `preflight plan --bundle DIR` then uses it")


def _add_tui(sub: Subparsers) -> None:
    tui = sub.add_parser("tui", help="browse a saved bundle (or the demo recording) in the interactive UI")
    tui.add_argument("bundle", nargs="?", help="bundle directory or bundle.json (default: the demo recording)")
    tui.add_argument("--model", help="model for the plan screen (catalog name or config.json)")


def _add_hang(sub: Subparsers) -> None:
    hg = sub.add_parser("hang", help="on-call: why does this NCCL job hang? one round trip per node: the job's ranks, "
                                     "their stacks (py-spy), GPU use, Xid lines, IB counters read twice, NCCL debug files")
    hg.add_argument("--bundle", help="judge a saved hang gather again (from --save) instead of collecting")
    _add_connection_args(hg, required=False)
    _add_shard_arg(hg)
    hg.add_argument("--job-pattern", default=r"python|torchrun|deepspeed|accelerate|all_reduce_perf",
                    help="regex on process command lines that selects the job's ranks (default: python|torchrun|...)")
    hg.add_argument("--no-pyspy", action="store_true", help="do not run py-spy dump on the ranks")
    hg.add_argument("--ib-interval", type=float, default=3.0, help="seconds between the two IB counter reads (default 3)")
    hg.add_argument("--sweeps", type=int, default=1,
                    help="gather this many times over the same open SSH connections (watch a hang evolve); "
                         "the verdict is the last sweep's")
    hg.add_argument("--dump-fr", action="store_true",
                    help="also trigger each rank's PyTorch flight-recorder dump through the pipe its environment names "
                         "(TORCH_NCCL_DEBUG_INFO_PIPE_FILE), collect the dumps and compare them across ranks (opt-in: "
                         "it writes to the job's pipes; training goes on)")
    hg.add_argument("--fr-wait", type=float, default=15.0, metavar="SECONDS",
                    help="with --dump-fr: how long each node waits for the dumps to be written (default 15)")
    hg.add_argument("--tui", action="store_true", help="show the verdict in the interactive ranks × causes screen")
    hg.add_argument("--json", metavar="FILE", help="write the verdict as JSON to FILE ('-' for stdout)")
    hg.add_argument("--no-color", action="store_true")
    hg.add_argument("--quiet", "-q", action="store_true")
    _add_history_args(hg)


def _add_analyze(sub: Subparsers) -> None:
    an = sub.add_parser("analyze", help="on-call: find why an NCCL job hangs from files copied off the cluster "
                                        "(NCCL_DEBUG logs, PyTorch watchdog timeouts, flight-recorder dumps, kernel logs)")
    an.add_argument("paths", nargs="+", help="files or directories (walked)")
    an.add_argument("--json", metavar="FILE", help="write the verdict as JSON to FILE ('-' for stdout)")
    an.add_argument("--tui", action="store_true", help="show the verdict in the interactive hang screen (jobs pane)")
    an.add_argument("--no-color", action="store_true")
    an.add_argument("--quiet", "-q", action="store_true")


def _add_node_check(sub: Subparsers) -> None:
    nc = sub.add_parser("node-check", help="check this node only (no SSH), for Slurm HealthCheckProgram / prolog / "
                                           "epilog: exit 0 healthy, 1 warnings (--fail-on warn), 2 unhealthy, 3 could not run")
    nc.set_defaults(command="run", subcommand="node-check")  # cmd_run hands it to cli/nodecheck.py
    nc.add_argument("--expect", metavar="FILE", help="YAML with this node's expectations (`expect:`, optional "
                                                     "`thresholds:`), validated as an inventory's")
    nc.add_argument("--timeout", type=float, default=60.0, help="seconds for the whole check (default 60); past it: exit 3")
    nc.add_argument("--fail-on", choices=("fail", "warn"), default="fail", help="exit 1 on warnings too")
    nc.add_argument("--drain-self", action="store_true", help="when unhealthy, drain this node with scontrol and "
                                                              "preflight's reason (never one a person drained)")
    nc.add_argument("--node-name", help="Slurm name of this node (default: $SLURMD_NODENAME, else `hostname -s`)")
    nc.add_argument("--scontrol", default="scontrol", help="scontrol program (default: scontrol on PATH)")
    nc.add_argument("--checks", metavar="PATTERNS", help="only these checks (as run --checks)")
    nc.add_argument("--skip", metavar="PATTERNS", help="skip these checks")
    nc.add_argument("--json", metavar="FILE", help="write the JSON report to FILE ('-' for stdout)")
    nc.add_argument("--quiet", "-q", action="store_true", help="no output line")
    nc.add_argument("--no-color", action="store_true")


def _add_checks(sub: Subparsers) -> None:
    lst = sub.add_parser("checks", help="list the registered checks")
    lst.add_argument("--markdown", action="store_true", help="print docs/checks.md")


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
    p.add_argument("--ack", action="append", default=[], metavar="FILE",
                   help="acknowledged findings (a YAML list like an inventory's acknowledge:): shown as acknowledged, "
                        "not failing the run until they expire (repeatable)")
    _add_hostlist_args(p)
    _add_override_args(p)


def _add_hostlist_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--emit-hosts", metavar="FILE", help="write the nodes that passed (the planner's healthy set) to FILE "
                                                        "('-' for stdout), in --hosts-format")
    p.add_argument("--hosts-format", choices=("mpi", "slurm", "torchrun", "plain"), default="plain",
                   help="mpi: `host slots=GPUS` hostfile; slurm: a compressed nodelist gpu-[01-04]; torchrun: "
                        "NNODES/NPROC_PER_NODE/MASTER_ADDR/HOSTS lines to source; plain: one name a line (default)")
    p.add_argument("--emit-excluded", metavar="FILE", help="write the other nodes to FILE, one line each: name, "
                                                           "suggested action, the verdict's reason (tab-separated)")


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
    g.add_argument("--drain", action="store_true",
                   help="drain the nodes the verdict excludes, reason 'preflight: <check> <observed>' (prints the "
                        "scontrol lines; --apply runs them); a node someone else drained keeps its reason")
    g.add_argument("--resume", action="store_true",
                   help="resume nodes that pass now AND were drained by preflight (reason starts 'preflight:'); "
                        "a node drained by a person is never resumed (dry run unless --apply)")
    g.add_argument("--apply", action="store_true", help="run the --drain/--resume scontrol commands (default: print them)")


def _add_connection_args(p: argparse.ArgumentParser, *, required: bool) -> None:
    src = p.add_mutually_exclusive_group(required=required)
    src.add_argument("-i", "--inventory", help="inventory file: preflight YAML, Ansible YAML or INI (with group_vars/, "
                                               "host_vars/), or ansible-inventory --list JSON; '-' reads stdin")
    src.add_argument("--ansible-inventory", metavar="SOURCE",
                     help="run `ansible-inventory -i SOURCE --list` (when installed) and read its JSON: dynamic "
                          "inventories, plugins, vaults")
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
    p.add_argument("--mlxlink", action="store_true",
                   help="also read each IB port with `mlxlink -m -c --json` where installed: post-/pre-FEC BER, module "
                        "temperature, link downs (check ib.link_quality; `preflight hang` always does)")
    p.add_argument("--save", metavar="DIR", help="save the raw facts bundle to DIR (replay it with `preflight replay DIR`)")
    p.add_argument("--level", choices=("quick", "standard", "deep"), default="quick",
                   help="active tests per node (docs/levels.md): quick (state only, DCGM r1 where installed; "
                        "<=1 min), standard (DCGM r2, nvbandwidth, all-reduce, ib_write_bw loopback; <=5 min), "
                        "deep (DCGM r3 ...; <=30 min)")
    p.add_argument("--budget", type=float, metavar="SECONDS",
                   help="cap each node's active tests at SECONDS (default: the level's); a test that would not "
                        "fit is not started and reads 'not run', never pass")
    p.add_argument("--force", action="store_true",
                   help="run active tests even where the GPUs have compute processes (they are named otherwise)")


def _add_shard_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--shard", metavar="K/N",
                   help="only shard K of N of the selection (after -l): a stable split by node name, the same on every "
                        "controller; join the shards' bundles with `preflight merge` (docs/scale.md)")


def _add_history_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("history")
    g.add_argument("--history", metavar="PATH",
                   help="the run history (SQLite) to append to (default: $XDG_DATA_HOME/preflight/history.sqlite)")
    g.add_argument("--no-history", action="store_true", help="do not record this run in the history")


def _add_history(sub: Subparsers) -> None:
    hi = sub.add_parser("history", help="per-node trends from the run history (busbw sparkline, link flaps, first "
                                        "and last seen of each finding) and the repeat offenders")
    hi.add_argument("nodes", nargs="*", metavar="NODE", help="nodes to show (default: the repeat offenders, else all)")
    hi.add_argument("--history", metavar="PATH", help="the history file (default: $XDG_DATA_HOME/preflight/history.sqlite)")
    hi.add_argument("--k", type=int, default=3, help="a repeat offender failed in at least K ... (default 3)")
    hi.add_argument("--n", type=int, default=5, help="... of its last N runs (default 5)")
    hi.add_argument("--last", type=int, default=30, help="runs per node in the trends (default 30)")
    hi.add_argument("--limit", type=int, default=50, help="nodes shown when none is named and none offends (default 50)")
    hi.add_argument("--fail-on-offenders", action="store_true", help="exit 2 when there is a repeat offender")
    hi.add_argument("--json", metavar="FILE", help="write the trends and offenders as JSON to FILE ('-' for stdout)")
