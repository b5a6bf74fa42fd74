"""Which inputs belong to the same job: `preflight analyze` judges each job on its own.

A directory of logs copied off a cluster can hold several unrelated jobs; merged, their ranks collide (every job
has a rank 0), their NCCL versions look like a split inside one job, and the verdict advises the wrong fix. Files
are put together (union-find) by, strongest first:

  1. a shared communicator hash: NCCL's `commId 0x...` on init lines, RAS's `#0-0 (hash)`: the same job, always;
  2. a shared host name, unless the two sides conflict (below): the same node's logs, or a job spanning nodes;
     then logs in the same directory with the same world size whose ranks do not collide (per-node logs of an
     NCCL too old to print commId);
  3. files with nothing of their own to go by (watchdog-only, flight-recorder dumps, kernel logs, RAS reports
     without a hash that NCCL printed): to the only job there is; else to the job holding the kernel log's host;
     else to the one job whose files share their directory; else with the other such files of their directory
     that do not conflict; else alone.

Two groups conflict (and are never joined by 2 or 3) when both print NCCL versions and share none, both know the
world size and disagree, they claim the same rank from different processes (every job has a rank 0), or their
watchdog lines are more than a day apart, they print different communicator hashes, or only one of two logs
with ranks prints commId (another NCCL), they print PyTorch versions and share none, the same PyTorch watchdog
message comes from different ProcessGroupNCCL.cpp lines or log-prefix shapes, or flight-recorder dumps of
different formats (another PyTorch build), or their time ranges (first .. last timestamp: NCCL, PyTorch, dmesg,
syslog) are more than a day apart (job_signals.py). Versions differing inside one job are judged by the version cause, so a
version split whose nodes share a communicator hash stays one job.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from preflight.hang.job_signals import TimeRange, builds_conflict, far_apart, union
from preflight.hang.sniff import HangFile


@dataclass
class Fingerprint:
    """What one file (or a group of files) says about the job it came from."""

    hosts: set[str] = field(default_factory=set)
    hashes: set[str] = field(default_factory=set)
    versions: set[str] = field(default_factory=set)
    nranks: set[int] = field(default_factory=set)
    ranks: dict[int, set[tuple[str, int]]] = field(default_factory=dict)  # rank -> (host, pid) that claim it
    wd_ranks: dict[int, set[str]] = field(default_factory=dict)  # watchdog rank -> sources
    days: set[int] = field(default_factory=set)  # day of year of watchdog lines (year not printed)
    times: TimeRange | None = None  # first .. last timestamp (job_signals.py)
    torch: set[str] = field(default_factory=set)  # PyTorch versions printed
    builds: dict[str, frozenset[str]] = field(default_factory=dict)  # PyTorch message -> source lines, FR format
    directory: str = ""

    @property
    def has_identity(self) -> bool:
        return bool(self.hosts or self.hashes)

    def absorb(self, other: Fingerprint) -> None:
        self.hosts |= other.hosts
        self.hashes |= other.hashes
        self.versions |= other.versions
        self.nranks |= other.nranks
        self.days |= other.days
        self.times = union(self.times, other.times)
        self.torch |= other.torch
        for k, v in other.builds.items():
            self.builds[k] = self.builds.get(k, frozenset()) | v
        for r, who in other.ranks.items():
            self.ranks.setdefault(r, set()).update(who)
        for r, srcs in other.wd_ranks.items():
            self.wd_ranks.setdefault(r, set()).update(srcs)


def fingerprint(path: Path, f: HangFile) -> Fingerprint:
    fp = Fingerprint(directory=str(path.parent), times=f.signals.times, torch=set(f.signals.torch_versions),
                     builds=dict(f.signals.builds))
    if f.dump is not None and f.dump.version:
        fp.builds["flight-recorder format"] = frozenset({f.dump.version})
    if f.nccl is not None:
        fp.versions.update(f.nccl.versions)
        for r in f.nccl.ranks:
            fp.hosts.add(r.host)
            fp.hashes.update(r.comm_hashes)
            if r.version:
                fp.versions.add(r.version)
            if r.nranks:
                fp.nranks.add(r.nranks)
            if r.rank is not None:
                fp.ranks.setdefault(r.rank, set()).add((r.host, r.pid))
    if f.kernel_host:
        fp.hosts.add(f.kernel_host)
    if f.ras is not None:
        if f.ras.nccl_version:
            fp.versions.add(f.ras.nccl_version)
        fp.hashes.update(h.lower() for h in _ras_hashes(f))
    if f.watchdog is not None:
        for rec in f.watchdog.records:
            if rec.rank is not None:
                fp.wd_ranks.setdefault(rec.rank, set()).add(f.source)
            day = _day(rec.time)
            if day is not None:
                fp.days.add(day)
    return fp


def _ras_hashes(f: HangFile) -> list[str]:
    ras = f.ras
    if ras is None:
        return []
    return [m.comm_hash for m in ras.mismatches] + [i.comm_hash for i in ras.incomplete]


def _day(time: str | None) -> int | None:
    """'0816 01:45:40' -> day of year (a leap year, so 0229 parses)."""
    if not time or len(time) < 4 or not time[:4].isdigit():
        return None
    try:
        return datetime.date(2024, int(time[:2]), int(time[2:4])).timetuple().tm_yday
    except ValueError:
        return None


def conflict(a: Fingerprint, b: Fingerprint) -> str | None:
    """Why these two cannot be one job, or None."""
    if a.versions and b.versions and not (a.versions & b.versions):
        return f"NCCL {', '.join(sorted(a.versions))} vs {', '.join(sorted(b.versions))}"
    if a.nranks and b.nranks and max(a.nranks) != max(b.nranks):
        return f"{max(a.nranks)} vs {max(b.nranks)} ranks"
    for r in a.ranks.keys() & b.ranks.keys():
        if a.ranks[r] != b.ranks[r]:
            return f"rank {r} claimed by two processes"
    for r in a.wd_ranks.keys() & b.wd_ranks.keys():
        if a.wd_ranks[r] != b.wd_ranks[r]:
            return f"rank {r} timed out in two files"
    if a.hashes and b.hashes and not (a.hashes & b.hashes):
        return "no communicator in common"
    if a.ranks and b.ranks and bool(a.hashes) != bool(b.hashes):
        return "one prints commId, the other does not (another NCCL)"
    if a.days and b.days and min(abs(x - y) for x in a.days for y in b.days) > 1:
        return "watchdog lines days apart"
    if a.torch and b.torch and not (a.torch & b.torch):
        return f"PyTorch {', '.join(sorted(a.torch))} vs {', '.join(sorted(b.torch))}"
    return builds_conflict(a.builds, b.builds) or far_apart(a.times, b.times)


@dataclass(frozen=True)
class JobGroup:
    """The files of one job, in input order, and why they were put together."""

    index: int
    files: tuple[int, ...]  # indexes into the inputs
    why: tuple[str, ...]
    hosts: tuple[str, ...]
    versions: tuple[str, ...]
    hashes: tuple[str, ...]
    times: str = ""  # 'first .. last' timestamp the job's files hold
    torch: tuple[str, ...] = ()  # PyTorch versions printed


class _Groups:
    def __init__(self, fps: list[Fingerprint]) -> None:
        self.parent = list(range(len(fps)))
        self.fp = [Fingerprint() for _ in fps]
        for i, fp in enumerate(fps):
            self.fp[i].absorb(fp)
            self.fp[i].directory = fp.directory
        self.why: dict[int, list[str]] = {i: [] for i in range(len(fps))}

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, i: int, j: int, why: str) -> None:
        a, b = self.find(i), self.find(j)
        if a == b:
            return
        if b < a:
            a, b = b, a
        self.parent[b] = a
        self.fp[a].absorb(self.fp[b])
        self.why[a] += self.why.pop(b) + [why]

    def roots(self) -> list[int]:
        return sorted({self.find(i) for i in range(len(self.parent))})


def group_jobs(inputs: list[tuple[Path, HangFile]]) -> list[JobGroup]:
    """The inputs split by job (see the module docstring), each group's files in input order."""
    fps = [fingerprint(p, f) for p, f in inputs]
    g = _Groups(fps)
    _by_key(g, fps, lambda fp: fp.hashes, "communicator {}", strong=True)
    _by_key(g, fps, lambda fp: fp.hosts, "host {}", strong=False)
    _by_key(g, fps, lambda fp: {f"{fp.directory}|{n}" for n in fp.nranks} if fp.ranks else set(),
            "same directory, same world size", strong=False)
    _attach_loose(g, fps, inputs)
    out: list[JobGroup] = []
    for n, root in enumerate(g.roots(), 1):
        members = tuple(i for i in range(len(inputs)) if g.find(i) == root)
        fp = g.fp[root]
        out.append(JobGroup(n, members, tuple(dict.fromkeys(g.why[root])), tuple(sorted(fp.hosts)),
                            tuple(sorted(fp.versions)), tuple(sorted(fp.hashes)),
                            fp.times.text() if fp.times else "", tuple(sorted(fp.torch))))
    return out


