"""`preflight hang`: judge a live gather of a hung job (one round trip per node) and rank the likely causes.

The nodes sent raw facts (collector probes `job_procs`, `ib_traffic`, `smi_table`, `kernel_log`); this
module turns them into one row per rank and into causes. The job's NCCL debug files and kernel logs
go through the same offline analysers as `preflight analyze` (written to a folder per node), and the
live signals are added on top:

- a rank with no process on any node (crashed, OOM-killed, never started): the others wait for it;
- a rank whose process is stopped (T), in uninterruptible sleep (D) or a zombie (Z);
- a rank whose Python stack (py-spy) is not in a collective while the others wait in one;
- a rank whose GPU is idle while the others' GPUs spin in NCCL kernels;
- an IB port whose link_downed counter rose between the two reads, or a node whose ports moved no data.
Pure: facts in, verdict out. Nothing here touches the network.
"""

from __future__ import annotations

import json
import re
import shlex
import tempfile
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from preflight.collect.bundle import Bundle, NodeRaw
from preflight.hang.fr_live import judge_fr
from preflight.hang.ib_rates import ib_rate_causes
from preflight.hang.link_quality import link_quality_causes
from preflight.hang.mlx5_health import mlx5_causes, parse_mlx5_health
from preflight.hang.next_steps import next_commands, seen_live, seen_of_verdict
from preflight.hang.ras_live import ras_live_causes
from preflight.hang.verdict import Cause, HangVerdict, analyze
from preflight.parse.common import Unparseable
from preflight.parse.smi_table import parse_table
from preflight.textsafe import clean

COLLECTIVE = re.compile(r"\b(all_reduce|allreduce|all_gather|allgather|reduce_scatter|broadcast|barrier|all_to_all|"
                        r"alltoall|_all_gather_base|_reduce_scatter_base|send|recv|wait)\b.*(torch/distributed|c10d|nccl)",
                        re.I)
BAD_STATES = {"D": "in uninterruptible sleep (D: stuck in the kernel, often a driver or filesystem call)",
              "T": "stopped (T: SIGSTOP or a debugger)", "t": "stopped by a tracer (t)", "Z": "a zombie (Z: it exited)"}


@dataclass(frozen=True)
class LiveRank:
    node: str
    pid: int
    rank: int | None
    local_rank: int | None
    world_size: int | None
    state: str | None
    gpu: int | None
    gpu_util: int | None
    top_frame: str | None  # main thread's innermost frame from py-spy
    in_collective: bool | None
    stack: tuple[str, ...] = ()
    cmdline: str = ""
    nccl_env: dict[str, str] = field(default_factory=dict)
    gpu_mem_mib: int | None = None  # memory used on the rank's GPU (nvidia-smi)


@dataclass(frozen=True)
class LiveHang:
    verdict: HangVerdict
    ranks: tuple[LiveRank, ...]
    nodes_without_job: tuple[str, ...] = ()
    unreachable: tuple[tuple[str, str], ...] = ()
    notes: tuple[str, ...] = ()  # what the NCCL RAS query said (or why it was not asked), when it says nothing wrong
    flight_recorder: tuple[dict[str, Any], ...] = ()  # --dump-fr: each rank's trigger outcome (hang/fr_live.py)

    def to_dict(self) -> dict[str, Any]:
        doc = self.verdict.to_dict()
        doc["live_ranks"] = [{k: (list(v) if isinstance(v, tuple) else v) for k, v in r.__dict__.items()} for r in self.ranks]
        doc["nodes_without_job"] = list(self.nodes_without_job)
        doc["unreachable"] = [{"node": n, "why": w} for n, w in self.unreachable]
        doc["notes"] = list(self.notes)
        doc["flight_recorder"] = list(self.flight_recorder)
        return doc


