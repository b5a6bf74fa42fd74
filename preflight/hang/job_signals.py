"""What a log's text says about the job it came from beyond NCCL's own fields: when (the first and last timestamp
it holds) and which PyTorch (a printed version, the ProcessGroupNCCL.cpp line each watchdog message comes from,
the watchdog's log-prefix style). jobs.py uses these to keep two jobs' files apart.

Timestamps read (the first one of each line; a line can carry a syslog stamp and a dmesg one):
  2026-05-05 06:16:47 / 2026-04-22T21:30:51   ISO (NCCL_DEBUG_TIMESTAMP_FORMAT's default '[%F %T] ', Python logging,
                                              journald short-iso, Talos 'kern:' lines)
  [Fri Aug 30 11:43:09 2024]                  dmesg --ctime / -T
  Dec 23 23:30:56 host kernel:                syslog (no year)
  [E0321 03:04:51.123 / [E816 01:45:40.18     glog / c10 logging, PyTorch's watchdog (no year)
Seconds since boot (`[ 179.437927]`) are not wall-clock time and are not read.

A printed year is kept; where either side has none, ranges are compared within one year (month, day and time),
and a range that reads as spanning most of a year is never called far from anything.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass, field

_MON = {m: i for i, m in enumerate(("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov",
                                    "Dec"), 1)}
_ISO = re.compile(r"20(?P<yy>\d\d)-(?P<mo>[01]\d)-(?P<d>[0-3]\d)[ T](?P<h>[0-2]\d):(?P<mi>[0-5]\d):(?P<s>[0-5]\d)")
_CTIME = re.compile(r"\[(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) (?P<mon>[A-Z][a-z]{2}) +(?P<d>\d{1,2}) "
                    r"(?P<h>\d\d):(?P<mi>\d\d):(?P<s>\d\d) (?P<y>(?:19|20)\d\d)\]")
_SYSLOG = re.compile(r"^[ \t]*(?P<mon>Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) +(?P<d>\d{1,2}) "
                     r"(?P<h>\d\d):(?P<mi>\d\d):(?P<s>\d\d) \S+ ", re.M)
_GLOG = re.compile(r"[IWEF](?P<md>\d{3,4}) (?P<h>[0-2]\d):(?P<mi>[0-5]\d):(?P<s>[0-5]\d)\.\d")
_STAMPS = (("iso", _ISO), ("ctime", _CTIME), ("syslog", _SYSLOG), ("glog", _GLOG))
# what may come right before a match (checked in Python: a pattern that starts with a literal or a character class
# is searched for fast, one that starts with a look-behind or an alternation is tried at every position)
_BEFORE = {"iso": lambda c: not c.isdigit(), "glog": lambda c: c in "[\n"}

# PyTorch versions as logs print them: collect_env ('PyTorch version: 2.1.0+cu121'), pip ('torch==2.3.1',
# 'torch-2.3.1+cu121.dist-info', a wheel 'torch-2.3.1-cp310-...'), conda ('pkgs/pytorch-1.13.1-py3.9_cuda11.6...').
# Three numbers required: a conda env named 'pytorch-3.10' is no version.
_TORCH = re.compile(r"(?:PyTorch version:?\s+|torch\s*==\s*|\btorch-|/pytorch-)(?P<v>[0-2]\.\d{1,2}\.\d{1,2})"
                    r"(?:(?P<local>\+[0-9A-Za-z.]+)|(?=[-.\s,;)'\"]|$))", re.M)
# '... ProcessGroupNCCL.cpp:607] [Rank 7] Watchdog caught collective operation timeout: ...'
_PG_LINE = re.compile(r"ProcessGroupNCCL\.cpp:(?P<line>\d+)\]\s*(?P<prefix>\[(?:PG|Rank)[^\]]*\])?\s*(?P<msg>[A-Za-z][^:(\[]*)")

_FAR_S = 24 * 3600  # a job's files overlap in time; two ranges more than a day apart are two runs
_YEAR_S = 366 * 24 * 3600


@dataclass(frozen=True)
class TimeRange:
    """The first and last timestamp of a file; `dated` when every stamp printed its year."""

    first: datetime.datetime
    last: datetime.datetime
    dated: bool

    def text(self) -> str:
        fmt = "%Y-%m-%d %H:%M" if self.dated else "%m-%d %H:%M"
        return f"{self.first.strftime(fmt)} .. {self.last.strftime(fmt)}"


@dataclass(frozen=True)
class JobSignals:
    times: TimeRange | None = None
    torch_versions: frozenset[str] = frozenset()
    builds: dict[str, frozenset[str]] = field(default_factory=dict)  # what PyTorch printed -> the source lines


def scan(text: str) -> JobSignals:
    """Time range, PyTorch versions and watchdog message sources of one text: one regex pass per format over the
    whole text (no per-line Python loop: a 1,024-rank job's logs are 25,000 lines)."""
    stamps = [t for t in (_stamp(m, kind) for kind, rx in _STAMPS for m in rx.finditer(text)
                           if kind not in _BEFORE or m.start() == 0 or _BEFORE[kind](text[m.start() - 1]))
              if t is not None]
    builds: dict[str, set[str]] = {}
    if "ProcessGroupNCCL.cpp:" in text:
        for m in _PG_LINE.finditer(text):
            words = " ".join(m.group("msg").split()[:4])
            if not words:
                continue
            builds.setdefault(f"'{words}' from ProcessGroupNCCL.cpp", set()).add(m.group("line"))
            if m.group("prefix"):
                builds.setdefault(f"'{words}' log prefix", set()).add(_prefix_style(m.group("prefix")))
    versions = (frozenset(m.group("v") + (m.group("local") or "") for m in _TORCH.finditer(text))
                if "torch" in text or "PyTorch" in text else frozenset())  # the regex is slow; the test is not
    return JobSignals(_range(stamps), versions, {k: frozenset(v) for k, v in builds.items()})


def _prefix_style(prefix: str) -> str:
    """'[PG 0 (default_pg) Rank 7]' -> '[PG N Rank N]': the shape, which changes between releases ('[Rank N]',
    '[PG N Rank N]', '[PG ID N PG GUID N Rank N]'); a process group's description '(name)' is there or not
    within one release, so it is dropped."""
    shape = re.sub(r"\s*\([^)]*\)", "", prefix)
    return re.sub(r"\d+", "N", shape)


def _stamp(m: re.Match[str], kind: str) -> tuple[datetime.datetime, bool] | None:
    try:
        if kind == "iso":
            return datetime.datetime(2000 + int(m["yy"]), int(m["mo"]), int(m["d"]), int(m["h"]), int(m["mi"]), int(m["s"])), True
        if kind == "ctime":
            return datetime.datetime(int(m["y"]), _MON[m["mon"]], int(m["d"]), int(m["h"]), int(m["mi"]), int(m["s"])), True
        if kind == "syslog":
            return datetime.datetime(2000, _MON[m["mon"]], int(m["d"]), int(m["h"]), int(m["mi"]), int(m["s"])), False
        md = m["md"].zfill(4)
        return datetime.datetime(2000, int(md[:2]), int(md[2:]), int(m["h"]), int(m["mi"]), int(m["s"])), False
    except ValueError:  # 'E1345' or Feb 30: not a date
        return None


def _range(stamps: list[tuple[datetime.datetime, bool]]) -> TimeRange | None:
    if not stamps:
        return None
    dated = all(d for _, d in stamps)
    times = [t if dated else t.replace(year=2000) for t, _ in stamps]
    return TimeRange(min(times), max(times), dated)


def _yearless(t: datetime.datetime) -> datetime.datetime:
    return t.replace(year=2000)


def union(a: TimeRange | None, b: TimeRange | None) -> TimeRange | None:
    if a is None or b is None:
        return a or b
    if a.dated and b.dated:
        return TimeRange(min(a.first, b.first), max(a.last, b.last), True)
    firsts = (_yearless(a.first), _yearless(b.first))
    lasts = (_yearless(a.last), _yearless(b.last))
    return TimeRange(min(firsts), max(lasts), False)


def gap_s(a: TimeRange, b: TimeRange) -> float:
    """Seconds between two ranges (0 when they overlap); within one year when either has no year."""
    if not (a.dated and b.dated):
        a = TimeRange(_yearless(a.first), _yearless(a.last), False)
        b = TimeRange(_yearless(b.first), _yearless(b.last), False)
        if max((a.last - a.first).total_seconds(), (b.last - b.first).total_seconds()) > _YEAR_S / 2:
            return 0.0  # may wrap the new year: cannot say
    return max(0.0, (b.first - a.last).total_seconds(), (a.first - b.last).total_seconds())


def far_apart(a: TimeRange | None, b: TimeRange | None) -> str | None:
    """Why two time ranges cannot be one run (more than a day between them), or None."""
    if a is None or b is None:
        return None
    gap = gap_s(a, b)
    if gap <= _FAR_S:
        return None
    return f"time ranges {gap / 86400:.0f} day(s) apart ({a.text()} vs {b.text()})"


def builds_conflict(a: dict[str, frozenset[str]], b: dict[str, frozenset[str]]) -> str | None:
    """The same PyTorch message printed from different source lines (or prefix styles): two builds."""
    for key in sorted(a.keys() & b.keys()):
        if not (a[key] & b[key]):
            return f"{key} {', '.join(sorted(a[key]))} vs {', '.join(sorted(b[key]))} (another PyTorch build)"
    return None
