"""Parser for nccl-tests output (`all_reduce_perf` and friends): rows, #wrong, average bus bandwidth.

Formats differ by version: `#wrong` or a float `error` column, with or without redop/root
columns, launcher prefixes (`[0]`) glued into rows, headers whose `#` was lost in a paste.
A row is read from the right: the last 8 numbers are out-of-place and in-place
(time, algbw, busbw, wrong/error); the first two are size and count.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Any

from preflight.parse.common import Unparseable, is_probably_text, to_int

_NUM = r"[-+]?(?:\d+\.?\d*(?:[eE][-+]?\d+)?|N/A)"
_TAG = re.compile(r"\[\d+(?:,\d+)?\](?:<std(?:out|err)>:)?\s?")  # mpirun --tag-output / srun -l style prefixes


@dataclass(frozen=True)
class NcclRow:
    """One size of a run: out-of-place (`oop_`) and in-place (`ip_`) time (us), algbw/busbw (GB/s), #wrong."""

    size_bytes: int
    count: int
    dtype: str | None
    redop: str | None
    oop_time_us: float | None
    oop_algbw: float | None
    oop_busbw: float | None
    oop_wrong: float | None  # #wrong count; in old formats the float max `error` (see wrong_is_error)
    ip_time_us: float | None
    ip_algbw: float | None
    ip_busbw: float | None
    ip_wrong: float | None
    raw_line: str
    root: int | None = None
    wrong_is_error: bool = False


@dataclass(frozen=True)
class NcclDevice:
    """A `#  Rank  0 Group  0 Pid 123 on host device  0 [0x1b] NVIDIA H100...` line."""

    rank: int
    host: str | None
    device: int
    bus_id: str
    name: str
    pid: int | None = None
    raw_line: str = ""


@dataclass(frozen=True)
class NcclTestResult:
    """A whole nccl-tests run (or several, when one log holds them): header, devices, rows, footer."""

    rows: tuple[NcclRow, ...]
    avg_busbw: float | None
    out_of_bounds: int | None
    version: str | None  # nccl-tests version when printed
    ranks: int
    devices: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)
    interleaved: bool = False
    nccl_version: str | None = None
    params: dict[str, str] = field(default_factory=dict)  # nThread, nGpus, minBytes, maxBytes, iters...
    device_info: tuple[NcclDevice, ...] = ()
    error_column: bool = False  # old format: float `error` instead of an integer `#wrong`
    runs: int = 1  # sequential repeats of the size sweep in one log
    avg_busbw_all: tuple[float, ...] = ()
    # N >= 2: the log holds N separate nccl-tests jobs that started together (each printed its own header and its
    # own Rank 0, or their rows interleave): a binary built without MPI=1 under mpirun/srun. 0: not seen.
    independent_runs: int = 0
    ranks_per_run: int | None = None  # devices each of those jobs listed (1: single-rank jobs)
    independent_why: tuple[str, ...] = ()  # what showed it: 'headers', 'rank0', 'interleaved'
    independent_evidence: tuple[str, ...] = ()  # the repeated header / Rank 0 lines, as printed

    @property
    def independent_note(self) -> str | None:
        """The one-line refusal for a multi-node reading of such a log, or None."""
        if self.independent_runs < 2:
            return None
        kind = "single-rank" if self.ranks_per_run == 1 else "single-process"
        why = {"headers": "each printed its own header", "rank0": "'Rank 0' printed by each",
               "interleaved": "their result rows interleave"}
        seen = "; ".join(why[w] for w in self.independent_why)
        return (f"nccl-tests ran {self.independent_runs} independent {kind} jobs: built without MPI? "
                f"({seen}; rebuild with `make MPI=1`)")

    @property
    def nthreads(self) -> int | None:
        return to_int(self.params.get("nThread"), whole=True)

    @property
    def ngpus(self) -> int | None:
        return to_int(self.params.get("nGpus"), whole=True)

    @property
    def wrong_total(self) -> float:
        """Sum of #wrong over all rows (old float `error` columns count only when >= 1)."""
        return sum((r.oop_wrong or 0) + (r.ip_wrong or 0) for r in self.rows
                   if r.oop_wrong is not None and r.oop_wrong >= 1 or r.ip_wrong is not None and r.ip_wrong >= 1)

    @property
    def max_busbw(self) -> float | None:
        vals = [v for r in self.rows for v in (r.oop_busbw, r.ip_busbw) if v is not None]
        return max(vals) if vals else None

    def busbw_at_largest(self) -> tuple[int, float] | None:
        """(size, best of out-of-place/in-place busbw) at the largest size measured."""
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


