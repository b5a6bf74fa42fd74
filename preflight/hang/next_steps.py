"""What to run next when a hang verdict names no likely cause: concrete commands, in order, for what was and
was not seen.

Order: what can be read from the job while it still hangs (stacks, NCCL's RAS view, IB error rates, the kernel
log), then what to turn on before the next run (NCCL debug logs, PyTorch's flight recorder), then the command
that judges the new inputs. A step already done (py-spy stacks gathered, a RAS report read, two sweeps taken,
NCCL INFO lines present) is not repeated; each step names the ranks and nodes when they are known.

Sources for the settings named: NCCL environment variables (docs.nvidia.com/deeplearning/nccl/user-guide/docs/
env.html: NCCL_DEBUG=INFO, NCCL_DEBUG_SUBSYS subsystems INIT, NET, ENV, COLL ..., NCCL_DEBUG_FILE with %h host and
%p pid); NCCL RAS (2.24 and later: the `ncclras` client, NCCL_RAS_CLIENT_PORT default 28028); PyTorch
ProcessGroupNCCL variables (docs.pytorch.org torch_nccl_environment_variables: TORCH_NCCL_TRACE_BUFFER_SIZE,
TORCH_NCCL_DUMP_ON_TIMEOUT needs it > 0, TORCH_FR_DUMP_TEMP_FILE the dump prefix, default /tmp/nccl_trace_rank_).
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from preflight.collect.probes import FR_PROBE

MAX_NAMED_RANKS = 4
RAS_FIRST = (2, 24)  # NCCL prints no RAS before 2.24


@dataclass(frozen=True)
class Seen:
    """What the inputs held, as far as the next steps care."""

    live: bool = False
    nccl_lines: bool = False  # any NCCL line
    nccl_info: bool = False  # INFO lines (init, transport): NCCL_DEBUG=INFO was on
    nccl_versions: tuple[str, ...] = ()
    watchdog: bool = False
    flight_recorder: bool = False
    ras: bool = False  # a RAS report was read, or asked of the live job
    kernel_log: bool = False
    pyspy: bool = False  # stacks were gathered (live)
    fr_asked: bool = False  # `preflight hang --dump-fr` asked the ranks for their flight-recorder dumps
    ib_sweeps: bool = False  # IB error counters compared across two sweeps (live)
    ranks: tuple[tuple[int, str | None, int | None], ...] = ()  # (rank, node, pid), rank order
    nodes: tuple[str, ...] = ()
    pattern: str | None = None  # the live gather's --job-pattern
    env: dict[str, str] = field(default_factory=dict)  # NCCL_* / TORCH_NCCL_* a rank runs with (live)


def next_commands(seen: Seen) -> tuple[str, ...]:
    """The commands, in order (see the module docstring)."""
    out: list[str] = []
    out += _stacks(seen)
    out += _dump_fr(seen)
    out += _ras(seen)
    out += _ib(seen)
    if not seen.kernel_log and seen.nodes:
        out.append(f"{_on(seen.nodes)} 'dmesg -T | grep -E \"NVRM|Xid|mlx5\" | tail -50'  (GPU Xid and NIC health "
                   "lines: none were in these inputs)")
    out += _logs(seen)
    out.append(_rejudge(seen))
    return tuple(dict.fromkeys(out))


def _named(seen: Seen) -> list[tuple[int, str | None, int | None]]:
    return list(seen.ranks[:MAX_NAMED_RANKS])


def _stacks(seen: Seen) -> list[str]:
    with_pid = [(r, n, p) for r, n, p in _named(seen) if n and p]
    if seen.live and seen.pyspy:
        if not with_pid:
            return []
        r, n, p = with_pid[0]
        return [f"ssh {shlex.quote(n or '')} 'py-spy dump --native --pid {p}'  (rank {r}: every Python stack is in a "
                "collective; the native frames show where NCCL waits)"]
    if with_pid:
        steps = [f"ssh {shlex.quote(n or '')} 'py-spy dump --pid {p}'  (rank {r})" for r, n, p in with_pid]
        more = len(seen.ranks) - len(with_pid)
        head = "stacks first, while the job still hangs" + (f"; {more} more rank(s) likewise" if more > 0 else "")
        return [f"{s}  [{head}]" if i == 0 else s for i, s in enumerate(steps)]
    if seen.nodes and not seen.live:
        return [f"{_hang_cmd(seen)}  (every rank's state, GPU use and py-spy stack, while the job still hangs)"]
    return []


def _dump_fr(seen: Seen) -> list[str]:
    """A live job whose ranks name a debug-info pipe can be asked for its flight-recorder dumps now."""
    if not seen.live or seen.flight_recorder or seen.fr_asked or "TORCH_NCCL_DEBUG_INFO_PIPE_FILE" not in seen.env:
        return []
    return [f"{_hang_cmd(seen)} --dump-fr  (each rank's flight-recorder dump, taken now through its debug-info "
            "pipe: the last collective each rank entered and completed)"]


def _ras_possible(seen: Seen) -> bool:
    versions = [_version(v) for v in seen.nccl_versions]
    known = [v for v in versions if v is not None]
    return not known or max(known) >= RAS_FIRST


def _ras(seen: Seen) -> list[str]:
    if seen.ras or seen.env.get("NCCL_RAS_ENABLE") == "0":
        return []
    if not _ras_possible(seen):
        return []
    node = next((n for _, n, _ in seen.ranks if n), None) or (seen.nodes[0] if seen.nodes else None)
    where = f"ssh {shlex.quote(node)} " if node else ""
    port = seen.env.get("NCCL_RAS_CLIENT_PORT")
    return [f"{where}ncclras{f' -p {shlex.quote(port)}' if port else ''} -t 5  (NCCL's own view: ranks missing or "
            "behind in operation count; NCCL 2.24+, port 28028 unless NCCL_RAS_CLIENT_PORT)"]


def _ib(seen: Seen) -> list[str]:
    if seen.ib_sweeps:
        return []
    return [f"{_hang_cmd(seen)} --sweeps 2 --ib-interval 10  (IB symbol errors / link recoveries as rates between "
            "two sweeps: a grey link reads Active)"]


def _logs(seen: Seen) -> list[str]:
    """Before the next run (or restart): the logs these inputs lacked."""
    env: list[str] = []
    if not seen.nccl_info:
        env += ["NCCL_DEBUG=INFO", "NCCL_DEBUG_SUBSYS=INIT,NET,ENV", "NCCL_DEBUG_FILE=/tmp/nccl.%h.%p.log"]
    if not seen.flight_recorder and "TORCH_NCCL_TRACE_BUFFER_SIZE" not in seen.env:
        env += ["TORCH_NCCL_TRACE_BUFFER_SIZE=2000", "TORCH_NCCL_DUMP_ON_TIMEOUT=1",
                "TORCH_FR_DUMP_TEMP_FILE=/tmp/nccl_trace_rank_"]
    if not seen.flight_recorder and "TORCH_NCCL_DEBUG_INFO_PIPE_FILE" not in seen.env:
        env.append("TORCH_NCCL_DEBUG_INFO_PIPE_FILE=/tmp/nccl_debug_pipe_")  # lets `hang --dump-fr` ask for dumps
    out = []
    if env:
        why = " and ".join(x for x in ("NCCL init/network lines" if not seen.nccl_info else "",
                                       "flight-recorder dumps" if not seen.flight_recorder else "") if x)
        out.append(f"restart with {' '.join(env)}  ({why}: none in these inputs)")
    elif seen.nccl_info:
        out.append("restart with NCCL_DEBUG_SUBSYS=INIT,NET,COLL on a short reproduction  (every collective logged: "
                   "which one each rank last launched)")
    if not seen.watchdog and not seen.flight_recorder:
        out.append("keep the job's stdout/stderr of every rank  (PyTorch watchdog 'Watchdog caught collective "
                   "operation timeout' lines name each rank's last sequence number)")
    return out


def _rejudge(seen: Seen) -> str:
    return ("preflight analyze <the job's logs> /tmp/nccl.*.log /tmp/nccl_trace_rank_* <dmesg files>  (judge "
            "the new inputs)")


def _hang_cmd(seen: Seen) -> str:
    hosts = ",".join(seen.nodes[:16]) + ("..." if len(seen.nodes) > 16 else "")
    pattern = seen.pattern or "<training script name>"
    return f"preflight hang -H {shlex.quote(hosts or '<the job nodes>')} --job-pattern {shlex.quote(pattern)}"


def _on(nodes: Iterable[str]) -> str:
    ns = list(nodes)
    return f"ssh {shlex.quote(ns[0])}" if len(ns) == 1 else f"pdsh -w {shlex.quote(','.join(ns[:16]))}"


def _version(text: str) -> tuple[int, int] | None:
    parts = text.split("+")[0].split(".")
    try:
        return int(parts[0]), int(parts[1])
    except (IndexError, ValueError):
        return None


def seen_offline(world: Any) -> Seen:
    """From one job's joined inputs (hang/joined.py JoinedInputs)."""
    files = [f for _, f in world.files]
    ranks: dict[int, tuple[int, str | None, int | None]] = {}
    for r, nr in sorted(world.by_rank.items()):
        ranks[r] = (r, nr.host, nr.pid)
    for w in world.watchdog_logs:
        for p in w.progress():
            ranks.setdefault(p.rank, (p.rank, world.node(p.rank, w.source), None))
    nodes = sorted({r.host for r in world.nccl} | {f.kernel_host for f in files if f.kernel_host})
    return Seen(
        nccl_lines=any(f.nccl is not None for f in files),
        nccl_info=any(r.init_complete or r.transport or r.version_evidence for r in world.nccl),
        nccl_versions=tuple(sorted({v for v, _ in world.versions_seen} | {r.version for r in world.nccl if r.version})),
        watchdog=any(f.watchdog is not None for f in files),
        flight_recorder=any(f.dump is not None or f.frtrace is not None for f in files),
        ras=any(f.ras is not None for f in files),
        kernel_log=any(f.kernel is not None or f.mlx5 for f in files),
        ranks=tuple(ranks[k] for k in sorted(ranks)), nodes=tuple(nodes))


