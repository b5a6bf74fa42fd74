"""Combine NCCL logs, watchdog timeouts, flight-recorder dumps and kernel logs into ranked likely causes of a hang.

    analyze([Path("job-1234/logs"), Path("job-1234/fr-dumps")]) -> HangVerdict

Every cause names a rank and/or node when it can, quotes real lines (file:line) as evidence and says what to
run next. Linear in the total input size: one pass per file, then dictionary joins.
"""

from __future__ import annotations

import os
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable

from preflight.hang.flight_recorder import FrFinding, first_mismatch
from preflight.hang.lines import Evidence
from preflight.hang.nccl_log import RETCODES, NcclRank
from preflight.hang.ncclras import RasRank, RasReport
from preflight.hang.sniff import HangFile, parse_path
from preflight.hang.watchdog import RankProgress, WatchdogLog
from preflight.parse.common import Unparseable
from preflight.parse.xid import describe_xid

MAX_EVIDENCE_LINES = 6


@dataclass(frozen=True)
class Cause:
    """One likely cause, scored 0..1 (higher = more likely the culprit)."""

    score: float
    title: str
    rank: int | None
    node: str | None
    evidence: tuple[str, ...]  # real lines, 'file:line: text'
    next_command: str
    kind: str = ""  # watchdog_missing | watchdog_behind | op_mismatch | fr_missing | fr_mismatch | fr_stuck | xid |
    #                 network | socket_fallback | ras_mismatch | ras_dead | ras_incomplete | version | init | nccl_error
    ranks: tuple[int, ...] = ()  # every rank the cause covers (rank is the first)


@dataclass(frozen=True)
class RankRow:
    """One rank across all inputs (the TUI's ranks × last collective)."""

    rank: int
    node: str | None = None
    pid: int | None = None
    cuda_dev: int | None = None
    bus_id: str | None = None
    nccl_version: str | None = None
    transport: str | None = None
    interfaces: tuple[str, ...] = ()
    init_complete: bool | None = None
    watchdog_seq: int | None = None
    watchdog_op: str | None = None
    fr_last_entered: int | None = None
    fr_last_completed: int | None = None


@dataclass(frozen=True)
class FileReport:
    path: str
    kinds: tuple[str, ...]  # nccl_log, watchdog, flight_recorder, frtrace, kernel_log; () = not recognised
    note: str = ""


@dataclass(frozen=True)
class HangVerdict:
    causes: tuple[Cause, ...]
    ranks: tuple[RankRow, ...] = ()
    files: tuple[FileReport, ...] = ()
    summary: str = ""

    @property
    def culprit(self) -> Cause | None:
        return self.causes[0] if self.causes else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "summary": self.summary,
            "causes": [asdict(c) | {"evidence": list(c.evidence), "ranks": list(c.ranks)} for c in self.causes],
            "ranks": [asdict(r) | {"interfaces": list(r.interfaces)} for r in self.ranks],
            "files": [{"path": f.path, "kinds": list(f.kinds), "note": f.note} for f in self.files],
        }


# ---------------------------------------------------------------- inputs

def expand_paths(paths: Iterable[Path]) -> list[Path]:
    """Files as given, directories walked (sorted, hidden entries skipped)."""
    out: list[Path] = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            for root, dirs, files in os.walk(p):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                out.extend(Path(root) / f for f in sorted(files) if not f.startswith("."))
        else:
            out.append(p)
    return out


def _with_names(paths: Iterable[Path]) -> list[tuple[Path, str]]:
    """Each file with the name its evidence uses: relative to the directory given (its name included), else the
    file name; full paths only where two inputs would otherwise read the same."""
    out: list[tuple[Path, str]] = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            base = p.resolve().parent
            out += [(f, str(f.resolve().relative_to(base))) for f in expand_paths([p])]
        else:
            out.append((p, p.name))
    counts = Counter(n for _, n in out)
    return [(p, n if counts[n] == 1 else str(p)) for p, n in out]


@dataclass
class _World:
    """Everything parsed, joined by rank and node."""

    files: list[tuple[Path, HangFile]] = field(default_factory=list)
    nccl: list[NcclRank] = field(default_factory=list)
    by_rank: dict[int, NcclRank] = field(default_factory=dict)
    file_host: dict[str, str] = field(default_factory=dict)  # source -> the one host its NCCL lines name
    nranks: int | None = None

    def node(self, rank: int | None, source: str | None = None) -> str | None:
        r = self.by_rank.get(rank) if rank is not None else None
        if r is not None:
            return r.host
        return self.file_host.get(source or "")


def _ev(e: Evidence | None) -> list[str]:
    return [str(e)] if e is not None else []