def _library_version(code: str) -> str:
    """`nccl-library=23102` -> `2.31.2` (NCCL_VERSION_CODE = major*10000 + minor*100 + patch)."""
    n = int(code)
    return f"{n // 10000}.{(n // 100) % 100}.{n % 100}" if n >= 10000 else f"{n // 1000}.{(n // 100) % 10}.{n % 100}"


def _sweeps(sizes: list[int]) -> tuple[int, bool]:
    """(number of size sweeps, interleaved?): repeats restart from a small size and climb for several rows."""
    if not sizes:
        return 0, False
    segments: list[list[int]] = [[sizes[0]]]
    for prev, cur in zip(sizes, sizes[1:]):
        if cur < prev:
            segments.append([cur])
        else:
            segments[-1].append(cur)
    if len(segments) == 1:
        return 1, False
    sequential = all(len(s) >= 3 for s in segments[:-1])
    return len(segments), not sequential


@dataclass
class _Scan:
    """What one pass over an nccl-tests log has seen so far."""

    rows: list[NcclRow] = field(default_factory=list)
    devices: list[NcclDevice] = field(default_factory=list)
    params: dict[str, str] = field(default_factory=dict)
    avgs: list[float] = field(default_factory=list)
    oob: int | None = None
    version: str | None = None
    nccl_version: str | None = None
    seen_header: bool = False
    error_column: bool = False
    ancient: bool = False
    starts: list[str] = field(default_factory=list)  # '# nThread' headers before the first result row: one per job
    rank0: dict[tuple[str | None, int | None], int] = field(default_factory=dict)  # (host, pid) of each 'Rank 0' line -> devices it listed
    rank0_lines: list[str] = field(default_factory=list)
    last_rank0: tuple[str | None, int | None] | None = None


_RANK_LINE = re.compile(r"Rank\s+(\d+)\s+(?:Group\s+\d+\s+)?(?:Pid\s+(\d+)\s+on\s+(\S+)\s+)?(?:uses\s+)?device\s+(\d+)"
                        r"\s+\[([^\]]+)\]\s+(.*)$")


_TESTS_VERSION = re.compile(r"nccl-tests version (\S+)")
_LIBRARY = re.compile(r"nccl-library=(\d+)")
_NCCL_VERSION = re.compile(r"NCCL version (\d+\.\d+\.\d+)")
_NUM_RX = re.compile(_NUM)
_INT_RX = re.compile(r"-?\d+")
_ERR_LIKE = re.compile(r"[eE.]")
_HEADER = re.compile(r"\bsize\b.*\bcount\b|\bbytes\b.*\bN\b.*\btype\b")
_ERROR_WORD = re.compile(r"\berror\b")
_RES = re.compile(r"\bres\s*$")
_NTHREAD = re.compile(r"\bnThread\s+\d+")
_PARAM = re.compile(r"(\w+(?: iters)?):?\s+(\d+(?:\(\w+\))?)")
_AVG = re.compile(r"Avg bus bandwidth\s*:\s*(" + _NUM + ")")
_OOB = re.compile(r"Out of bounds values\s*:\s*(\d+)")