def _by_key(g: _Groups, fps: list[Fingerprint], keys: Callable[[Fingerprint], set[str]], label: str, *,
            strong: bool) -> None:
    seen: dict[str, int] = {}
    for i, fp in enumerate(fps):
        for k in sorted(keys(fp)):
            j = seen.setdefault(k, i)
            if j == i or g.find(i) == g.find(j):
                continue
            if strong or conflict(g.fp[g.find(i)], g.fp[g.find(j)]) is None:
                g.union(j, i, label.format(k) if "{}" in label else label)


def _attach_loose(g: _Groups, fps: list[Fingerprint], inputs: list[tuple[Path, HangFile]]) -> None:
    """Files with no host or hash of their own: see the module docstring, step 3."""
    loose = [i for i, fp in enumerate(fps) if not fp.has_identity]
    anchored = sorted({g.find(i) for i, fp in enumerate(fps) if fp.has_identity})
    for i in loose:
        target = _target(g, fps[i], anchored)
        if target is not None and conflict(g.fp[g.find(target)], g.fp[g.find(i)]) is None:
            g.union(target, i, _why_loose(inputs[i][1]))
    for n, i in enumerate(loose):
        if g.find(i) in anchored:
            continue
        for j in loose[:n]:
            if (fps[j].directory == fps[i].directory and g.find(j) not in anchored
                    and _same_kind(inputs[i][1], inputs[j][1])
                    and conflict(g.fp[g.find(j)], g.fp[g.find(i)]) is None):
                g.union(j, i, f"same directory {Path(fps[i].directory).name or '.'}")
                break


