"""What a hang verdict is made of (Cause, RankRow, FileReport, HangVerdict), and how a cause quotes its evidence
and names ranks: shared by every cause module (preflight/hang/causes/) so they all read alike."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from preflight.hang.lines import Evidence

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
    job: int | None = None  # which job of the inputs (JobVerdict.index) it is about, when they hold several


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
    """One input file: what it was recognised as, and why not or what it says about itself."""

    path: str
    kinds: tuple[str, ...]  # nccl_log, watchdog, flight_recorder, frtrace, kernel_log; () = not recognised
    note: str = ""
    job: int | None = None  # the job (JobVerdict.index) it was put with; None when not recognised


@dataclass(frozen=True)
class JobVerdict:
    """One job's share of the inputs and its own ranked causes (`preflight analyze` keeps jobs apart)."""

    index: int
    files: tuple[str, ...]
    why: tuple[str, ...]  # what put these files together: 'communicator 996ee6f1...', 'host gpu-01'
    description: str  # its hosts, NCCL versions and communicators
    verdict: HangVerdict

    def to_dict(self) -> dict[str, Any]:
        d = self.verdict.to_dict()
        return {"job": self.index, "files": list(self.files), "grouped_by": list(self.why),
                "description": self.description, "summary": d["summary"], "causes": d["causes"], "ranks": d["ranks"],
                "next_commands": d["next_commands"]}


@dataclass(frozen=True)
class HangVerdict:
    """The likely causes, most likely first, with the per-rank table and the inputs they came from."""

    causes: tuple[Cause, ...]
    ranks: tuple[RankRow, ...] = ()
    files: tuple[FileReport, ...] = ()
    summary: str = ""
    jobs: tuple[JobVerdict, ...] = ()  # one per job the inputs hold (analyze); () for a live gather
    next_commands: tuple[str, ...] = ()  # when no cause is named: what to run next, in order (hang/next_steps.py)

    @property
    def culprit(self) -> Cause | None:
        return self.causes[0] if self.causes else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "summary": self.summary,
            "causes": [asdict(c) | {"evidence": list(c.evidence), "ranks": list(c.ranks)} for c in self.causes],
            "ranks": [asdict(r) | {"interfaces": list(r.interfaces)} for r in self.ranks],
            "files": [{"path": f.path, "kinds": list(f.kinds), "note": f.note, "job": f.job} for f in self.files],
            "jobs": [j.to_dict() for j in self.jobs],
            "next_commands": list(self.next_commands),
        }


def quoted(e: Evidence | None) -> list[str]:
    """One evidence line as a list (empty when the input had none), ready to be concatenated."""
    return [str(e)] if e is not None else []


def evidence_tuple(lines: Iterable[str]) -> tuple[str, ...]:
    """A cause's evidence: distinct lines, first-seen order, at most MAX_EVIDENCE_LINES."""
    return tuple(dict.fromkeys(lines))[:MAX_EVIDENCE_LINES]


def ranks_text(ranks: Iterable[int]) -> str:
    """'rank 3', 'ranks 4-7' (a contiguous run) or 'ranks 1, 5' (at most 12 named)."""
    rs = sorted(set(ranks))
    if len(rs) > 2 and rs[-1] - rs[0] == len(rs) - 1:
        return f"ranks {rs[0]}-{rs[-1]}"
    return ("rank " if len(rs) == 1 else "ranks ") + ", ".join(map(str, rs[:12])) + (" ..." if len(rs) > 12 else "")
