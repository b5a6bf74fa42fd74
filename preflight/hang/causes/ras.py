"""Causes from NCCL RAS status reports (ncclras): lagging operation counts, status disagreements, processes RAS
cannot reach; and the note a report gets about itself (cut short, or healthy)."""

from __future__ import annotations

from collections.abc import Iterable

from preflight.hang.ncclras import RasRank, RasReport
from preflight.hang.verdict_types import Cause, evidence_tuple, ranks_text


def _ras_where(ranks: Iterable[RasRank]) -> str:
    """'ranks 4-7 on node-2': the ranks and the nodes they run on (at most 4 named)."""
    rs = list(ranks)
    nodes = list(dict.fromkeys(r.node for r in rs if r.node))
    on = f" on {', '.join(nodes[:4])}" + (" ..." if len(nodes) > 4 else "") if nodes else ""
    return ranks_text(r.rank for r in rs) + on


def _ras_next(ranks: Iterable[RasRank]) -> str:
    """Repeat the query (a MISMATCH can be transient), then look at a named rank's stack."""
    r = next((x for x in ranks if x.node and x.pid), None)
    look = f"; if stuck: ssh {r.node} 'py-spy dump --pid {r.pid}'  (where is rank {r.rank}?)" if r else ""
    return ("repeat `ncclras -v` twice, 10 s apart: counts that advance are a transient sample, counts that do not "
            "are a stuck communicator" + look)


def ras_causes(reports: list[RasReport]) -> list[Cause]:
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
                                     evidence_tuple([str(g.evidence)] + [str(r.evidence) for r in g.ranks]
                                           + [str(x.evidence) for x in m.groups if x.operation == top][:1]),
                                     _ras_next(g.ranks), "ras_mismatch", tuple(r.rank for r in g.ranks)))
            else:
                parts = ", ".join(f"{g.size} {g.status}" for g in m.groups if g.status)
                listed = [r for g in m.groups for r in g.ranks]
                r0 = listed[0] if listed else None
                out.append(Cause(0.35, f"ncclras: the ranks of {comm} disagree on their status: {parts} (normal "
                                       f"while a communicator initialises or is torn down)", r0.rank if r0 else None,
                                 r0.node if r0 else None, evidence_tuple(str(g.evidence) for g in m.groups),
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
                             evidence_tuple([str(p.evidence)] + ([str(r.evidence)] if r else [])),
                             f"ssh {p.node} 'ps -o pid,stat,etime,cmd -p {p.pid}; py-spy dump --pid {p.pid}; "
                             f"dmesg -T | tail -50'  (crashed, stopped or wedged?)", kind, (r.rank,) if r else ()))
        seen = {(r.pid, r.node) for p in rep.processes for r in [missing_by_pid.get((p.pid, p.node))] if r}
        for inc in rep.incomplete:
            loose = [r for r in inc.ranks if (r.pid, r.node) not in seen]
            numbers = list(inc.rank_numbers)
            if not loose and not numbers:
                continue
            who = _ras_where(loose) if loose else ranks_text(numbers)
            r0 = loose[0] if loose else None
            out.append(Cause(0.75, f"ncclras: {who} of communicator #{inc.comm} {inc.comm_hash} sent no data "
                                   f"(INCOMPLETE)", r0.rank if r0 else (numbers[0] if numbers else None),
                             r0.node if r0 else None, evidence_tuple([str(inc.evidence)] + [str(r.evidence) for r in loose]),
                             _ras_next(loose), "ras_incomplete",
                             tuple(r.rank for r in loose) or tuple(numbers)))
    return out


def ras_note(rep: RasReport) -> str:
    """What a file's RAS report says about itself: cut short, or healthy (which is not proof of progress)."""
    notes = list(rep.notes)
    if rep.healthy:
        notes.append("ncclras: every communicator RUNNING / OK; RAS counts launched operations, so a collective "
                     "that was launched and never completes does not show here")
    return "; ".join(notes)
