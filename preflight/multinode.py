"""Multi-node NCCL tests launched by existing engines (mpirun or srun), and finding the slow node.

preflight never launches ranks itself: it builds the mpirun/srun command line from the inventory,
runs it on one launcher node over the same SSH transport (one round trip), parses the
nccl-tests output, and when the fleet-wide number is low, tests pairs of nodes to name the
node that drags the rest down. Command building and the pair analysis are pure functions.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from preflight.parse.common import Unparseable
from preflight.parse.nccl_tests import NcclTestResult, parse_nccl_tests

NCCL_TEST_ARGS = ("-b", "8", "-e", "8G", "-f", "2", "-g", "1")
FORWARDED_ENV = ("NCCL_DEBUG", "NCCL_IB_HCA", "NCCL_SOCKET_IFNAME", "NCCL_IB_GID_INDEX", "NCCL_NET_GDR_LEVEL",
                 "LD_LIBRARY_PATH", "PATH")


@dataclass(frozen=True)
class LaunchSpec:
    hosts: tuple[str, ...]  # addresses or names the launcher reaches (the inventory's node names by default)
    gpus_per_node: int
    launcher: str = "mpirun"  # mpirun | srun
    binary: str = "all_reduce_perf"
    test_args: tuple[str, ...] = NCCL_TEST_ARGS
    extra_env: dict[str, str] = field(default_factory=dict)  # NCCL_* settings to pass to every rank


def build_command(spec: LaunchSpec) -> list[str]:
    """argv for one multi-node run: one rank per GPU (`-g 1`), ranks spread evenly over the hosts."""
    if not spec.hosts:
        raise ValueError("no hosts to launch on")
    if spec.gpus_per_node < 1:
        raise ValueError("gpus_per_node must be at least 1")
    nranks = len(spec.hosts) * spec.gpus_per_node
    if spec.launcher == "mpirun":
        argv = ["mpirun", "--allow-run-as-root", "-np", str(nranks),
                "-H", ",".join(f"{h}:{spec.gpus_per_node}" for h in spec.hosts),
                "--bind-to", "none", "--map-by", "slot"]
        for name in FORWARDED_ENV:
            argv += ["-x", name]
        for key, value in sorted(spec.extra_env.items()):
            argv += ["-x", f"{key}={value}"]
    elif spec.launcher == "srun":
        argv = ["srun", f"--nodes={len(spec.hosts)}", f"--ntasks-per-node={spec.gpus_per_node}",
                f"--gpus-per-node={spec.gpus_per_node}", f"--nodelist={','.join(spec.hosts)}", "--mpi=pmix"]
        if spec.extra_env:
            argv.append("--export=ALL," + ",".join(f"{k}={v}" for k, v in sorted(spec.extra_env.items())))
    else:
        raise ValueError(f"unknown launcher {spec.launcher!r} (mpirun or srun)")
    return argv + [spec.binary, *spec.test_args]


def shell_line(argv: Sequence[str]) -> str:
    """The command as one shell line, every word quoted (host names come from an inventory)."""
    return " ".join(shlex.quote(a) for a in argv)


@dataclass(frozen=True)
class RunOutcome:
    hosts: tuple[str, ...]
    command: str
    rc: int | None
    result: NcclTestResult | None
    error: str = ""

    @property
    def busbw(self) -> float | None:
        if self.result is None:
            return None
        big = self.result.busbw_at_largest()
        return big[1] if big else None


Runner = Callable[[list[str]], tuple[int | None, str, str]]  # argv -> (rc, stdout, stderr), on the launcher node


def run_test(spec: LaunchSpec, runner: Runner) -> RunOutcome:
    argv = build_command(spec)
    rc, out, err = runner(argv)
    parsed = parse_nccl_tests(out)
    if isinstance(parsed, Unparseable):
        return RunOutcome(spec.hosts, shell_line(argv), rc, None, f"{parsed.reason}; {err.strip()[-300:]}".strip("; "))
    return RunOutcome(spec.hosts, shell_line(argv), rc, parsed)


def ring_pairs(hosts: Sequence[str]) -> list[tuple[str, str]]:
    """Each node in two pairs (ring order), so one slow pair cannot blame a good node alone."""
    n = len(hosts)
    if n < 2:
        return []
    if n == 2:
        return [(hosts[0], hosts[1])]
    return [(hosts[i], hosts[(i + 1) % n]) for i in range(n)]


@dataclass(frozen=True)
class SlowNodeVerdict:
    slow: tuple[str, ...]  # nodes whose every pair was slow
    suspect: tuple[str, ...]  # nodes in some slow pair but not all
    pairs: tuple[tuple[str, str, float | None], ...]


def find_slow_nodes(pair_busbw: dict[tuple[str, str], float | None], threshold: float) -> SlowNodeVerdict:
    """A node is slow when every pair it was in ran below the threshold (or failed); suspect when some did."""
    member: dict[str, list[bool]] = {}
    for (a, b), bw in pair_busbw.items():
        low = bw is None or bw < threshold
        member.setdefault(a, []).append(low)
        member.setdefault(b, []).append(low)
    slow = tuple(sorted(h for h, lows in member.items() if lows and all(lows)))
    suspect = tuple(sorted(h for h, lows in member.items() if any(lows) and not all(lows)))
    pairs = tuple((a, b, bw) for (a, b), bw in sorted(pair_busbw.items()))
    return SlowNodeVerdict(slow, suspect, pairs)


def locate_slow_nodes(hosts: Sequence[str], gpus_per_node: int, threshold: float, runner: Runner,
                      launcher: str = "mpirun") -> tuple[SlowNodeVerdict, list[RunOutcome]]:
    """Run the ring of 2-node tests and judge them (each run bounded by the runner's own deadline)."""
    outcomes = [run_test(LaunchSpec(hosts=pair, gpus_per_node=gpus_per_node, launcher=launcher), runner)
                for pair in ring_pairs(hosts)]
    verdict = find_slow_nodes({(o.hosts[0], o.hosts[1]): o.busbw for o in outcomes}, threshold)
    return verdict, outcomes
