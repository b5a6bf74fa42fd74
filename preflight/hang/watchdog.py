"""PyTorch ProcessGroupNCCL watchdog timeouts: the collective sequence number each rank reached.

  [rank7]:[E816 01:45:40.18 ProcessGroupNCCL.cpp:607] [Rank 7] Watchdog caught collective operation timeout:
      WorkNCCL(SeqNum=80078, OpType=BROADCAST, NumelIn=5056, NumelOut=5056, Timeout(ms)=600000) ran for 600026 milliseconds ...
  [E ProcessGroupNCCL.cpp:737] [Rank 1] Watchdog caught ... WorkNCCL(SeqNum=469508, OpType=ALLREDUCE, Timeout(ms)=1800000) ...
  [PG 0 (default_pg) Rank 7] Exception (either an error or timeout) detected by watchdog at work: 80078,
      last enqueued NCCL work: 80078, last completed NCCL work: 80077.
Records may be glued to other text (progress bars, flattened paragraphs); every occurrence on a line is read.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass

from preflight.hang.lines import Evidence, evidence, split_lines, strip_launcher
from preflight.parse.common import Unparseable

_TIMEOUT = re.compile(
    r"Watchdog caught collective operation timeout: WorkNCCL\(SeqNum=(?P<seq>\d+), OpType=(?P<op>\w+)"
    r"(?:, NumelIn=(?P<nin>-?\d+), NumelOut=(?P<nout>-?\d+))?(?:, Timeout\(ms\)=(?P<tmo>\d+))?\)"
    r"(?: ran for (?P<ran>\d+) milliseconds)?"
)
_AT_WORK = re.compile(
    r"detected by watchdog at work: (?P<work>-?\d+), last enqueued NCCL work: (?P<enq>-?\d+), "
    r"last completed NCCL work: (?P<done>-?\d+)"
)
# '[Rank 7]', '[PG 1 Rank 0]', '[PG 0 (default_pg) Rank 7]', '[PG ID 0 PG GUID 0(default_pg) Rank 3]'
_TAG = re.compile(r"\[(?:PG (?:ID )?(?P<pg>\d+)[^\]]*?)?Rank (?P<rank>\d+)\]")
_TORCHRUN = re.compile(r"\[rank(?P<rank>\d+)\]:")
_STAMP = re.compile(r"\[[EWI](?P<md>\d{3,4}) (?P<hms>\d\d:\d\d:\d\d)")


@dataclass(frozen=True)
class WatchdogRecord:
    """One 'Watchdog caught collective operation timeout' (kind='timeout') or 'detected by watchdog' (kind='at_work')."""

    kind: str
    rank: int | None
    pg: str | None
    seq: int
    op: str | None = None
    numel_in: int | None = None
    numel_out: int | None = None
    timeout_ms: int | None = None
    ran_for_ms: int | None = None
    last_enqueued: int | None = None
    last_completed: int | None = None
    time: str | None = None  # as printed: '0816 01:45:40'
    evidence: Evidence | None = None


@dataclass(frozen=True)
class RankProgress:
    """The furthest timed-out collective of one rank in one process group."""

    rank: int
    pg: str | None
    seq: int
    op: str | None
    numel_in: int | None
    last_completed: int | None
    evidence: Evidence | None


@dataclass(frozen=True)
class OpMismatch:
    pg: str | None
    seq: int
    ops: dict[str, tuple[int, ...]]  # op type (or 'ALLREDUCE numel=5056') -> ranks
    evidence: tuple[Evidence, ...]


@dataclass(frozen=True)
class WatchdogLog:
    records: tuple[WatchdogRecord, ...]
    source: str = ""

    def _pg_of(self) -> dict[int, str | None]:
        """A rank's process group when its records name exactly one (timeout lines often omit it)."""
        pgs: dict[int, set[str]] = defaultdict(set)
        for r in self.records:
            if r.rank is not None and r.pg is not None:
                pgs[r.rank].add(r.pg)
        return {k: next(iter(v)) for k, v in pgs.items() if len(v) == 1}

    def progress(self) -> tuple[RankProgress, ...]:
        """Per (process group, rank): the highest SeqNum the watchdog caught it in, and its last completed work."""
        only = self._pg_of()
        best: dict[tuple[str | None, int], WatchdogRecord] = {}
        done: dict[tuple[str | None, int], int] = {}
        for r in self.records:
            if r.rank is None:
                continue
            key = (r.pg if r.pg is not None else only.get(r.rank), r.rank)
            if r.last_completed is not None:
                done[key] = max(done.get(key, -1), r.last_completed)
            cur = best.get(key)
            if cur is None or r.seq > cur.seq or (r.seq == cur.seq and cur.kind != "timeout" and r.kind == "timeout"):
                best[key] = r
        out = [RankProgress(rank, pg, r.seq, r.op, r.numel_in, done.get((pg, rank)), r.evidence)
               for (pg, rank), r in best.items()]
        return tuple(sorted(out, key=lambda p: (p.pg or "", p.rank)))

    def max_seq(self) -> int | None:
        return max((r.seq for r in self.records), default=None)

    def mismatches(self) -> tuple[OpMismatch, ...]:
        """Same (PG, SeqNum), different OpType (or different NumelIn for the same op) across ranks. One pass."""
        ops_at: dict[tuple[str | None, int], dict[str, dict[int, Evidence | None]]] = defaultdict(lambda: defaultdict(dict))
        sizes_at: dict[tuple[str | None, int], dict[str, dict[int, Evidence | None]]] = defaultdict(lambda: defaultdict(dict))
        for r in self.records:
            if r.kind != "timeout" or r.rank is None or r.op is None:
                continue
            ops_at[(r.pg, r.seq)][r.op][r.rank] = r.evidence
            if r.numel_in is not None:
                sizes_at[(r.pg, r.seq)][f"{r.op} NumelIn={r.numel_in}"][r.rank] = r.evidence
        out: list[OpMismatch] = []
        for key, ops in ops_at.items():
            table = ops if len(ops) > 1 else sizes_at.get(key, {})
            if len(table) > 1:
                evs = tuple(next(e for e in d.values() if e) for d in table.values() if any(d.values()))
                out.append(OpMismatch(key[0], key[1], {k: tuple(sorted(d)) for k, d in table.items()}, evs))
        return tuple(sorted(out, key=lambda m: (m.pg or "", m.seq)))


