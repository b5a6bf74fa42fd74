"""Multi-node NCCL tests launched by existing engines (mpirun or srun), and finding the slow node.

preflight never launches ranks itself: it builds the mpirun/srun command line from the inventory,
runs it on one launcher node over the same SSH transport (one round trip), parses the
nccl-tests output, and when the fleet-wide number is low, tests pairs of nodes to name the
node that drags the rest down. Command building and the pair analysis are pure functions.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from preflight.hang.nccl_log import NcclLog, parse_nccl_log
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
    # NCCL_DEBUG level every rank gets (None: the launcher's own, forwarded); run_test asks for INFO, whose
    # 'via NET/IB' / 'via NET/Socket' lines show which network carried the run
    nccl_debug: str | None = None


NCCL_DEBUG_LEVEL = "INFO"


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
        debug = spec.nccl_debug if "NCCL_DEBUG" not in spec.extra_env else None
        for name in FORWARDED_ENV:
            argv += ["-x", f"{name}={debug}" if name == "NCCL_DEBUG" and debug else name]
        for key, value in sorted(spec.extra_env.items()):
            argv += ["-x", f"{key}={value}"]
    elif spec.launcher == "srun":
        argv = ["srun", f"--nodes={len(spec.hosts)}", f"--ntasks-per-node={spec.gpus_per_node}",
                f"--gpus-per-node={spec.gpus_per_node}", f"--nodelist={','.join(spec.hosts)}", "--mpi=pmix"]
        env = dict(spec.extra_env)
        if spec.nccl_debug:
            env.setdefault("NCCL_DEBUG", spec.nccl_debug)
        if env:
            argv.append("--export=ALL," + ",".join(f"{k}={v}" for k, v in sorted(env.items())))
    else:
        raise ValueError(f"unknown launcher {spec.launcher!r} (mpirun or srun)")
    return argv + [spec.binary, *spec.test_args]


def shell_line(argv: Sequence[str]) -> str:
    """The command as one shell line, every word quoted (host names come from an inventory)."""
    return " ".join(shlex.quote(a) for a in argv)


@dataclass(frozen=True)
class NetSeen:
    """The inter-node network the ranks' NCCL INFO lines name: IB, Socket, a plugin's name; () = not shown."""

    transports: tuple[str, ...] = ()
    evidence: tuple[str, ...] = ()  # the line that shows it, one per host ('launcher output:LINE: text')
    fallback: tuple[str, ...] = ()  # 'Failed to open libibverbs.so[.1]' lines of ranks that fell back to sockets
    nccl_lines: int = 0  # NCCL lines in the output at all (0: NCCL_DEBUG was not INFO)
    gdrdma: bool | None = None  # some 'via NET/IB/../GDRDMA' channel (True), only plain NET/IB ones (False), none
    gdr_evidence: tuple[str, ...] = ()  # one 'via NET/IB' channel line, as printed


def net_seen(text: str, source: str = "launcher output") -> NetSeen:
    """Which network NCCL used, from the INFO lines mixed into a run's output (a pure function of the text)."""
    log = parse_nccl_log(text, source) if "NCCL" in text else None
    if not isinstance(log, NcclLog):
        return NetSeen()
    transports = tuple(dict.fromkeys(r.transport for r in log.ranks if r.transport))
    evidence: dict[str, str] = {}
    for r in log.ranks:
        if r.transport and r.net_evidence is not None and r.host not in evidence:
            evidence[r.host] = str(r.net_evidence)
    fallback = tuple(dict.fromkeys(str(r.ibverbs_failure) for r in log.ranks
                                   if r.socket_fallback and r.ibverbs_failure is not None))
    ib_lines = [ln.strip() for ln in text.splitlines() if _VIA_IB.search(ln)]
    gdr = None if not ib_lines else any("GDRDMA" in ln for ln in ib_lines)
    shown = next((ln for ln in ib_lines if ("GDRDMA" in ln) == gdr), None) if gdr is not None else None
    return NetSeen(transports, tuple(evidence.values())[:8], fallback[:4], log.nccl_lines, gdr,
                   (shown[:240],) if shown else ())


_VIA_IB = re.compile(r"via NET/IB(?:/\d+)?(?:/GDRDMA)?\b")
# Inter-node all-reduce busbw as a share of the NICs' line rate that a healthy fabric reaches. Ours: NCCL's
# ring busbw across nodes approaches the per-node network bandwidth (nccl-tests doc/PERFORMANCE.md: busbw is
# comparable to the hardware's bottleneck bandwidth); 0.80 leaves room for protocol overhead and run-to-run
# spread. A measured baseline of the same fabric (--min-busbw, expect.allreduce_busbw_gbps_min) replaces it.
NIC_EFFICIENCY = 0.80


def expected_busbw(ports_gbps: dict[str, list[float]], ranks_per_node: int) -> tuple[float, str] | None:
    """(GB/s, how it was derived) from each node's active IB port rates: the slowest node's
    min(ranks, ports) x rate / 8 x NIC_EFFICIENCY; None when a node shows no active port."""
    if not ports_gbps or any(not rates for rates in ports_gbps.values()):
        return None
    per_node = {n: sum(sorted(rates, reverse=True)[:max(1, ranks_per_node)]) / 8 for n, rates in ports_gbps.items()}
    slow = min(per_node, key=lambda n: per_node[n])
    rates = sorted(ports_gbps[slow], reverse=True)[:max(1, ranks_per_node)]
    value = round(per_node[slow] * NIC_EFFICIENCY, 1)
    return value, (f"estimated: {NIC_EFFICIENCY:.0%} (ours) of {slow}'s {len(rates)} active IB port(s) x "
                   f"{rates[0]:g} Gb/s = {per_node[slow]:g} GB/s line rate (ibstat; min(ranks per node, ports))")