def _probe_json(raw: NodeRaw, pid: str) -> dict[str, Any] | None:
    p = raw.probe(pid)
    if not p or p.get("error") or not (p.get("stdout") or "").strip().startswith("{"):
        return None
    try:
        doc = json.loads(p["stdout"])
    except ValueError:
        return None
    # a probe that prints JSON carries node text a second time, JSON-escaped: decoded here, so cleaned here
    return clean(doc) if isinstance(doc, dict) else None


def _int(value: Any) -> int | None:
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return None


def main_thread_stack(dump: str) -> tuple[str, ...]:
    """Frames of the main thread (innermost first) from `py-spy dump` text; () when absent."""
    frames: list[str] = []
    inside = False
    for line in dump.splitlines():
        if line.startswith("Thread "):  # py-spy prints one header per thread; merged dumps stack several headers
            if inside and frames:
                break
            inside = inside or "MainThread" in line
            continue
        if inside and line.startswith((" ", "\t")) and line.strip():
            frames.append(line.strip())
    return tuple(frames)


def _gpu_of(env: dict[str, str], local_rank: int | None) -> int | None:
    if local_rank is None:
        return None
    visible = [v for v in (env.get("CUDA_VISIBLE_DEVICES") or "").split(",") if v.strip()]
    if visible and local_rank < len(visible):
        return _int(visible[local_rank]) if visible[local_rank].strip().isdigit() else local_rank
    return local_rank


def ranks_of(raw: NodeRaw) -> list[LiveRank]:
    doc = _probe_json(raw, "job_procs") or {}
    table = parse_table((raw.probe("smi_table") or {}).get("stdout") or "")
    util = {g.index: g.utilization_pct for g in table.gpus} if not isinstance(table, Unparseable) else {}
    mem = {g.index: g.memory_used_mib for g in table.gpus} if not isinstance(table, Unparseable) else {}
    by_pid_gpu = {p.pid: p.gpu for p in table.processes} if not isinstance(table, Unparseable) else {}
    procs = [p for p in doc.get("processes") or [] if isinstance(p, dict)]
    rank_of_pid = {}
    for proc in procs:
        env = proc.get("env") or {}
        rank_of_pid[_int(proc.get("pid"))] = _int(env.get("RANK", env.get("OMPI_COMM_WORLD_RANK", env.get("SLURM_PROCID"))))
    out = []
    for proc in procs:
        env = proc.get("env") or {}
        rank = _int(env.get("RANK", env.get("OMPI_COMM_WORLD_RANK", env.get("SLURM_PROCID"))))
        pid = _int(proc.get("pid"))
        if rank is None or pid is None:
            continue  # a launcher agent or an unrelated python process, not a rank
        if _int(proc.get("ppid")) in rank_of_pid and rank_of_pid[_int(proc.get("ppid"))] == rank:
            continue  # a DataLoader worker (or other child) that inherited its rank's environment
        local = _int(env.get("LOCAL_RANK", env.get("OMPI_COMM_WORLD_LOCAL_RANK", env.get("SLURM_LOCALID"))))
        gpu = by_pid_gpu.get(proc.get("pid"))
        if gpu is None:
            gpu = _gpu_of(env, local)
        stack = main_thread_stack(((proc.get("pyspy") or {}).get("stdout")) or "")
        in_coll = any(COLLECTIVE.search(f) for f in stack) if stack else None
        out.append(LiveRank(raw.name, pid, rank, local, _int(env.get("WORLD_SIZE")),
                            proc.get("state"), gpu, util.get(gpu) if gpu is not None else None,
                            stack[0] if stack else None, in_coll, stack, str(proc.get("cmdline") or ""),
                            {k: v for k, v in env.items() if k.startswith(("NCCL_", "TORCH_NCCL_"))},
                            mem.get(gpu) if gpu is not None else None))
    return out


