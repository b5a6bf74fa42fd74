"""`preflight hang --dump-fr`: the PyTorch flight-recorder dumps the collector triggered on each rank, judged
across ranks (pure: a bundle in, causes and outcomes out).

The node side (collect/collector.py, `builtin_fr_dump`) writes one byte to each rank's debug-info pipe
(`<TORCH_NCCL_DEBUG_INFO_PIPE_FILE><rank>.pipe`, the FIFO PyTorch's heartbeat-monitor thread polls), waits a
bounded time for `<TORCH_FR_DUMP_TEMP_FILE | TORCH_NCCL_DEBUG_INFO_TEMP_FILE><rank>` to be written, and sends it
back base64-encoded with its sha256. Every outcome is data: no pipe named, no FIFO, no reader, refused (symlink,
not a FIFO, another owner), dump absent, still being written (timeout), too big, collected. Here each collected
dump is checked against its digest (node text is scrubbed on arrival; a dump it altered is refused, never
misread), unpickled with the restricted unpickler (or read as JSON), and the dumps are compared: a rank missing
from a collective the others entered is ranked first, with the dump files as evidence.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from dataclasses import dataclass, replace
from typing import Any

from preflight.collect.bundle import Bundle, NodeRaw
from preflight.collect.probes import FR_PROBE
from preflight.hang.flight_recorder import FrDump, FrFinding, first_mismatch, parse_dump_bytes
from preflight.hang.verdict_types import Cause, evidence_tuple, ranks_text
from preflight.parse.common import Unparseable
from preflight.textsafe import clean


@dataclass(frozen=True)
class FrRecord:
    """One rank's answer to the trigger: the node-side outcome and, when collected, the dump or why it was refused."""

    node: str
    pid: int | None
    rank: int | None
    outcome: str  # collected | no_pipe_named | no_fifo | no_reader | refused | dump_absent | timeout | too_big | ...
    note: str = ""
    pipe: str | None = None
    dump_path: str | None = None
    size: int | None = None
    dump: FrDump | None = None
    refused: str | None = None  # a collected dump that could not be read as one, and why

    @property
    def source(self) -> str:
        return f"{self.node}:{self.dump_path or '?'}"

    def to_dict(self) -> dict[str, Any]:
        d = self.dump
        le = d.last_entered if d else None
        lc = d.last_completed if d else None
        return {"node": self.node, "pid": self.pid, "rank": self.rank, "outcome": self.outcome, "note": self.note,
                "pipe": self.pipe, "dump_path": self.dump_path, "size": self.size,
                "parsed": None if self.outcome != "collected" else (self.refused is None),
                "refused": self.refused, "version": d.version if d else None, "entries": len(d.entries) if d else None,
                "last_entered": le.collective_seq_id if le else None, "last_entered_op": le.profiling_name if le else None,
                "last_entered_state": le.state if le else None, "last_completed": lc.collective_seq_id if lc else None}


def _int(v: Any) -> int | None:
    return v if isinstance(v, int) and not isinstance(v, bool) else None


def decode(rec: dict[str, Any], node: str) -> FrDump | Unparseable:
    """A collected record's dump: base64 -> bytes, checked against the node's sha256, then parsed."""
    try:
        data = base64.b64decode(str(rec.get("data_b64") or ""), validate=True)
    except (binascii.Error, ValueError) as e:
        return Unparseable.of(f"dump is not valid base64 ({e})", "")
    if hashlib.sha256(data).hexdigest() != rec.get("sha256"):
        return Unparseable.of("dump does not match the sha256 the node computed (altered on the way): not read", "")
    dump = parse_dump_bytes(data, f"{node}:{rec.get('dump_path') or ''}")
    if isinstance(dump, Unparseable):
        return dump
    rank = _int(rec.get("rank"))
    # PyTorch's dump holds no rank of its own: the file name's number, else the process's RANK
    return replace(dump, rank=rank) if dump.rank is None and rank is not None else dump


def _probe_doc(raw: NodeRaw) -> tuple[dict[str, Any] | None, str | None]:
    p = raw.probe(FR_PROBE)
    if p is None:
        return None, None
    if p.get("error"):
        return None, str(p["error"]) + (f": {p['note']}" if p.get("note") else "")
    try:
        doc = json.loads(p.get("stdout") or "")
    except ValueError:
        return None, "output is not the collector's JSON"
    return (clean(doc), None) if isinstance(doc, dict) else (None, "output is not the collector's JSON")


def fr_records(bundle: Bundle) -> tuple[list[FrRecord], list[str]]:
    """Every rank's record from the nodes that ran the trigger, and a note per node where it could not run."""
    records: list[FrRecord] = []
    notes: list[str] = []
    for raw in bundle.nodes:
        if raw.outcome != "ok":
            continue
        doc, why = _probe_doc(raw)
        if why:
            notes.append(f"flight recorder on {raw.name}: {why}")
        for rec in (doc or {}).get("ranks") or []:
            if not isinstance(rec, dict):
                continue
            outcome = str(rec.get("outcome") or "unknown")
            base = FrRecord(raw.name, _int(rec.get("pid")), _int(rec.get("rank")), outcome, str(rec.get("note") or ""),
                            rec.get("pipe") if isinstance(rec.get("pipe"), str) else None,
                            rec.get("dump_path") if isinstance(rec.get("dump_path"), str) else None, _int(rec.get("size")))
            if outcome == "collected":
                dump = decode(rec, raw.name)
                base = replace(base, refused=dump.reason) if isinstance(dump, Unparseable) else replace(base, dump=dump)
            records.append(base)
    return records, notes