def _int(v: str | None) -> int | None:
    return int(v) if v is not None else None


def parse_watchdog(text: str, source: str = "") -> WatchdogLog | Unparseable:
    """Every watchdog record in the text; Unparseable when there is none. Never raises on bad input."""
    if not isinstance(text, str) or "atchdog" not in text:
        return Unparseable.of("no PyTorch watchdog lines ('Watchdog caught collective operation timeout')",
                              text if isinstance(text, str) else "")
    records: list[WatchdogRecord] = []
    for lineno, raw in enumerate(split_lines(text), 1):
        if "atchdog" not in raw:
            continue
        line, _ = strip_launcher(raw)
        hits = sorted([(m.start(), "timeout", m) for m in _TIMEOUT.finditer(line)]
                      + [(m.start(), "at_work", m) for m in _AT_WORK.finditer(line)], key=lambda h: h[0])
        prev_end = 0
        for start, kind, m in hits:
            window = line[prev_end:start]
            tags = list(_TAG.finditer(window))
            rank = pg = None
            if tags:
                rank, pg = int(tags[-1].group("rank")), tags[-1].group("pg")
            else:
                t = list(_TORCHRUN.finditer(window))
                rank = int(t[-1].group("rank")) if t else None
            st = list(_STAMP.finditer(window))
            when = f"{st[-1].group('md').zfill(4)} {st[-1].group('hms')}" if st else None
            ev = evidence(source, lineno, line[max(prev_end, start - 160): m.end() + 40] if len(line) > 600 else line)
            if kind == "timeout":
                records.append(WatchdogRecord("timeout", rank, pg, int(m.group("seq")), m.group("op"), _int(m.group("nin")),
                                              _int(m.group("nout")), _int(m.group("tmo")), _int(m.group("ran")),
                                              time=when, evidence=ev))
            else:
                records.append(WatchdogRecord("at_work", rank, pg, int(m.group("work")), last_enqueued=int(m.group("enq")),
                                              last_completed=int(m.group("done")), time=when, evidence=ev))
            prev_end = m.end()
    if not records:
        return Unparseable.of("no PyTorch watchdog timeout records", text)
    return WatchdogLog(tuple(records), source)