def seen_of_verdict(v: Any) -> Seen:
    """From a verdict's files and rank rows (a live gather's NCCL debug files and kernel logs, judged offline)."""
    kinds = {k for f in v.files for k in f.kinds}
    return Seen(nccl_lines="nccl_log" in kinds,
                nccl_info=any(r.init_complete or r.transport or r.nccl_version for r in v.ranks),
                nccl_versions=tuple(sorted({r.nccl_version for r in v.ranks if r.nccl_version})),
                watchdog="watchdog" in kinds, flight_recorder=bool(kinds & {"flight_recorder", "frtrace"}),
                ras="ncclras" in kinds, kernel_log=bool(kinds & {"kernel_log", "mlx5_health"}))


def seen_live(bundle: Any, ranks: Iterable[Any], offline: Seen, fr_outcomes: Iterable[dict[str, Any]] = ()) -> Seen:
    """From a live gather: its bundle, its ranks (gather.LiveRank), what its NCCL / kernel logs held and the
    --dump-fr outcomes (hang/fr_live.py)."""
    rs = sorted((r for r in ranks if r.rank is not None), key=lambda r: (r.rank, r.node, r.pid))
    options = bundle.options if isinstance(bundle.options, dict) else {}
    job = options.get("job")
    job = job if isinstance(job, dict) else {}
    env: dict[str, str] = {}
    for r in rs:
        for k, v in (r.nccl_env or {}).items():
            env.setdefault(k, v)
    ok = [raw for raw in bundle.nodes if raw.outcome == "ok"]
    kernel = any((raw.probe("kernel_log") or {}).get("rc") == 0 for raw in ok)
    return Seen(
        live=True, nccl_lines=offline.nccl_lines, nccl_info=offline.nccl_info, nccl_versions=offline.nccl_versions,
        watchdog=offline.watchdog,
        flight_recorder=offline.flight_recorder or any(o.get("outcome") == "collected" for o in fr_outcomes),
        fr_asked=any(raw.probe(FR_PROBE) for raw in ok),
        ras=bool(offline.ras or any((raw.probe("ncclras") or {}).get("stdout") for raw in ok)),
        kernel_log=offline.kernel_log or kernel, pyspy=any(r.stack for r in rs),
        ib_sweeps=bool(options.get("ib_first_sweep")),
        ranks=tuple((r.rank, r.node, r.pid) for r in rs),
        nodes=tuple(sorted({raw.name for raw in bundle.nodes})), pattern=str(job.get("pattern") or "") or None,
        env=env)
