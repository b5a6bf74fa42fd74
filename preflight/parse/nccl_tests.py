"""Parser for nccl-tests output (`all_reduce_perf` and friends): rows, #wrong, average bus bandwidth.

Formats differ by version: `#wrong` or a float `error` column, with or without redop/root
columns, launcher prefixes (`[0]`) glued into rows, headers whose `#` was lost in a paste.
A row is read from the right: the last 8 numbers are out-of-place and in-place
(time, algbw, busbw, wrong/error); the first two are size and count.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from preflight.parse.common import Unparseable, is_probably_text

_NUM = r"[-+]?(?:\d+\.?\d*(?:[eE][-+]?\d+)?|N/A)"


@dataclass(frozen=True)
class NcclRow:
    size_bytes: int
    count: int
    dtype: str | None
    redop: str | None
    oop_time_us: float | None
    oop_algbw: float | None
    oop_busbw: float | None
    oop_wrong: float | None
    ip_time_us: float | None
    ip_algbw: float | None
    ip_busbw: float | None
    ip_wrong: float | None
    raw_line: str


@dataclass(frozen=True)
class NcclTestResult:
    rows: tuple[NcclRow, ...]
    avg_busbw: float | None
    out_of_bounds: int | None
    version: str | None
    ranks: int
    devices: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)
    interleaved: bool = False

    @property
    def wrong_total(self) -> float:
        return sum((r.oop_wrong or 0) + (r.ip_wrong or 0) for r in self.rows
                   if r.oop_wrong is not None and r.oop_wrong >= 1 or r.ip_wrong is not None and r.ip_wrong >= 1)

    @property
    def max_busbw(self) -> float | None:
        vals = [v for r in self.rows for v in (r.oop_busbw, r.ip_busbw) if v is not None]
        return max(vals) if vals else None

    def busbw_at_largest(self) -> tuple[int, float] | None:
        rows = [r for r in self.rows if r.oop_busbw is not None or r.ip_busbw is not None]
        if not rows:
            return None
        big = max(rows, key=lambda r: r.size_bytes)
        return big.size_bytes, max(v for v in (big.oop_busbw, big.ip_busbw) if v is not None)


def _f(v: str) -> float | None:
    try:
        return float(v)
    except ValueError:
        return None


def parse_nccl_tests(text: str) -> NcclTestResult | Unparseable:
    """nccl-tests `*_perf` output."""
    if not is_probably_text(text):
        return Unparseable.of("empty or binary output", text)
    rows: list[NcclRow] = []
    notes: list[str] = []
    devices: list[str] = []
    avg = None
    oob = None
    version = None
    seen_header = False
    for raw in text.splitlines():
        line = re.sub(r"\[\d+\]\s?", " ", raw)  # launcher tags ('[0]') glued into the row
        if "size" in line and ("count" in line or "time" in line):
            seen_header = True
        m = re.search(r"nccl-tests version (\S+)", line)
        if m:
            version = m.group(1)
        m = re.search(r"Avg bus bandwidth\s*:\s*(" + _NUM + ")", line)
        if m:
            avg = _f(m.group(1))
            continue
        m = re.search(r"Out of bounds values\s*:\s*(\d+)", line)
        if m:
            oob = int(m.group(1))
            continue
        m = re.search(r"Rank\s+\d+\s+(?:Group\s+\d+\s+)?Pid\s+\d+\s+on\s+(\S+)\s+device\s+(\d+)\s+\[([^\]]+)\]\s+(.*)$", line)
        if m:
            devices.append(f"{m.group(1)} dev{m.group(2)} [{m.group(3)}] {m.group(4).strip()}")
            continue
        if line.lstrip().startswith("#"):
            continue
        toks = line.split()
        if len(toks) < 10 or not toks[0].isdigit() or not toks[1].isdigit():
            continue
        tail = toks[-8:]
        if not all(re.fullmatch(_NUM, t) for t in tail):
            continue
        middle = toks[2:-8]
        dtype = middle[0] if middle else None
        redop = middle[1] if len(middle) > 1 and not re.fullmatch(_NUM, middle[1]) else None
        vals = [_f(t) for t in tail]
        rows.append(NcclRow(int(toks[0]), int(toks[1]), dtype, redop, *vals, raw_line=raw))
    if not rows and avg is None and (devices or version or seen_header or oob is not None):
        notes.append("header only: no result rows (the run hung, failed, or the excerpt ends early)")
    elif not rows and avg is None:
        reason = "no result rows and no 'Avg bus bandwidth' line"
        if "bytes" in text and "res" in text:
            reason += " (NCCL 1.x test format, or the run hung before the first row)"
        return Unparseable.of(reason, text)
    sizes = [r.size_bytes for r in rows]
    interleaved = any(b < a for a, b in zip(sizes, sizes[1:]))
    if interleaved:
        notes.append("sizes do not increase monotonically: several runs interleaved in one log")
    if not seen_header:
        notes.append("no column header seen")
    return NcclTestResult(rows=tuple(rows), avg_busbw=avg, out_of_bounds=oob, version=version,
                          ranks=len(devices), devices=tuple(devices), notes=tuple(notes), interleaved=interleaved)