@dataclass(frozen=True)
class RunOutcome:
    hosts: tuple[str, ...]
    command: str
    rc: int | None
    result: NcclTestResult | None
    error: str = ""
    net: NetSeen = field(default_factory=NetSeen)

    @property
    def busbw(self) -> float | None:
        if self.result is None:
            return None
        big = self.result.busbw_at_largest()
        return big[1] if big else None


Runner = Callable[[list[str]], tuple[int | None, str, str]]  # argv -> (rc, stdout, stderr), on the launcher node


def run_test(spec: LaunchSpec, runner: Runner) -> RunOutcome:
    """One launch with NCCL_DEBUG=INFO (unless the spec sets a level), its nccl-tests table and its network."""
    argv = build_command(spec if spec.nccl_debug else replace(spec, nccl_debug=NCCL_DEBUG_LEVEL))
    rc, out, err = runner(argv)
    net = net_seen(out + ("\n" + err if err else ""))
    parsed = parse_nccl_tests(out)
    if isinstance(parsed, Unparseable):
        return RunOutcome(spec.hosts, shell_line(argv), rc, None, f"{parsed.reason}; {err.strip()[-300:]}".strip("; "),
                          net)
    return RunOutcome(spec.hosts, shell_line(argv), rc, parsed, net=net)


@dataclass(frozen=True)
class RunVerdict:
    """A multi-node run judged: `pass` only when it measured one job across the nodes over the expected network."""

    status: str  # pass | warn | fail
    reasons: tuple[str, ...]
    evidence: tuple[str, ...] = ()


def judge_run(outcome: RunOutcome, threshold: float | None, expect_net: str | None = None,
              derived: tuple[float, str] | None = None) -> RunVerdict:
    """Pure: what a run proves. Sockets between nodes fail unless the inventory says sockets are intended
    (expect.nccl_net: socket); a network that cannot be seen is a warning, never a plain pass. Without a
    threshold, a run over NET/IB is held to `derived` (from the nodes' IB ports, see expected_busbw);
    NET/IB without GPUDirect RDMA on any channel warns."""
    fail: list[str] = []
    warn: list[str] = []
    ok: list[str] = []
    evidence: list[str] = []
    r = outcome.result
    if r is None:
        fail.append(f"no nccl-tests result: {outcome.error or 'nothing printed'}")
    elif outcome.rc != 0:
        fail.append("the launcher timed out" if outcome.rc is None else f"the launcher exited with status {outcome.rc}")
    if r is not None and r.independent_note:
        fail.append(r.independent_note)
        evidence += r.independent_evidence
    big = r.busbw_at_largest() if r is not None else None
    if r is not None and big is None:
        fail.append("nccl-tests printed no result rows")
    net = outcome.net
    want = (expect_net or "").strip().lower() or None
    if "Socket" in net.transports:
        if want == "socket":
            ok.append("NCCL ran over NET/Socket between the nodes, as the inventory expects (expect.nccl_net: socket)")
        else:
            why = " after failing to open libibverbs" if net.fallback else ""
            fail.append(f"NCCL ran over NET/Socket (TCP, no RDMA) between the nodes{why}"
                        + (f"; the inventory expects {want}" if want else ""))
            evidence += net.fallback
        evidence += net.evidence
    elif net.transports:
        seen = ", ".join(f"NET/{t}" for t in net.transports)
        if want and want not in {t.lower() for t in net.transports}:
            fail.append(f"NCCL ran over {seen}; the inventory expects {want} (expect.nccl_net)")
        else:
            ok.append(f"inter-node transport {seen}" + (" with GPUDirect RDMA (GDRDMA)" if net.gdrdma else ""))
        if "IB" in net.transports and net.gdrdma is False:
            warn.append("NCCL used NET/IB without GPUDirect RDMA on any channel (no GDRDMA): data bounces through "
                        "host memory; check nvidia_peermem and NCCL_NET_GDR_LEVEL")
        evidence += [*net.evidence[:2], *net.gdr_evidence]
    elif len(outcome.hosts) > 1:
        warn.append("transport not shown (NCCL_DEBUG=INFO lines absent)" if net.nccl_lines == 0 else
                    "transport not shown (NCCL printed no 'Using network' / 'via NET/...' line)")
    source = ""
    if threshold is None and derived is not None and "IB" in net.transports:
        threshold, source = derived[0], f" ({derived[1]})"
    if big is not None:
        if threshold is not None and big[1] < threshold:
            fail.append(f"busbw {big[1]:g} GB/s at the largest size, below {threshold:g}{source}")
        elif threshold is None:
            ok.append(f"busbw {big[1]:g} GB/s, not judged (no --min-busbw or expect.allreduce_busbw_gbps_min)")
        else:
            ok.append(f"busbw {big[1]:g} GB/s >= {threshold:g}{source}")
    status = "fail" if fail else "warn" if warn else "pass"
    return RunVerdict(status, tuple(fail + warn + ok), tuple(dict.fromkeys(evidence))[:10])


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