def _target(g: _Groups, fp: Fingerprint, anchored: list[int]) -> int | None:
    """The only job there is; else the one job with files in this file's directory, else in its parent's
    (job-1234/dmesg/ beside job-1234/logs/)."""
    roots = sorted({g.find(r) for r in anchored})
    if len(roots) == 1:
        return roots[0]
    for up in (0, 1):
        here = _up(fp.directory, up)
        near = sorted({g.find(i) for i in range(len(g.parent))
                       if g.find(i) in roots and _up(g.fp[i].directory, up) == here})
        if near:
            return near[0] if len(near) == 1 else None
    return None


def _up(directory: str, n: int) -> str:
    p = Path(directory)
    for _ in range(n):
        p = p.parent
    return str(p)


_GROUPABLE = {"watchdog", "flight_recorder", "frtrace", "kernel_log", "mlx5_health"}  # per-rank / per-node files of one job


def _same_kind(a: HangFile, b: HangFile) -> bool:
    return bool(set(a.kinds) & set(b.kinds) & _GROUPABLE) and a.ras is None and b.ras is None


def _why_loose(f: HangFile) -> str:
    return f"{'/'.join(f.kinds) or 'file'} {f.source} has no host or communicator of its own"


def describe(group: JobGroup) -> str:
    """One line: the job's hosts, versions and communicators (what tells it apart)."""
    parts = []
    if group.hosts:
        parts.append(f"{len(group.hosts)} host(s): {', '.join(group.hosts[:4])}" + (" ..." if len(group.hosts) > 4 else ""))
    if group.versions:
        parts.append("NCCL " + ", ".join(group.versions))
    if group.hashes:
        parts.append("communicator " + ", ".join(group.hashes[:2]) + (" ..." if len(group.hashes) > 2 else ""))
    if group.torch:
        parts.append("PyTorch " + ", ".join(group.torch))
    if group.times:
        parts.append(group.times)
    return "; ".join(parts) or "no host, version or communicator printed"