def _uniq(lines: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(lines))[:MAX_EVIDENCE_LINES]


def _ranks_text(ranks: Iterable[int]) -> str:
    rs = sorted(set(ranks))
    if len(rs) > 2 and rs[-1] - rs[0] == len(rs) - 1:
        return f"ranks {rs[0]}-{rs[-1]}"
    return ("rank " if len(rs) == 1 else "ranks ") + ", ".join(map(str, rs[:12])) + (" ..." if len(rs) > 12 else "")


# ---------------------------------------------------------------- Xid

@dataclass(frozen=True)
class _Xid:
    node: str | None
    code: int | None  # None for 'fallen off the bus' without an Xid
    name: str
    fatal: bool
    pci: str | None
    time: str | None
    evidence: str
    rank: int | None


def _xids(world: _World) -> list[_Xid]:
    hosts = sorted({r.host for r in world.nccl}, key=len, reverse=True)
    by_bus = {(r.host, r.bus_id[:10]): r.rank for r in world.nccl if r.bus_id and r.rank is not None}
    out: list[_Xid] = []
    for path, f in world.files:
        if f.kernel is None:
            continue
        where = str(path)
        node = next((h for h in hosts if h in where), None) or f.kernel_host
        for x in f.kernel.xids:
            cat = describe_xid(x.code) or {}
            pci = x.pci[:10] if x.pci else None
            rank = by_bus.get((node, pci)) if node and pci else None
            out.append(_Xid(node, x.code, str(cat.get("name") or "uncatalogued Xid"), bool(cat.get("fatal")), pci,
                            x.timestamp, _kline(path, f, x.raw_line), rank))
        for o in f.kernel.others:
            if o.kind != "fallen_off_bus":
                continue
            pci = o.device.lower()[:10] if o.device and ":" in o.device else None
            rank = by_bus.get((node, pci)) if node and pci else None
            out.append(_Xid(node, None, "GPU has fallen off the bus", True, pci, o.timestamp,
                            _kline(path, f, o.raw_line), rank))
    return out


def _kline(path: Path, f: HangFile, raw: str) -> str:
    first = raw.split("\n")[0].strip()
    text = " ".join(part.strip() for part in raw.split("\n"))
    return str(Evidence(f.source, f.kernel_lines.get(first, 0), text[:300]))


def _xid_phrase(x: _Xid) -> str:
    what = f"Xid {x.code} ({x.name})" if x.code is not None else x.name
    when = f" at {x.time.strip('[] ')}" if x.time else ""
    return f"{x.node or 'a node'} logged {what}{when}"


# ---------------------------------------------------------------- causes

