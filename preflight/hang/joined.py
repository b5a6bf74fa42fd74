"""The hang inputs parsed and joined by rank and node: which files were read, every NCCL rank, the host each
log names, the job size; and the per-rank table (RankRow) built from that join.

Linear in the total input size: one parse per file, then dictionary joins.
"""

from __future__ import annotations

import os
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from preflight.hang.causes.ras import ras_note
from preflight.hang.nccl_log import NcclRank
from preflight.hang.sniff import HangFile, parse_path
from preflight.hang.verdict_types import FileReport, RankRow
from preflight.hang.watchdog import WatchdogLog
from preflight.parse.common import Unparseable


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


def with_names(paths: Iterable[Path]) -> list[tuple[Path, str]]:
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
class JoinedInputs:
    """Everything parsed, joined by rank and node."""

    files: list[tuple[Path, HangFile]] = field(default_factory=list)
    nccl: list[NcclRank] = field(default_factory=list)
    by_rank: dict[int, NcclRank] = field(default_factory=dict)
    file_host: dict[str, str] = field(default_factory=dict)  # source -> the one host its NCCL lines name
    nranks: int | None = None
    reports: list[FileReport] = field(default_factory=list)  # one per input file, recognised or not
    versions_seen: list[tuple[str, str]] = field(default_factory=list)  # (NCCL version, source), as printed

    def node(self, rank: int | None, source: str | None = None) -> str | None:
        r = self.by_rank.get(rank) if rank is not None else None
        if r is not None:
            return r.host
        return self.file_host.get(source or "")

    @property
    def watchdog_logs(self) -> list[WatchdogLog]:
        return [f.watchdog for _, f in self.files if f.watchdog is not None]


def join_inputs(paths: list[Path]) -> JoinedInputs:
    """Parse every file (directories are walked), then join the NCCL ranks by rank number and log by host."""
    world = JoinedInputs()
    _parse_files(world, paths)
    return join_parsed(world.files, world.reports)


def parse_inputs(paths: list[Path]) -> JoinedInputs:
    """Every file parsed (world.files, world.reports), nothing joined yet: jobs.group_jobs splits them first."""
    world = JoinedInputs()
    _parse_files(world, paths)
    return world


def join_parsed(files: list[tuple[Path, HangFile]], reports: list[FileReport]) -> JoinedInputs:
    """Already parsed files (one job's) joined: the NCCL ranks by rank number and each log by its host."""
    world = JoinedInputs(files=list(files), reports=list(reports))
    _collect_nccl(world)
    _pick_ranks(world)
    return world


def _parse_files(world: JoinedInputs, paths: list[Path]) -> None:
    for p, shown in with_names(paths):
        if not p.exists():
            world.reports.append(FileReport(str(p), (), "not found"))
            continue
        f = parse_path(p, shown)
        if isinstance(f, Unparseable):
            world.reports.append(FileReport(str(p), (), f.reason))
            continue
        world.reports.append(FileReport(str(p), f.kinds, ras_note(f.ras) if f.ras is not None else ""))
        world.files.append((p, f))


def _collect_nccl(world: JoinedInputs) -> None:
    for _p, f in world.files:
        if f.nccl is None:
            continue
        world.nccl.extend(f.nccl.ranks)
        world.versions_seen += [(v, f.source) for v in f.nccl.versions]
        hosts = f.nccl.hosts
        if len(hosts) == 1:
            world.file_host[f.source] = hosts[0]


def _pick_ranks(world: JoinedInputs) -> None:
    """A rank logged by several processes is the one in the largest communicator (or the one that finished init)."""
    for r in world.nccl:
        if r.rank is None:
            continue
        cur = world.by_rank.get(r.rank)
        if cur is None or (r.nranks or 0) > (cur.nranks or 0) or (r.init_complete and not cur.init_complete):
            world.by_rank[r.rank] = r
        if r.nranks and (world.nranks is None or r.nranks > world.nranks):
            world.nranks = r.nranks


def majority(values: Counter[Any]) -> tuple[Any, int] | None:
    """The most common value and its count; None when there is none."""
    if not values:
        return None
    (v, n), = values.most_common(1)
    return v, n


def node_values(ranks: list[NcclRank], attr: str) -> dict[str, Counter[Any]]:
    """Per host, how many of its ranks show each (non-empty) value of `attr`."""
    out: dict[str, Counter[Any]] = defaultdict(Counter)
    for r in ranks:
        v = getattr(r, attr)
        if v:
            out[r.host][v] += 1
    return out


def rank_rows(world: JoinedInputs) -> tuple[RankRow, ...]:
    """One row per rank across NCCL logs, watchdog progress and flight-recorder dumps (the TUI's rank table)."""
    rows: dict[int, dict[str, Any]] = {}
    for k, r in world.by_rank.items():  # keyed by r.rank
        rows[k] = dict(rank=r.rank, node=r.host, pid=r.pid, cuda_dev=r.cuda_dev, bus_id=r.bus_id,
                            nccl_version=r.version, transport=r.transport, interfaces=r.interfaces,
                            init_complete=r.init_complete)
    for w in world.watchdog_logs:
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
