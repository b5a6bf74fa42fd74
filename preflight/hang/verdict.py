"""Combine NCCL logs, watchdog timeouts, flight-recorder dumps and kernel logs into ranked likely causes of a hang.

    analyze([Path("job-1234/logs"), Path("job-1234/fr-dumps")]) -> HangVerdict

Every cause names a rank and/or node when it can, quotes real lines (file:line) as evidence and says what to
run next. Linear in the total input size: one pass per file, then dictionary joins.

Where things live: the verdict's types in verdict_types.py, parsing and joining the inputs by rank and node in
joined.py, the causes by kind of evidence in causes/; this module runs them and ranks the result. The names
callers import from here (analyze, Cause, HangVerdict, RankRow, FileReport, expand_paths) stay importable.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from pathlib import Path

from preflight.hang.causes.kernel import dedupe_xid, find_xids, xid_causes
from preflight.hang.causes.nccl import error_causes, init_causes, version_causes
from preflight.hang.causes.network import network_causes, socket_fallback_causes
from preflight.hang.causes.progress import flight_recorder_causes, mismatch_causes, watchdog_causes
from preflight.hang.causes.ras import ras_causes
from preflight.hang.jobs import describe, group_jobs
from preflight.hang.joined import JoinedInputs, expand_paths, join_parsed, parse_inputs, rank_rows
from preflight.hang.mlx5_health import mlx5_causes
from preflight.hang.next_steps import next_commands, seen_offline
from preflight.hang.verdict_types import MAX_EVIDENCE_LINES, Cause, FileReport, HangVerdict, JobVerdict, RankRow

__all__ = ["MAX_EVIDENCE_LINES", "Cause", "FileReport", "HangVerdict", "JobVerdict", "RankRow", "analyze",
           "expand_paths"]


def analyze(paths: list[Path], *, split_jobs: bool = True) -> HangVerdict:
    """Parse every file (directories are walked), split them by job (jobs.py; `split_jobs=False` when the caller
    knows they are one job, as a live gather does), join each job by rank and node and rank its likely causes.
    One job: its causes, ranks and summary are the verdict's. Several: the verdict's causes are every job's,
    ranked together, each with its `job`; `jobs` holds each job's own verdict."""
    parsed = parse_inputs(paths)
    if not split_jobs or len(parsed.files) <= 1:
        world = join_parsed(parsed.files, parsed.reports)
        one = _judge(world)
        return HangVerdict(one.causes, one.ranks, one.files, one.summary,
                           (JobVerdict(1, tuple(str(p) for p, _ in parsed.files), (), "", one),) if split_jobs else (),
                           one.next_commands)
    groups = group_jobs(parsed.files)
    report_of = {r.path: r for r in parsed.reports}
    job_of: dict[str, int] = {}
    jobs: list[JobVerdict] = []
    for g in groups:
        files = [parsed.files[i] for i in g.files]
        names = [str(p) for p, _ in files]
        job_of.update(dict.fromkeys(names, g.index))
        world = join_parsed(files, [replace(report_of[n], job=g.index) for n in names if n in report_of])
        v = _judge(world)
        if len(groups) > 1:
            v = replace(v, causes=tuple(replace(c, job=g.index) for c in v.causes))
        jobs.append(JobVerdict(g.index, tuple(names), g.why, describe(g), v))
    reports = tuple(replace(r, job=job_of.get(r.path)) for r in parsed.reports)
    if len(jobs) == 1:
        one = jobs[0].verdict
        return HangVerdict(one.causes, one.ranks, reports, one.summary, tuple(jobs), one.next_commands)
    causes = sorted((c for j in jobs for c in j.verdict.causes), key=lambda c: (-c.score, c.job or 0, c.title))
    unread = sum(1 for r in reports if not r.kinds)
    summary = (f"{len(reports)} file(s) from {len(jobs)} unrelated job(s), judged apart"
               + (f" ({unread} not recognised)" if unread else "") + f"; {len(causes)} likely cause(s)")
    steps = () if causes else tuple(dict.fromkeys(f"job {j.index}: {c}" for j in jobs for c in j.verdict.next_commands))
    return HangVerdict(tuple(causes), (), reports, summary, tuple(jobs), steps)


def _judge(world: JoinedInputs) -> HangVerdict:
    causes = _causes(world)
    causes.sort(key=lambda c: (-c.score, c.title))
    steps = () if causes else next_commands(seen_offline(world))
    return HangVerdict(tuple(causes), rank_rows(world), tuple(world.reports), _summary(world, causes), (), steps)


def _causes(world: JoinedInputs) -> list[Cause]:
    """Every kind's causes, unsorted; an Xid already named in a watchdog cause of its node is not repeated."""
    logs = world.watchdog_logs
    xids = find_xids(world)
    causes = watchdog_causes(world, logs, xids) + mismatch_causes(world, logs) + flight_recorder_causes(world)
    folded = {c.node for c in causes if c.kind.startswith("watchdog") and "logged" in c.title}
    causes += xid_causes(xids, folded)
    fallback = socket_fallback_causes(world)
    causes += fallback + network_causes(world, {c.node for c in fallback if c.node})
    causes += version_causes(world, world.versions_seen) + init_causes(world) + error_causes(world)
    causes += ras_causes([f.ras for _, f in world.files if f.ras is not None])
    hosts = sorted({r.host for r in world.nccl}, key=len, reverse=True)
    for path, f in world.files:
        if f.mlx5:
            node = next((h for h in hosts if h in str(path)), None) or f.kernel_host or world.file_host.get(f.source)
            causes += mlx5_causes(list(f.mlx5), node)
    return dedupe_xid(causes)


def _summary(world: JoinedInputs, causes: list[Cause]) -> str:
    """One line: files by kind, ranks and nodes seen in NCCL logs, how many causes."""
    reports = world.reports
    hosts = {r.host for r in world.nccl}
    kinds = Counter(k for r in reports for k in r.kinds)
    unknown = sum(1 for r in reports if not r.kinds)
    return (f"{len(reports)} file(s): " + (", ".join(f"{n} {k}" for k, n in sorted(kinds.items())) or "none recognised")
            + (f", {unknown} not recognised" if unknown else "")
            + f"; {len(world.by_rank)} rank(s) on {len(hosts)} node(s) in NCCL logs; {len(causes)} likely cause(s)")