def _watchdog_causes(world: _World, logs: list[WatchdogLog], xids: list[_Xid]) -> list[Cause]:
    progress: list[tuple[RankProgress, str]] = [(p, w.source) for w in logs for p in w.progress()]
    if not progress:
        return []
    pgs = {p.pg for p, _ in progress if p.pg is not None}
    groups: dict[str | None, list[tuple[RankProgress, str]]] = defaultdict(list)
    for p, src in progress:
        groups[p.pg if len(pgs) > 1 else None].append((p, src))
    xid_by_node: dict[str, list[_Xid]] = defaultdict(list)
    for x in xids:
        if x.node:
            xid_by_node[x.node].append(x)
    causes: list[Cause] = []
    for pg, items in groups.items():
        top = max(p.seq for p, _ in items)
        at_top = [(p, s) for p, s in items if p.seq == top]
        op = next((p.op for p, _ in at_top if p.op), "collective")
        reported = {p.rank for p, _ in items}
        suspects: dict[int, tuple[str, RankProgress | None, str]] = {}
        for p, src in items:
            if p.seq < top:
                suspects[p.rank] = ("behind", p, src)
        if world.nranks and (pg is None or len(groups) == 1):
            expected = set(range(world.nranks))
            missing = expected - reported
            if missing and len(reported) >= len(expected) / 2:
                for r in missing:
                    suspects[r] = ("missing", None, "")
        if not suspects:
            continue
        total = max(len(reported | set(suspects)), 1)
        base = 0.9 if len(suspects) <= max(1, total // 4) else 0.6
        witness = _ev(at_top[0][0].evidence)
        by_node: dict[str | None, list[int]] = defaultdict(list)
        for r, (_, _, src) in suspects.items():
            by_node[world.node(r, src)].append(r)
        for node, ranks in by_node.items():
            ranks.sort()
            r0 = ranks[0]
            kind, prog, _ = suspects[r0]
            who = f"{_ranks_text(ranks)} on {node}" if node else _ranks_text(ranks)
            pgtxt = f" (PG {pg})" if pg else ""
            if kind == "missing":
                title = f"{who} never entered {op} #{top}{pgtxt}; {len(at_top)} rank(s) timed out waiting in it"
            else:
                title = (f"{who} behind: stuck at {prog.op or 'collective'} #{prog.seq} while "
                         f"{len(at_top)} rank(s) reached {op} #{top}{pgtxt}")
            evid = list(witness)
            for r in ranks[:3]:
                k, pr, _ = suspects[r]
                if pr is not None:
                    evid += _ev(pr.evidence)
                nr = world.by_rank.get(r)
                if nr is not None:
                    evid += _ev(nr.init_evidence or nr.first_line)
            score = base
            nr0 = world.by_rank.get(r0)
            node_x = xid_by_node.get(node or "", [])
            if node_x:
                x = next((x for x in node_x if x.rank in ranks), None) or next((x for x in node_x if x.fatal), node_x[0])
                title += f"; {_xid_phrase(x)}" + (f" on the GPU that rank {x.rank} uses" if x.rank is not None else "")
                evid.insert(0, x.evidence)
                score = 0.98 if x.fatal else 0.93
                nxt = (f"drain {node} and restart from the last checkpoint without it; first confirm on the node: "
                       f"ssh {node} 'dmesg -T | grep -i -e xid -e \"fallen off\"; nvidia-smi -q"
                       + (f" -i {x.pci}" if x.pci else "") + "'")
            elif nr0 is not None:
                nxt = f"ssh {node} 'py-spy dump --pid {nr0.pid}; nvidia-smi'  (where is rank {r0} stuck?)"
            else:
                nxt = f"preflight hang -i INVENTORY --hosts {node or '<node of rank ' + str(r0) + '>'}"
            causes.append(Cause(score, title, r0, node, _uniq(evid), nxt,
                                "watchdog_missing" if kind == "missing" else "watchdog_behind", tuple(ranks)))
    return causes


def _mismatch_causes(world: _World, logs: list[WatchdogLog]) -> list[Cause]:
    out: list[Cause] = []
    for w in logs:
        for m in w.mismatches():
            sizes = sorted(m.ops.items(), key=lambda kv: len(kv[1]))
            minority = sizes[0][1] if len(sizes[0][1]) < len(sizes[-1][1]) else ()
            parts = "; ".join(f"{op} on {_ranks_text(rs)}" for op, rs in m.ops.items())
            r0 = minority[0] if minority else None
            out.append(Cause(0.85, f"ranks disagree on collective #{m.seq}: {parts}", r0, world.node(r0, w.source),
                             _uniq(str(e) for e in m.evidence),
                             "find the code path that issues a different collective at this step (a rank-dependent "
                             "branch); rerun with TORCH_DISTRIBUTED_DEBUG=DETAIL TORCH_NCCL_TRACE_BUFFER_SIZE=2000 "
                             "TORCH_NCCL_DUMP_ON_TIMEOUT=1", "op_mismatch", tuple(minority)))
    return out


def _fr_causes(world: _World) -> list[Cause]:
    dumps = [f.dump for _, f in world.files if f.dump is not None]
    findings: list[tuple[FrFinding, str]] = []
    fm = first_mismatch(dumps) if len(dumps) > 1 else None
    if fm is not None:
        findings.append((fm, ""))
    for _, f in world.files:
        if f.frtrace is not None:
            findings += [(x, f.source) for x in f.frtrace.findings]
    out: list[Cause] = []
    nxt_fr = "torchfrtrace <dump dir> -j  (full cross-rank report), then py-spy dump on the named rank's process"
    for x, src in findings:
        r0 = x.ranks[0] if x.ranks else None
        node = world.node(r0, src)
        who = _ranks_text(x.ranks) + (f" on {node}" if node else "") if x.ranks else "some rank"
        if x.kind == "missing":
            title = f"{who} never joined {x.op or 'collective'} #{x.seq} (flight recorder, PG {x.pg})"
            score = 0.9
        else:
            title = f"{who} disagrees at {x.op or 'collective'} #{x.seq} (flight recorder): {x.detail}"
            score = 0.85
        evid = [str(e) for e in x.evidence] or [f"{d.source}: rank {d.rank} last entered "
                                               f"#{d.last_entered.collective_seq_id if d.last_entered else '-'}"
                                               for d in dumps if d.rank in x.ranks or not x.ranks][:3]
        out.append(Cause(score, title, r0, node, _uniq(evid), nxt_fr, "fr_" + x.kind, x.ranks))
    if fm is None:
        for d in dumps:
            le, lc = d.last_entered, d.last_completed
            if le is not None and le.state != "completed":
                done = f"#{lc.collective_seq_id}" if lc else "none"
                rk = f"rank {d.rank}" if d.rank is not None else "this rank"
                out.append(Cause(0.4, f"{rk} is in {le.profiling_name} #{le.collective_seq_id} ({le.state}); "
                                      f"last completed {done} (flight recorder, {d.source})",
                                 d.rank, world.node(d.rank), (f"{d.source}: entry {le.record_id} state {le.state}",),
                                 nxt_fr, "fr_stuck", (d.rank,) if d.rank is not None else ()))
    return out


def _majority(values: Counter) -> tuple[Any, int] | None:
    if not values:
        return None
    (v, n), = values.most_common(1)
    return v, n


def _node_values(ranks: list[NcclRank], attr: str) -> dict[str, Counter]:
    out: dict[str, Counter] = defaultdict(Counter)
    for r in ranks:
        v = getattr(r, attr)
        if v:
            out[r.host][v] += 1
    return out


def _fallback_causes(world: _World) -> list[Cause]:
    """Per node: libibverbs could not be loaded and NCCL carried the job over sockets (IPoIB or Ethernet), no RDMA."""
    by_node: dict[str, list[NcclRank]] = defaultdict(list)
    for r in world.nccl:
        if r.socket_fallback:
            by_node[r.host].append(r)
    others_ib = {r.host for r in world.nccl if r.transport == "IB"} - set(by_node)
    out: list[Cause] = []
    for host, rs in sorted(by_node.items()):
        ranks = sorted({r.rank for r in rs if r.rank is not None})
        ifs = tuple(dict.fromkeys(i for r in rs for i in r.interfaces))
        ipoib = [i for i in ifs if i.startswith("ib")]
        over = f"IPoIB ({', '.join(ipoib)})" if ipoib else (f"TCP on {', '.join(ifs)}" if ifs else "TCP")
        who = f"{_ranks_text(ranks)} on {host}" if ranks else host
        title = f"{who}: NCCL could not load libibverbs and fell back to sockets over {over}: no RDMA"
        if others_ib:
            title += f" ({len(others_ib)} other node(s) use NET/IB)"
        off = next((r.ib_disabled for r in rs if r.ib_disabled is not None), None)
        if off is not None:
            title += "; NCCL_IB_DISABLE is set as well"
        r0 = rs[0]
        evid = (_ev(r0.ibverbs_failure) + _ev(r0.socket_evidence) + _ev(r0.socket_via_evidence) + _ev(off)
                + [str(e) for r in rs[1:3] for e in (r.ibverbs_failure,) if e is not None])
        out.append(Cause(0.84 if others_ib else 0.78, title, ranks[0] if ranks else None, host, _uniq(evid),
                         f"ssh {host} 'ldconfig -p | grep libibverbs; ls /etc/libibverbs.d; ibv_devinfo -l'  "
                         f"(install rdma-core/libibverbs (MOFED/DOCA) on the node or in the job's container image, "
                         f"with /dev/infiniband passed in; then the log shows 'NET/IB : Using [0]mlx5_...')",
                         "socket_fallback", tuple(ranks)))
    return out


def _network_causes(world: _World, covered: set[str] | None = None) -> list[Cause]:
    """Nodes whose network differs from the majority's, or a whole job on sockets; `covered` nodes already have a
    socket-fallback cause (not named twice)."""
    covered = covered or set()
    per_node: dict[str, tuple[str | None, tuple[str, ...], tuple[str, ...]]] = {}
    first: dict[str, NcclRank] = {}
    tr = _node_values(world.nccl, "transport")
    ifs = _node_values(world.nccl, "interfaces")
    devs = _node_values(world.nccl, "net_devices")
    for h in set(tr) | set(ifs):
        per_node[h] = (_majority(tr[h])[0] if tr.get(h) else None, _majority(ifs[h])[0] if ifs.get(h) else (),
                       _majority(devs[h])[0] if devs.get(h) else ())
    for r in world.nccl:
        if r.net_evidence is not None and r.host not in first:
            first[r.host] = r
    out: list[Cause] = []
    if not per_node:
        return out
    maj_t = _majority(Counter(t for t, _, _ in per_node.values() if t))
    maj_i = _majority(Counter(i for _, i, _ in per_node.values() if i))
    maj_d = _majority(Counter(d for _, _, d in per_node.values() if d))
    n = len(per_node)

    def describe(t: str | None, i: tuple[str, ...], d: tuple[str, ...]) -> str:
        s = f"NET/{t}" if t else "the network"
        if t == "IB" and d:
            s += f" ({', '.join(d[:4])})"
        return s + (f" on {', '.join(i)}" if i else "")

    for host, (t, i, d) in sorted(per_node.items()):
        if host in covered:
            continue
        diff_t = maj_t and t and t != maj_t[0] and maj_t[1] > n / 2
        diff_i = maj_i and i and i != maj_i[0] and maj_i[1] > n / 2
        diff_d = maj_d and d and t == "IB" and d != maj_d[0] and maj_d[1] > n / 2
        if not (diff_t or diff_i or diff_d):
            continue
        others = describe(maj_t[0] if maj_t else None, maj_i[0] if maj_i else (), maj_d[0] if maj_d else ())
        title = f"{host} uses {describe(t, i, d)} while {n - 1} other node(s) use {others}"
        score = 0.82 if diff_t and diff_i else 0.8 if diff_t else 0.72 if diff_i else 0.6
        ranks = sorted(r.rank for r in world.nccl if r.host == host and r.rank is not None)
        r = first.get(host)
        ref = next((x for h, x in first.items() if h != host and per_node[h][0] == (maj_t[0] if maj_t else None)), None)
        evid = _ev(r.net_evidence if r else None) + _ev(ref.net_evidence if ref else None)
        if diff_t and t == "Socket":
            nxt = (f"ssh {host} 'ibstat; ibv_devinfo -l; ldconfig -p | grep -e libibverbs -e libnccl-net; env | grep NCCL_'"
                   f"  (why no IB on {host}: HCA down, libibverbs missing, NCCL_IB_DISABLE, or wrong NCCL_SOCKET_IFNAME)")
        else:
            nxt = (f"ssh {host} 'ip -br addr; ibdev2netdev; env | grep -e NCCL_SOCKET_IFNAME -e NCCL_IB_HCA'"
                   f"  (set the same NCCL_SOCKET_IFNAME / NCCL_IB_HCA on every node)")
        out.append(Cause(score, title, ranks[0] if ranks else None, host, _uniq(evid), nxt, "network", tuple(ranks)))
    if not out and maj_t and maj_t[0] == "Socket" and maj_t[1] == n and not set(per_node) <= covered:
        r = next(iter(first.values()), None)
        evid = [str(x.net_evidence) for x in first.values() if x.net_evidence is not None]  # one line per node
        out.append(Cause(0.45, f"the job runs NCCL over NET/Socket (TCP) on all {n} node(s): InfiniBand is not used",
                         r.rank if r else None, r.host if r else None, _uniq(evid),
                         "on a node: ibstat; ibv_devinfo -l; ldconfig -p | grep libibverbs; env | grep NCCL_IB",
                         "network"))
    return out


def _ras_where(ranks: Iterable[RasRank]) -> str:
    rs = list(ranks)
    nodes = list(dict.fromkeys(r.node for r in rs if r.node))
    on = f" on {', '.join(nodes[:4])}" + (" ..." if len(nodes) > 4 else "") if nodes else ""
    return _ranks_text(r.rank for r in rs) + on


def _ras_next(ranks: Iterable[RasRank]) -> str:
    r = next((x for x in ranks if x.node and x.pid), None)
    look = f"; if stuck: ssh {r.node} 'py-spy dump --pid {r.pid}'  (where is rank {r.rank}?)" if r else ""
    return ("repeat `ncclras -v` twice, 10 s apart: counts that advance are a transient sample, counts that do not "
            "are a stuck communicator" + look)


def _ras_causes(reports: list[RasReport]) -> list[Cause]:
    """Lagging ranks (MISMATCH of operation counts), ranks that disagree on status, processes RAS cannot reach."""
    out: list[Cause] = []
    for rep in reports:
        for m in rep.mismatches:
            comm = f"communicator #{m.comm} {m.comm_hash}"
            if m.counts_operations:
                top = m.top
                ahead = sum(g.size for g in m.groups if g.operation == top)
                for g in m.lagging:
                    what = f"launched up to operation {g.operation}" if g.operation else "launched no operation"
                    if g.ranks:
                        who, score = _ras_where(g.ranks), 0.72
                    else:
                        who, score = f"{g.size} rank(s) (RAS did not list them)", 0.5
                    title = (f"ncclras: {who} {what} while {ahead} rank(s) reached operation {top} "
                             f"({m.what}, {comm})")
                    r0 = g.ranks[0] if g.ranks else None
                    out.append(Cause(score, title, r0.rank if r0 else None, r0.node if r0 else None,
                                     _uniq([str(g.evidence)] + [str(r.evidence) for r in g.ranks]
                                           + [str(x.evidence) for x in m.groups if x.operation == top][:1]),
                                     _ras_next(g.ranks), "ras_mismatch", tuple(r.rank for r in g.ranks)))
            else:
                parts = ", ".join(f"{g.size} {g.status}" for g in m.groups if g.status)
                listed = [r for g in m.groups for r in g.ranks]
                r0 = listed[0] if listed else None
                out.append(Cause(0.35, f"ncclras: the ranks of {comm} disagree on their status: {parts} (normal "
                                       f"while a communicator initialises or is torn down)", r0.rank if r0 else None,
                                 r0.node if r0 else None, _uniq(str(g.evidence) for g in m.groups),
                                 _ras_next(listed), "ras_mismatch", tuple(r.rank for r in listed)))
        missing_by_pid = {(r.pid, r.node): r for inc in rep.incomplete for r in inc.ranks if r.pid is not None}
        for p in rep.processes:
            r = missing_by_pid.get((p.pid, p.node))
            rank = f" (rank {r.rank})" if r else ""
            if p.state == "dead":
                title = (f"ncclras: process {p.pid} on {p.node} (GPU {p.gpus}){rank} is considered dead: "
                         f"unreachable via the RAS network")
                score, kind = 0.92, "ras_dead"
            else:
                title = f"ncclras: process {p.pid} on {p.node} (GPU {p.gpus}){rank} sent RAS no communicator data"
                score, kind = 0.8, "ras_incomplete"
            out.append(Cause(score, title, r.rank if r else None, p.node,
                             _uniq([str(p.evidence)] + ([str(r.evidence)] if r else [])),
                             f"ssh {p.node} 'ps -o pid,stat,etime,cmd -p {p.pid}; py-spy dump --pid {p.pid}; "
                             f"dmesg -T | tail -50'  (crashed, stopped or wedged?)", kind, (r.rank,) if r else ()))
        seen = {(r.pid, r.node) for p in rep.processes for r in [missing_by_pid.get((p.pid, p.node))] if r}
        for inc in rep.incomplete:
            loose = [r for r in inc.ranks if (r.pid, r.node) not in seen]
            numbers = [n for n in inc.rank_numbers]
            if not loose and not numbers:
                continue
            who = _ras_where(loose) if loose else _ranks_text(numbers)
            r0 = loose[0] if loose else None
            out.append(Cause(0.75, f"ncclras: {who} of communicator #{inc.comm} {inc.comm_hash} sent no data "
                                   f"(INCOMPLETE)", r0.rank if r0 else (numbers[0] if numbers else None),
                             r0.node if r0 else None, _uniq([str(inc.evidence)] + [str(r.evidence) for r in loose]),
                             _ras_next(loose), "ras_incomplete",
                             tuple(r.rank for r in loose) or tuple(numbers)))
    return out


def _ras_note(rep: RasReport) -> str:
    """What a file's RAS report says about itself: cut short, or healthy (which is not proof of progress)."""
    notes = list(rep.notes)
    if rep.healthy:
        notes.append("ncclras: every communicator RUNNING / OK; RAS counts launched operations, so a collective "
                     "that was launched and never completes does not show here")
    return "; ".join(notes)


def _version_causes(world: _World, versions_seen: list[tuple[str, str]]) -> list[Cause]:
    by_rank = Counter(r.version for r in world.nccl if r.version)
    maj = _majority(by_rank)
    out: list[Cause] = []
    if maj and len(by_rank) > 1:
        nodes: dict[str, list[NcclRank]] = defaultdict(list)
        for r in world.nccl:
            if r.version and r.version != maj[0]:
                nodes[r.host].append(r)
        for host, rs in sorted(nodes.items()):
            ranks = sorted(r.rank for r in rs if r.rank is not None)
            vers = sorted({r.version for r in rs if r.version})
            ref = next((r for r in world.nccl if r.version == maj[0]), None)
            out.append(Cause(0.8, f"{host} runs NCCL {', '.join(vers)} while {maj[1]} rank(s) run {maj[0]}",
                             ranks[0] if ranks else None, host,
                             _uniq(_ev(rs[0].version_evidence) + _ev(ref.version_evidence if ref else None)),
                             f"ssh {host} 'python -c \"import torch; print(torch.cuda.nccl.version())\"; "
                             f"ldconfig -p | grep libnccl'  (install NCCL {maj[0]} there)", "version", tuple(ranks)))
    elif not maj:
        distinct = dict.fromkeys(v for v, _ in versions_seen)
        if len(distinct) > 1:
            out.append(Cause(0.5, f"the logs show different NCCL versions: {', '.join(distinct)}", None, None,
                             _uniq(f"{src}: NCCL version {v}" for v, src in versions_seen),
                             "check which nodes run which NCCL (ldconfig -p | grep libnccl on each)", "version"))
    return out


def _init_causes(world: _World) -> list[Cause]:
    known = [r for r in world.nccl if r.rank is not None]
    done = [r for r in known if r.init_complete]
    if not done or len(done) < len(known) / 2:
        return []
    out: list[Cause] = []
    pending: dict[str, list[NcclRank]] = defaultdict(list)
    completed = {r.rank for r in done}
    for r in known:
        if r.rank not in completed:
            pending[r.host].append(r)
    for host, rs in sorted(pending.items()):
        ranks = sorted({r.rank for r in rs if r.rank is not None})
        out.append(Cause(0.6, f"{_ranks_text(ranks)} on {host} never reached NCCL Init COMPLETE "
                              f"({len(completed)} rank(s) did)", ranks[0], host,
                         _uniq([str(rs[0].first_line)] + [str(w) for r in rs for w in r.warnings][:3]),
                         f"ssh {host} 'py-spy dump --pid {rs[0].pid}'  (where is NCCL init stuck?)", "init", tuple(ranks)))
    if world.nranks:
        absent = set(range(world.nranks)) - {r.rank for r in known}
        if absent and len(known) >= world.nranks / 2:
            out.append(Cause(0.55, f"{_ranks_text(absent)} of {world.nranks} never appear in the NCCL logs "
                                   f"(process not started, or its log is missing)", min(absent), None, (),
                             "check the launcher's log for those ranks; preflight hang -i INVENTORY", "init",
                             tuple(sorted(absent))))
    return out


def _error_causes(world: _World) -> list[Cause]:
    out: list[Cause] = []
    by_node: dict[str, list[NcclRank]] = defaultdict(list)
    for r in world.nccl:
        if r.warnings or r.errors:
            by_node[r.host].append(r)
    for host, rs in sorted(by_node.items()):
        lines = [e for r in rs for e in (*r.warnings, *r.errors)]
        ranks = sorted({r.rank for r in rs if r.rank is not None})
        codes = sorted({c for r in rs for c in r.retcodes})
        first = lines[0]
        msg = first.text.split("NCCL WARN", 1)[-1].strip()
        who = f"{_ranks_text(ranks)} on {host}" if ranks else host
        what = f" ({', '.join(RETCODES.get(c, str(c)) for c in codes)})" if codes else ""
        out.append(Cause(_error_score(msg), f"{who}: {len(lines)} NCCL warning/error line(s){what}: {msg[:140]}",
                         ranks[0] if ranks else None, host, _uniq(str(e) for e in lines), _error_next(msg, host),
                         "nccl_error", tuple(ranks)))
    loose = [e for _, f in world.files if f.nccl is not None for e in f.nccl.unattributed]
    if loose:
        msg = loose[0].text
        out.append(Cause(_error_score(msg) - 0.05, f"NCCL error without a rank prefix: {msg[:140]}", None, None,
                         _uniq(str(e) for e in loose), _error_next(msg, None), "nccl_error"))
    return out


def _error_score(msg: str) -> float:
    m = msg.lower()
    if "got completion from peer" in m or "remote process exited" in m or "mismatched collective" in m:
        return 0.65
    if "connect" in m or "connection" in m:
        return 0.6
    return 0.5


def _error_next(msg: str, host: str | None) -> str:
    m = msg.lower()
    on = f"ssh {host} " if host else ""
    if "got completion from peer" in m or "vendor err" in m:
        return f"{on}'ibstat; perfquery -x' on this node and the named peer (error 12 / vendor err 129 = IB retry timeout: link or switch)"
    if "mismatched collective" in m:
        return "check the collective calls around the named rank; rerun with NCCL_DEBUG_SUBSYS=COLL"
    if "connect" in m or "connection" in m or "route to host" in m:
        return f"{on}'ip -br addr; ip route'  and check the peer address/port is reachable; pin NCCL_SOCKET_IFNAME"
    return f"preflight hang -i INVENTORY --hosts {host or '<node>'}"


# ---------------------------------------------------------------- analyze

def _rank_rows(world: _World, logs: list[WatchdogLog]) -> tuple[RankRow, ...]:
    rows: dict[int, dict[str, Any]] = {}
    for r in world.by_rank.values():
        rows[r.rank] = dict(rank=r.rank, node=r.host, pid=r.pid, cuda_dev=r.cuda_dev, bus_id=r.bus_id,
                            nccl_version=r.version, transport=r.transport, interfaces=r.interfaces,
                            init_complete=r.init_complete)
    for w in logs:
        for p in w.progress():
            row = rows.setdefault(p.rank, dict(rank=p.rank, node=world.node(p.rank, w.source)))
            if row.get("watchdog_seq") is None or p.seq > row["watchdog_seq"]:
                row["watchdog_seq"], row["watchdog_op"] = p.seq, p.op
    for _, f in world.files:
        d = f.dump
        if d is None or d.rank is None:
            continue
        row = rows.setdefault(d.rank, dict(rank=d.rank, node=world.node(d.rank)))
        row["fr_last_entered"] = d.last_entered.collective_seq_id if d.last_entered else None
        row["fr_last_completed"] = d.last_completed.collective_seq_id if d.last_completed else None
    return tuple(RankRow(**rows[k]) for k in sorted(rows))


def analyze(paths: list[Path]) -> HangVerdict:
    """Parse every file (directories are walked), join by rank and node, and rank the likely causes."""
    world = _World()
    reports: list[FileReport] = []
    for p, shown in _with_names(paths):
        if not p.exists():
            reports.append(FileReport(str(p), (), "not found"))
            continue
        f = parse_path(p, shown)
        if isinstance(f, Unparseable):
            reports.append(FileReport(str(p), (), f.reason))
            continue
        reports.append(FileReport(str(p), f.kinds, _ras_note(f.ras) if f.ras is not None else ""))
        world.files.append((p, f))
    versions_seen: list[tuple[str, str]] = []
    for p, f in world.files:
        if f.nccl is None:
            continue
        world.nccl.extend(f.nccl.ranks)
        versions_seen += [(v, f.source) for v in f.nccl.versions]
        hosts = f.nccl.hosts
        if len(hosts) == 1:
            world.file_host[f.source] = hosts[0]
    for r in world.nccl:
        if r.rank is None:
            continue
        cur = world.by_rank.get(r.rank)
        if cur is None or (r.nranks or 0) > (cur.nranks or 0) or (r.init_complete and not cur.init_complete):
            world.by_rank[r.rank] = r
        if r.nranks and (world.nranks is None or r.nranks > world.nranks):
            world.nranks = r.nranks
    logs = [f.watchdog for _, f in world.files if f.watchdog is not None]
    xids = _xids(world)
    causes = _watchdog_causes(world, logs, xids) + _mismatch_causes(world, logs) + _fr_causes(world)
    folded = {c.node for c in causes if c.kind.startswith("watchdog") and "logged" in c.title}
    for x in xids:
        if x.node in folded and x.node is not None:
            continue
        who = f" on the GPU that rank {x.rank} uses" if x.rank is not None else (f" (GPU {x.pci})" if x.pci else "")
        causes.append(Cause(0.8 if x.fatal else 0.45, _xid_phrase(x) + who, x.rank, x.node, (x.evidence,),
                            f"drain {x.node or 'the node'}; ssh {x.node or '<node>'} 'nvidia-smi -q"
                            + (f" -i {x.pci}" if x.pci else "") + "; dmesg -T | grep -i xid'", "xid",
                            (x.rank,) if x.rank is not None else ()))
    fallback = _fallback_causes(world)
    causes += fallback + _network_causes(world, {c.node for c in fallback if c.node})
    causes += _version_causes(world, versions_seen) + _init_causes(world) + _error_causes(world)
    causes += _ras_causes([f.ras for _, f in world.files if f.ras is not None])
    causes = _dedupe_xid(causes)
    causes.sort(key=lambda c: (-c.score, c.title))
    hosts = {r.host for r in world.nccl}
    kinds = Counter(k for r in reports for k in r.kinds)
    unknown = sum(1 for r in reports if not r.kinds)
    summary = (f"{len(reports)} file(s): " + (", ".join(f"{n} {k}" for k, n in sorted(kinds.items())) or "none recognised")
               + (f", {unknown} not recognised" if unknown else "")
               + f"; {len(world.by_rank)} rank(s) on {len(hosts)} node(s) in NCCL logs; {len(causes)} likely cause(s)")
    return HangVerdict(tuple(causes), _rank_rows(world, logs), tuple(reports), summary)


def _dedupe_xid(causes: list[Cause]) -> list[Cause]:
    """Repeated Xid lines of one code on one node are one cause (the first line kept, the rest as evidence)."""
    out: list[Cause] = []
    seen: dict[tuple[str | None, str], int] = {}
    for c in causes:
        if c.kind != "xid":
            out.append(c)
            continue
        key = (c.node, c.title.split(" at ")[0])
        if key in seen:
            i = seen[key]
            out[i] = Cause(out[i].score, out[i].title, out[i].rank, out[i].node, _uniq(out[i].evidence + c.evidence),
                           out[i].next_command, out[i].kind, out[i].ranks)
            continue
        seen[key] = len(out)
        out.append(c)
    return out