def _scan_versions(s: _Scan, line: str) -> None:
    if "version" not in line and "nccl-library=" not in line:  # every pattern below needs one of the two
        return
    m = _TESTS_VERSION.search(line)
    if m:
        s.version = m.group(1)
    m = _LIBRARY.search(line)
    if m:
        s.nccl_version = _library_version(m.group(1))
    m = _NCCL_VERSION.search(line)
    if m:
        s.nccl_version = m.group(1)


def _scan_device(s: _Scan, m: re.Match[str], raw: str) -> None:
    """A `Rank N ... device D [bus] name` line; before the first row, counts the devices each Rank 0 listed."""
    s.devices.append(NcclDevice(rank=int(m.group(1)), host=m.group(3), device=int(m.group(4)), bus_id=m.group(5),
                                name=m.group(6).strip(), pid=to_int(m.group(2), whole=True), raw_line=raw))
    if s.rows:
        return
    if s.devices[-1].rank == 0:
        s.rank0_lines.append(raw)
        s.last_rank0 = (s.devices[-1].host, s.devices[-1].pid)
        s.rank0[s.last_rank0] = s.rank0.get(s.last_rank0, 0)
    if s.last_rank0 is not None:
        s.rank0[s.last_rank0] += 1


def _result_row(line: str, raw: str, error_column: bool) -> NcclRow | None:
    """A result row (`size count type redop root  time algbw busbw #wrong  time algbw busbw #wrong`), else None."""
    toks = line.split()
    if len(toks) < 10 or not toks[0].isdigit() or not toks[1].isdigit():
        return None
    tail = toks[-8:]
    if not all(_NUM_RX.fullmatch(t) for t in tail):
        return None
    middle = toks[2:-8]
    dtype = middle[0] if middle else None
    redop = middle[1] if len(middle) > 1 and not _NUM_RX.fullmatch(middle[1]) else None
    root = next((int(t) for t in middle[1:] if _INT_RX.fullmatch(t)), None)
    err_like = error_column or any(_ERR_LIKE.search(t) for t in (tail[3], tail[7]))
    oop_time, oop_alg, oop_bus, oop_wrong, ip_time, ip_alg, ip_bus, ip_wrong = (_f(t) for t in tail)  # the 8 of `tail`
    return NcclRow(int(toks[0]), int(toks[1]), dtype, redop, oop_time, oop_alg, oop_bus, oop_wrong,
                   ip_time, ip_alg, ip_bus, ip_wrong, raw_line=raw, root=root, wrong_is_error=err_like)


def _scan_line(s: _Scan, raw: str) -> None:
    line = _TAG.sub(" ", raw) if "[" in raw else raw  # a tag starts with '['
    if ("size" in line or "bytes" in line) and _HEADER.search(line):  # the substring tests only skip the regex
        s.seen_header = True
        s.error_column = s.error_column or bool(_ERROR_WORD.search(line))
        s.ancient = s.ancient or bool(_RES.search(line.strip()))
        return
    _scan_versions(s, line)
    if "nThread" in line and _NTHREAD.search(line):
        if not s.rows:
            s.starts.append(raw)
        s.params.update(_PARAM.findall(line.replace("#", " ")))
        return
    m = _AVG.search(line) if "Avg bus bandwidth" in line else None
    if m:
        value = _f(m.group(1))
        if value is not None:
            s.avgs.append(value)
        return
    m = _OOB.search(line) if "Out of bounds values" in line else None
    if m:
        s.oob = int(m.group(1))
        return
    m = _RANK_LINE.search(line) if "Rank" in line else None
    if m:
        _scan_device(s, m, raw)
        return
    if line.lstrip().startswith("#"):
        return
    row = _result_row(line, raw, s.error_column)
    if row is not None:
        s.rows.append(row)