def _write_inputs(bundle: Bundle, root: Path) -> None:
    """Per node: its kernel log and every NCCL debug file tail, as files the offline analysers read."""
    for raw in bundle.nodes:
        if raw.outcome != "ok":
            continue
        folder = root / re.sub(r"[^A-Za-z0-9_.-]", "_", raw.name)
        folder.mkdir(parents=True, exist_ok=True)
        klog = (raw.probe("kernel_log") or {}).get("stdout") or ""
        if klog.strip():
            (folder / "dmesg.txt").write_text(klog)
        for proc in (_probe_json(raw, "job_procs") or {}).get("processes") or []:
            dbg = proc.get("nccl_debug_file") if isinstance(proc, dict) else None
            if isinstance(dbg, dict) and isinstance(dbg.get("tail"), str) and dbg["tail"]:
                (folder / f"nccl-{_int(proc.get('pid'))}.log").write_text(dbg["tail"])


def _missing_rank_causes(ranks: list[LiveRank], *, complete: bool = True) -> list[Cause]:
    """`complete`: every node answered and none capped its process list; otherwise a rank not seen may
    simply live on a node we did not hear from, and is reported as that, with a low score."""
    world = max((r.world_size or 0 for r in ranks), default=0)
    seen = {r.rank for r in ranks if r.rank is not None}
    if not world or not seen:
        return []
    missing = sorted(set(range(world)) - seen)
    if not missing:
        return []
    per_node = Counter(r.node for r in ranks)
    local_size = max(per_node.values()) if per_node else 0
    node_of_block: dict[int, Counter[str]] = {}
    for r in ranks:
        if r.rank is not None and local_size:
            node_of_block.setdefault(r.rank // local_size, Counter())[r.node] += 1
    causes = []
    for m in missing[:16]:
        block = node_of_block.get(m // local_size) if local_size else None
        node = block.most_common(1)[0][0] if block else None
        ev = tuple(f"{r.node}: pid {r.pid} RANK={r.rank} LOCAL_RANK={r.local_rank} WORLD_SIZE={r.world_size} {r.state or ''}"
                   for r in sorted(ranks, key=lambda r: r.rank if r.rank is not None else -1)
                   if r.rank is not None and abs(r.rank - m) <= 1)
        if not complete or not block:  # no sibling of its node seen either: that node was not gathered
            causes.append(Cause(0.4, f"rank {m} of {world} was not seen on the nodes that answered"
                                     + (f" (its neighbours run on {node})" if node else ""), m, node, ev,
                                "gather the nodes that did not answer (or were not selected) before concluding it died",
                                "live_unseen_rank", (m,)))
            continue
        causes.append(Cause(0.97, f"rank {m} of {world} has no process on any node"
                                  + (f" (its neighbours run on {node})" if node else "")
                                  + f"; the other {len(seen)} ranks wait for it", m, node, ev,
                            f"ssh {node or '<node>'} 'dmesg -T | tail -50; journalctl -k --since -1h | grep -i -e oom -e xid'"
                            " and read that rank's own log for a Python traceback", "live_missing_rank", (m,)))
    return causes


def _state_causes(ranks: list[LiveRank]) -> list[Cause]:
    out = []
    for r in ranks:
        code = (r.state or " ")[0]
        if code in BAD_STATES:
            out.append(Cause(0.93 if code in "DZ" else 0.9, f"rank {r.rank} on {r.node} (pid {r.pid}) is {BAD_STATES[code]}",
                             r.rank, r.node, (f"{r.node}: /proc/{r.pid}/status State: {r.state}", f"{r.node}: {r.cmdline[:200]}"),
                             f"ssh {r.node} 'cat /proc/{r.pid}/stack; py-spy dump --native --pid {r.pid}'", "live_state",
                             (r.rank,) if r.rank is not None else ()))
    return out


def _stack_causes(ranks: list[LiveRank]) -> list[Cause]:
    known = [r for r in ranks if r.in_collective is not None]
    waiting = [r for r in known if r.in_collective]
    elsewhere = [r for r in known if not r.in_collective]
    if not waiting or not elsewhere or len(elsewhere) > len(waiting):
        return []
    where = Counter(next((f for f in r.stack if COLLECTIVE.search(f)), r.top_frame or "") for r in waiting).most_common(1)[0][0]
    out = []
    for r in elsewhere[:8]:
        ev = (f"{r.node} rank {r.rank} main thread: " + " <- ".join(r.stack[:4]),
              f"{waiting[0].node} rank {waiting[0].rank} main thread: " + " <- ".join(waiting[0].stack[:4]))
        out.append(Cause(0.9, f"rank {r.rank} on {r.node} is not in a collective (in {r.top_frame}) while "
                              f"{len(waiting)} rank(s) wait in {where.split(' (')[0]}", r.rank, r.node, ev,
                         f"ssh {r.node} 'py-spy dump --native --pid {r.pid}'", "live_stack", (r.rank,) if r.rank is not None else ()))
    return out


def _gpu_causes(ranks: list[LiveRank]) -> list[Cause]:
    known = [r for r in ranks if r.gpu_util is not None]
    busy = [r for r in known if r.gpu_util is not None and r.gpu_util >= 90]  # `known` has only non-None
    idle = [r for r in known if r.gpu_util is not None and r.gpu_util <= 5]
    if not busy or not idle or len(idle) * 4 > len(known):
        return []
    return [Cause(0.7, f"rank {r.rank}'s GPU {r.gpu} on {r.node} is idle ({r.gpu_util}%) while {len(busy)} rank(s) "
                       "spin at >= 90% (waiting ranks busy-poll in NCCL kernels)", r.rank, r.node,
                  (f"{r.node}: nvidia-smi GPU {r.gpu} utilization {r.gpu_util}%",), f"ssh {r.node} 'py-spy dump --pid {r.pid}'",
                  "live_gpu", (r.rank,) if r.rank is not None else ()) for r in idle[:8]]


def ib_deltas(raw: NodeRaw) -> dict[str, dict[str, int]]:
    """Counter changes between the two reads; a counter that went down (wrapped, reset) or is not a number is left out."""
    doc = _probe_json(raw, "ib_traffic") or {}
    first, second = doc.get("first") or {}, doc.get("second") or {}
    out: dict[str, dict[str, int]] = {}
    for port, vals in first.items() if isinstance(first, dict) else ():
        after = second.get(port) if isinstance(second, dict) else None
        if not isinstance(vals, dict) or not isinstance(after, dict):
            continue
        deltas = {}
        for k, v in vals.items():
            a, b = _int(v), _int(after.get(k))
            if a is not None and b is not None and b >= a:
                deltas[k] = b - a
        out[str(port)] = deltas
    return out


def _ib_causes(bundle: Bundle, job_nodes: set[str]) -> list[Cause]:
    out = []
    flat, moving = [], []
    for raw in bundle.nodes:
        deltas = ib_deltas(raw)
        if not deltas:
            continue
        for port, d in deltas.items():
            if d.get("link_downed", 0) > 0:
                out.append(Cause(0.88, f"IB port {port} on {raw.name} went down {d['link_downed']} time(s) during the gather",
                                 None, raw.name, (f"{raw.name}: {port} link_downed +{d['link_downed']}",),
                                 f"ssh {raw.name} " + shlex.quote(f"ibstat; cat /sys/class/infiniband/{shlex.quote(port.split('/')[0])}/ports/*/counters/link_downed"),
                                 "live_ib_down"))
        if not any("port_xmit_data" in d or "port_rcv_data" in d for d in deltas.values()):
            continue  # no data counters: unknown, not flat
        moved = sum(d.get("port_xmit_data", 0) + d.get("port_rcv_data", 0) for d in deltas.values())
        if moved > 0:
            moving.append(raw.name)
        elif raw.name in job_nodes:  # a node that runs no rank has no reason to move data
            flat.append(raw.name)
    if flat and moving:
        for node in flat[:8]:
            out.append(Cause(0.6, f"no IB traffic on {node} while {len(moving)} node(s) move data", None, node,
                             (f"{node}: port_xmit_data/port_rcv_data unchanged between the two reads",),
                             f"ssh {node} 'ibstat; perfquery -x'", "live_ib_flat"))
    return out


def judge_hang(bundle: Bundle) -> LiveHang:
    ranks = [r for raw in bundle.nodes if raw.outcome == "ok" for r in ranks_of(raw)]
    capped = any((_probe_json(raw, "job_procs") or {}).get("truncated") for raw in bundle.nodes if raw.outcome == "ok")
    complete = not capped and all(raw.outcome == "ok" for raw in bundle.nodes)
    with tempfile.TemporaryDirectory(prefix="preflight-hang-") as tmp:
        _write_inputs(bundle, Path(tmp))
        files = sorted(p for p in Path(tmp).rglob("*") if p.is_file())
        offline = analyze(files, split_jobs=False) if files else HangVerdict(())
    # the temp folder's name is meaningless to a reader: evidence keeps node/file
    live = (_missing_rank_causes(ranks, complete=complete) + _state_causes(ranks) + _stack_causes(ranks)
            + _gpu_causes(ranks) + _ib_causes(bundle, {r.node for r in ranks}))
    ras, notes = ras_live_causes(bundle, ranks)
    live += ras + ib_rate_causes(bundle)
    fr_causes, fr_notes, fr_outcomes = judge_fr(bundle)  # --dump-fr: the dumps taken now, compared across ranks
    live += fr_causes
    notes = [*notes, *fr_notes]
    links, link_notes = link_quality_causes(bundle)  # mlxlink: BER, module temperature, link-down counters
    live += links
    notes = [*notes, *link_notes]
    live += [c for raw in bundle.nodes if raw.outcome == "ok"
             for c in mlx5_causes(parse_mlx5_health((raw.probe("kernel_log") or {}).get("stdout") or "",
                                                    f"{raw.name}: kernel log"), raw.name)]
    asked = bundle.options.get("ncclras") if isinstance(bundle.options, dict) else None
    if isinstance(asked, str) and asked:
        notes = [f"ncclras: {asked}", *notes]
    live += [Cause(0.85 if raw.outcome == "timeout" else 0.75, f"{raw.name} did not answer ({raw.outcome}): a hung or "
                   "crashed node stalls every collective its ranks are in", None, raw.name, (f"{raw.name}: {raw.message}",),
                   f"check {raw.name} from its BMC / console (ipmitool sol activate); drain it if it stays silent",
                   "live_unreachable") for raw in bundle.nodes if raw.outcome != "ok"]
    offline_causes = [c for c in offline.causes if c.kind != "mlx5_health"]  # judged live, with the node named
    causes = sorted(offline_causes + live, key=lambda c: (-c.score, c.title))
    with_job = {r.node for r in ranks}
    ok = [raw.name for raw in bundle.nodes if raw.outcome == "ok"]
    summary = (f"{len(ok)} node(s) answered, {len(ranks)} job process(es) on {len(with_job)} node(s); "
               + (offline.summary.rsplit("; ", 1)[0] + "; " if files else "") + f"{len(causes)} likely cause(s)")
    verdict = replace(offline, causes=tuple(causes), summary=summary, next_commands=() if causes else next_commands(
        seen_live(bundle, ranks, seen_of_verdict(offline), fr_outcomes)))
    return LiveHang(verdict, tuple(sorted(ranks, key=lambda r: (r.rank if r.rank is not None else 10**9, r.node, r.pid))),
                    tuple(n for n in ok if n not in with_job),
                    tuple((raw.name, f"{raw.outcome}: {raw.message}") for raw in bundle.nodes if raw.outcome != "ok"),
                    tuple(notes), tuple(fr_outcomes))
