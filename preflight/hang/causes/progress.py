"""Causes from collective progress: ranks behind or missing in the PyTorch watchdog's timeouts, ranks that
disagree on the collective at one step, and flight-recorder dumps (missing, mismatched or stuck collectives)."""

from __future__ import annotations

from collections import defaultdict

from preflight.hang.causes.kernel import Xid, xid_phrase
from preflight.hang.flight_recorder import FrFinding, first_mismatch
from preflight.hang.joined import JoinedInputs
from preflight.hang.verdict_types import Cause, evidence_tuple, quoted, ranks_text
from preflight.hang.watchdog import RankProgress, WatchdogLog


def watchdog_causes(world: JoinedInputs, logs: list[WatchdogLog], xids: list[Xid]) -> list[Cause]:
    """Ranks behind the highest collective the watchdog saw, or absent from it, grouped by node (an Xid there
    makes it near certain)."""
    progress: list[tuple[RankProgress, str]] = [(p, w.source) for w in logs for p in w.progress()]
    if not progress:
        return []
    pgs = {p.pg for p, _ in progress if p.pg is not None}
    groups: dict[str | None, list[tuple[RankProgress, str]]] = defaultdict(list)
    for p, src in progress:
        groups[p.pg if len(pgs) > 1 else None].append((p, src))
    xid_by_node: dict[str, list[Xid]] = defaultdict(list)
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
        witness = quoted(at_top[0][0].evidence)
        by_node: dict[str | None, list[int]] = defaultdict(list)
        for r, (_, _, src) in suspects.items():
            by_node[world.node(r, src)].append(r)
        for node, ranks in by_node.items():
            ranks.sort()
            r0 = ranks[0]
            kind, prog, _ = suspects[r0]
            who = f"{ranks_text(ranks)} on {node}" if node else ranks_text(ranks)
            pgtxt = f" (PG {pg})" if pg else ""
            if kind == "missing":
                title = f"{who} never entered {op} #{top}{pgtxt}; {len(at_top)} rank(s) timed out waiting in it"
            else:
                assert prog is not None  # a rank "behind" carries its progress; only "missing" ones have none
                title = (f"{who} behind: stuck at {prog.op or 'collective'} #{prog.seq} while "
                         f"{len(at_top)} rank(s) reached {op} #{top}{pgtxt}")
            evid = list(witness)
            for r in ranks[:3]:
                k, pr, _ = suspects[r]
                if pr is not None:
                    evid += quoted(pr.evidence)
                nr = world.by_rank.get(r)
                if nr is not None:
                    evid += quoted(nr.init_evidence or nr.first_line)
            score = base
            nr0 = world.by_rank.get(r0)
            node_x = xid_by_node.get(node or "", [])
            if node_x:
                x = next((x for x in node_x if x.rank in ranks), None) or next((x for x in node_x if x.fatal), node_x[0])
                title += f"; {xid_phrase(x)}" + (f" on the GPU that rank {x.rank} uses" if x.rank is not None else "")
                evid.insert(0, x.evidence)
                score = 0.98 if x.fatal else 0.93
                nxt = (f"drain {node} and restart from the last checkpoint without it; first confirm on the node: "
                       f"ssh {node} 'dmesg -T | grep -i -e xid -e \"fallen off\"; nvidia-smi -q"
                       + (f" -i {x.pci}" if x.pci else "") + "'")
            elif nr0 is not None:
                nxt = f"ssh {node} 'py-spy dump --pid {nr0.pid}; nvidia-smi'  (where is rank {r0} stuck?)"
            else:
                nxt = f"preflight hang -i INVENTORY --hosts {node or '<node of rank ' + str(r0) + '>'}"
            causes.append(Cause(score, title, r0, node, evidence_tuple(evid), nxt,
                                "watchdog_missing" if kind == "missing" else "watchdog_behind", tuple(ranks)))
    return causes


def mismatch_causes(world: JoinedInputs, logs: list[WatchdogLog]) -> list[Cause]:
    """Ranks that ran different collectives at one sequence number: a rank-dependent code path."""
    out: list[Cause] = []
    for w in logs:
        for m in w.mismatches():
            sizes = sorted(m.ops.items(), key=lambda kv: len(kv[1]))
            minority = sizes[0][1] if len(sizes[0][1]) < len(sizes[-1][1]) else ()
            parts = "; ".join(f"{op} on {ranks_text(rs)}" for op, rs in m.ops.items())
            r0 = minority[0] if minority else None
            out.append(Cause(0.85, f"ranks disagree on collective #{m.seq}: {parts}", r0, world.node(r0, w.source),
                             evidence_tuple(str(e) for e in m.evidence),
                             "find the code path that issues a different collective at this step (a rank-dependent "
                             "branch); rerun with TORCH_DISTRIBUTED_DEBUG=DETAIL TORCH_NCCL_TRACE_BUFFER_SIZE=2000 "
                             "TORCH_NCCL_DUMP_ON_TIMEOUT=1", "op_mismatch", tuple(minority)))
    return out


def flight_recorder_causes(world: JoinedInputs) -> list[Cause]:
    """Missing or mismatched collectives across flight-recorder dumps; without any, each rank stuck in one."""
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
        who = ranks_text(x.ranks) + (f" on {node}" if node else "") if x.ranks else "some rank"
        if x.kind == "missing":
            title = f"{who} never joined {x.op or 'collective'} #{x.seq} (flight recorder, PG {x.pg})"
            score = 0.9
        else:
            title = f"{who} disagrees at {x.op or 'collective'} #{x.seq} (flight recorder): {x.detail}"
            score = 0.85
        evid = [str(e) for e in x.evidence] or [f"{d.source}: rank {d.rank} last entered "
                                               f"#{d.last_entered.collective_seq_id if d.last_entered else '-'}"
                                               for d in dumps if d.rank in x.ranks or not x.ranks][:3]
        out.append(Cause(score, title, r0, node, evidence_tuple(evid), nxt_fr, "fr_" + x.kind, x.ranks))
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