def _entered(dump: FrDump, finding: FrFinding) -> str:
    e = next((e for e in dump.collectives(finding.pg) if e.collective_seq_id == finding.seq), None)
    return f"entered {e.profiling_name} #{finding.seq} ({e.state})" if e else f"has no #{finding.seq}"


def _last(dump: FrDump) -> str:
    le, lc = dump.last_entered, dump.last_completed
    return (f"last entered {le.profiling_name} #{le.collective_seq_id} ({le.state})" if le else "no collective recorded") \
        + f", last completed #{lc.collective_seq_id if lc else '-'}"


def fr_causes(records: list[FrRecord]) -> list[Cause]:
    """The first collective the collected dumps disagree on: the ranks missing from it (the never-joined rank,
    everyone else waits for it) or the minority of a size/op/dtype mismatch."""
    got = [r for r in records if r.dump is not None]
    by_rank = {r.dump.rank: r for r in got if r.dump is not None and r.dump.rank is not None}
    if len(by_rank) < 2:
        return []
    finding = first_mismatch([r.dump for r in by_rank.values() if r.dump is not None])
    if finding is None or not finding.ranks:
        return []
    culprits = [by_rank[k] for k in finding.ranks if k in by_rank]
    peers = [r for k, r in sorted(by_rank.items()) if k not in finding.ranks]
    r0 = culprits[0] if culprits else None
    where = f" on {r0.node}" if r0 else ""
    op = finding.op or "a collective"
    ev = [f"{c.source}: rank {c.rank} {_last(c.dump)}" for c in culprits[:3] if c.dump is not None]
    ev += [f"{p.source}: rank {p.rank} {_entered(p.dump, finding)}" for p in peers[:2] if p.dump is not None]
    files = sorted({re.sub(r"\d+$", "*", r.source) for r in got})[:4]
    nxt = (f"ssh {r0.node} 'py-spy dump --native --pid {r0.pid}'" if r0 and r0.pid else "py-spy dump on the named rank") \
        + f"; for the full cross-rank report copy the dumps ({', '.join(files)}) to one folder and run torchfrtrace on it"
    entered = sorted(k for k in by_rank if k not in finding.ranks)
    if finding.kind == "missing":
        title = (f"{ranks_text(finding.ranks)}{where} never entered {op} #{finding.seq} that {ranks_text(entered)} "
                 f"entered (flight-recorder dumps taken now, PG {finding.pg})")
        return [Cause(0.96, title, finding.ranks[0], r0.node if r0 else None, evidence_tuple(ev), nxt,
                      "live_fr_missing", finding.ranks)]
    title = f"{ranks_text(finding.ranks)}{where} disagrees at {op} #{finding.seq} (flight-recorder dumps taken now): {finding.detail}"
    return [Cause(0.9, title, finding.ranks[0], r0.node if r0 else None, evidence_tuple(ev), nxt,
                  "live_fr_mismatch", finding.ranks)]


def fr_notes(records: list[FrRecord]) -> list[str]:
    """One line for the whole trigger, then one per outcome that left ranks without a dump: which ranks, on
    which nodes, and the first one's reason (a fleet of ranks without the pipe is one line, not a thousand)."""
    if not records:
        return []
    got = sum(1 for r in records if r.dump is not None)
    out = [f"flight recorder: {len(records)} rank(s) found, {got} dump(s) collected and read"]
    groups: dict[str, list[FrRecord]] = {}
    for r in sorted(records, key=lambda r: (r.rank if r.rank is not None else 10**9, r.node)):
        if r.dump is None:
            groups.setdefault("collected, not readable" if r.refused else r.outcome, []).append(r)
    for outcome, rs in groups.items():
        nodes = sorted({r.node for r in rs})
        ranks = [r.rank for r in rs if r.rank is not None]
        first = rs[0]
        out.append(f"flight recorder: {outcome}: {ranks_text(ranks) if ranks else 'a rank'} on {', '.join(nodes[:4])}"
                   + (f" and {len(nodes) - 4} more node(s)" if len(nodes) > 4 else "")
                   + f"; rank {first.rank} (pid {first.pid}): {first.refused or first.note or first.outcome}")
    return out


def judge_fr(bundle: Bundle) -> tuple[list[Cause], list[str], list[dict[str, Any]]]:
    """(causes, notes, the per-rank outcomes for --json) of a gather; all empty when --dump-fr was not asked."""
    records, notes = fr_records(bundle)
    return fr_causes(records), notes + fr_notes(records), [r.to_dict() for r in records]