def _notes(s: _Scan, runs: int, interleaved: bool) -> list[str]:
    """What a reader of the result should know about the log's shape (header only, several sweeps, old format...)."""
    notes: list[str] = []
    if not s.rows and not s.avgs:
        if s.ancient:
            notes.append("NCCL 1.x test format ('bytes N type op ... res'): header only, no result rows")
        else:
            notes.append("header only: no result rows (the run hung, failed, or the excerpt ends early)")
    if interleaved:
        notes.append("sizes jump back and forth: several runs interleaved in one log")
    elif runs > 1:
        notes.append(f"{runs} sequential size sweeps in one log")
    if s.rows and not s.seen_header:
        notes.append("no column header seen")
    if s.error_column:
        notes.append("old format: float 'error' column instead of '#wrong' counts")
    if s.avgs and s.avgs[-1] == 0 and s.rows:
        notes.append("'Avg bus bandwidth' is 0 although rows were printed")
    return notes


def _independence(s: _Scan, interleaved: bool) -> dict[str, Any]:
    """Signs that N separate single-process jobs each measured alone (several headers, several Rank 0 lines)."""
    why = tuple(w for w, hit in (("headers", len(s.starts) >= 2), ("rank0", len(s.rank0) >= 2),
                                 ("interleaved", interleaved)) if hit)
    independent = max(len(s.starts), len(s.rank0), 2 if interleaved else 0) if why else 0
    shown = (s.starts if len(s.starts) >= 2 else []) + (s.rank0_lines if len(s.rank0) >= 2 else [])
    blocks = list(s.rank0.values())  # devices listed after each Rank 0 line; the last block may be cut short
    same = len(blocks) >= 2 and all(b == blocks[0] for b in blocks[:-1]) and blocks[-1] <= blocks[0]
    return {"independent_runs": independent, "ranks_per_run": blocks[0] if same else None, "independent_why": why,
            "independent_evidence": tuple(x.strip() for x in shown[:6])}


def parse_nccl_tests(text: str) -> NcclTestResult | Unparseable:
    """nccl-tests `*_perf` output (stdout of e.g. `all_reduce_perf -b 8 -e 8G -f 2 -g N`)."""
    if not isinstance(text, str) or not is_probably_text(text):
        return Unparseable.of("empty or binary output", text if isinstance(text, str) else "")
    s = _Scan()
    for raw in text.replace("\r", "").splitlines():
        _scan_line(s, raw)
    if not s.rows and not s.avgs and not (s.devices or s.version or s.seen_header or s.params or s.oob is not None):
        return Unparseable.of("no nccl-tests header, rows or 'Avg bus bandwidth' line", text)
    info = tuple(f"{d.host or '?'} dev{d.device} [{d.bus_id}] {d.name}" for d in s.devices)
    runs, interleaved = _sweeps([r.size_bytes for r in s.rows])
    result = NcclTestResult(rows=tuple(s.rows), avg_busbw=s.avgs[-1] if s.avgs else None, out_of_bounds=s.oob,
                            version=s.version, ranks=len(s.devices), devices=info,
                            notes=tuple(_notes(s, runs, interleaved)), interleaved=interleaved,
                            nccl_version=s.nccl_version, params=s.params, device_info=tuple(s.devices),
                            error_column=s.error_column, runs=max(runs, 1), avg_busbw_all=tuple(s.avgs),
                            **_independence(s, interleaved))
    if result.independent_note:
        result = dataclasses.replace(result, notes=result.notes + (result.independent_note,))
    return result


def summary(result: NcclTestResult) -> dict[str, Any]:
    """A compact dict of the numbers a report shows (largest-size busbw, max, average, correctness)."""
    big = result.busbw_at_largest()
    return {"rows": len(result.rows), "avg_busbw": result.avg_busbw, "max_busbw": result.max_busbw,
            "largest_size": big[0] if big else None, "busbw_at_largest": big[1] if big else None,
            "wrong_total": result.wrong_total, "out_of_bounds": result.out_of_bounds}
