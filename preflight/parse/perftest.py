"""perftest (ib_write_bw, ib_read_bw, ib_send_bw, ib_*_lat) output -> PerftestRun or Unparseable.

Why: an RDMA bandwidth/latency run is active evidence about one NIC port, so each printed block
(a server's and a client's may be concatenated) keeps its own header, side and rows; a table that
ends without its closing line is `partial`, never a complete run. Units are kept as printed
(`Gb/sec` with --report_gbits, `MB/sec` without).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from preflight.parse.common import Unparseable, is_probably_text

_TITLE = re.compile(r"^(?P<name>[A-Za-z][\w ]*?(?:BW|Latency))\s+Test\s*$")
_DASHES = re.compile(r"^-{20,}\s*$")
_BANNER = re.compile(r"Waiting for client to connect", re.I)
_SPLIT = re.compile(r"\s{2,}(?=[A-Za-z][\w .*/-]*?\s*:)")
_NUM = r"-?\d+(?:\.\d+)?"
_ERROR = re.compile(r"Couldn't|Could not|Unable to|Failed|failed|error|ERROR|Problems with|not supported|"
                    r"No such device|IB device .* not found|Segmentation fault", re.I)
_WARNING = re.compile(r"^(?:WARNING|Conflicting CPU frequency|Max msg size|Changing to)", re.I)
_LAT_COLS = (("t_min", "t_min"), ("t_max", "t_max"), ("t_typical", "t_typical"), ("t_avg", "t_avg"),
             ("t_stdev", "t_stdev"), ("99% percentile", "p99"), ("99.9% percentile", "p999"))


@dataclass(frozen=True)
class BwRow:
    bytes: int
    iterations: int
    bw_peak: float | None
    bw_average: float | None
    msg_rate_mpps: float | None
    raw: str = ""


@dataclass(frozen=True)
class LatRow:
    """Latencies in usec; columns older perftest versions do not print are None."""

    bytes: int
    iterations: int
    t_min: float | None = None
    t_max: float | None = None
    t_typical: float | None = None
    t_avg: float | None = None
    t_stdev: float | None = None
    p99: float | None = None
    p999: float | None = None
    raw: str = ""


@dataclass(frozen=True)
class PerftestBlock:
    """One printed header + result table, from one side of the test."""

    test: str | None  # "RDMA_Write BW", "Send Latency", "RDMA_Write Bidirectional BW" ...
    kind: str | None  # bw | lat
    side: str | None  # server | client | None (not shown)
    side_evidence: str | None
    device: str | None
    port: int | None
    link_type: str | None  # IB | Ethernet
    connection_type: str | None  # RC | UC | UD | XRC | DC
    transport: str | None
    mtu: str | None
    settings: tuple[tuple[str, str], ...]
    unit: str | None  # BW unit as printed ("Gb/sec", "MB/sec"); "usec" for latency
    bw_rows: tuple[BwRow, ...] = ()
    lat_rows: tuple[LatRow, ...] = ()
    addresses: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    partial: str | None = None

    @property
    def rows(self) -> tuple[BwRow, ...] | tuple[LatRow, ...]:
        return self.bw_rows if self.kind != "lat" else self.lat_rows

    @property
    def largest(self) -> BwRow | LatRow | None:
        rows: list[BwRow | LatRow] = list(self.rows)
        return max(rows, key=lambda r: r.bytes) if rows else None

    def bw_gbps(self, row: BwRow) -> float | None:
        """The row's average bandwidth in Gb/s whatever unit was printed (MB/sec: 10^6 bytes)."""
        if row.bw_average is None or self.unit is None:
            return None
        unit = self.unit.lower()
        if unit.startswith("gb"):
            return row.bw_average
        if unit.startswith("mb"):
            return row.bw_average * 8 / 1000
        return None


@dataclass(frozen=True)
class PerftestRun:
    """Every block in the output; `main` is the client's (the side that measures), else the first."""

    blocks: tuple[PerftestBlock, ...]
    errors: tuple[str, ...] = ()

    @property
    def main(self) -> PerftestBlock:
        with_rows = [b for b in self.blocks if b.rows]
        pool = with_rows or list(self.blocks)
        return next((b for b in pool if b.side == "client"), pool[0])

    @property
    def test(self) -> str | None:
        return self.main.test

    @property
    def sides(self) -> tuple[str | None, ...]:
        return tuple(b.side for b in self.blocks)

    @property
    def partial(self) -> str | None:
        parts = [f"block {i + 1} ({b.side or 'side not shown'}): {b.partial}" for i, b in enumerate(self.blocks)
                 if b.partial]
        return "; ".join(parts) or None

    @property
    def complete(self) -> bool:
        return not self.errors and self.partial is None and all(b.rows for b in self.blocks)


@dataclass
class _Acc:
    test: str | None = None
    banner: bool = False
    pre: list[str] = field(default_factory=list)
    settings: list[tuple[str, str]] = field(default_factory=list)
    addresses: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    cols: list[str] | None = None
    unit: str | None = None
    kind: str | None = None
    bw: list[BwRow] = field(default_factory=list)
    lat: list[LatRow] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    table_open: bool = False
    closed: bool = False
    port: int | None = None

    def setting(self, key: str) -> str | None:
        k = key.lower()
        return next((v for s, v in self.settings if s.lower() == k), None)

    def side(self) -> tuple[str | None, str | None]:
        if self.banner:
            return "server", "'Waiting for client to connect' banner before this block"
        tx, rx = self.setting("TX depth"), self.setting("RX depth")
        bidir = "bidirectional" in (self.test or "").lower()
        if tx is not None and not bidir and rx is None:
            return "client", "'TX depth' printed (only the client prints it in a one-way test)"
        if rx is not None and tx is None:
            return "server", "'RX depth' without 'TX depth' (the server's header)"
        return None, None

    def build(self, eof: bool, has_dashes: bool) -> PerftestBlock:
        problems = list(self.problems)
        rows = self.lat if self.kind == "lat" else self.bw
        if self.cols is None:
            problems.append("cut before the result table")
        elif not rows:
            problems.append("result table without any row")
        elif eof and self.table_open and not self.closed:
            last = rows[-1].bytes
            problems.append(f"table not closed after the {last}-byte row (cut off)" if has_dashes else
                            f"table not closed after the {last}-byte row (no separator lines: its end is not shown)")
        side, why = self.side()
        kind = self.kind or ("lat" if "latency" in (self.test or "").lower() else "bw" if self.test else None)
        return PerftestBlock(self.test, kind, side, why, self.setting("Device"), self.port, self.setting("Link type"),
                             self.setting("Connection type"), self.setting("Transport type"), self.setting("Mtu"),
                             tuple(self.settings), self.unit, tuple(self.bw), tuple(self.lat), tuple(self.addresses),
                             tuple(self.warnings), "; ".join(problems) or None)


def _header(acc: _Acc, line: str) -> None:
    acc.cols = []
    acc.table_open = True
    if "t_min" in line or "t_avg" in line:
        acc.kind, acc.unit = "lat", "usec"
        acc.cols = [name for label, name in _LAT_COLS if label in line]
    else:
        acc.kind = "bw"
        m = re.search(r"BW average\[([^\]]+)\]", line) or re.search(r"BW peak\[([^\]]+)\]", line)
        acc.unit = m.group(1) if m else None
        acc.cols = ["bw_peak", "bw_average"] + (["msg_rate_mpps"] if "MsgRate" in line else [])


def _row(acc: _Acc, line: str) -> None:
    tokens = line.split()
    if not all(re.fullmatch(_NUM, t) for t in tokens):
        acc.problems.append(f"unreadable row {line.strip()[:50]!r}")
        return
    size, iters = int(tokens[0]), int(float(tokens[1]))
    vals = [float(t) for t in tokens[2:]]
    cols = acc.cols or []
    need = 2 if acc.kind == "bw" else min(4, len(cols))
    if len(vals) < len(cols) and (len(vals) < need or acc.kind == "lat"):
        acc.problems.append(f"row {size} cut after {len(tokens)} fields (dropped)")
        return
    rows: list[Any] = acc.lat if acc.kind == "lat" else acc.bw
    if any(r.bytes == size for r in rows):
        acc.problems.append(f"row {size} printed twice")
        return
    named = dict(zip(cols, vals))
    if acc.kind == "lat":
        acc.lat.append(LatRow(size, iters, raw=line.strip(), **named))
    else:
        acc.bw.append(BwRow(size, iters, named.get("bw_peak"), named.get("bw_average"), named.get("msg_rate_mpps"),
                            line.strip()))


def _settings(acc: _Acc, line: str) -> bool:
    flat = line.replace("\t", "  ").strip()
    if ":" not in flat or flat.lower().startswith(("local address", "remote address", "gid:")):
        return False
    for part in _SPLIT.split(flat):
        key, sep, value = part.partition(":")
        if sep and key.strip():
            acc.settings.append((re.sub(r"\s+", " ", key.strip()), value.strip()))
    return True


class _Reader:
    def __init__(self) -> None:
        self.blocks: list[_Acc] = []
        self.cur: _Acc | None = None
        self.errors: list[str] = []
        self.banner_pending = False
        self.port: int | None = None
        self.pending: list[str] = []

    def new(self, test: str | None) -> _Acc:
        self.cur = _Acc(test=test, banner=self.banner_pending, port=self.port, warnings=self.pending)
        self.banner_pending, self.pending = False, []
        self.blocks.append(self.cur)
        return self.cur

    def feed(self, raw: str) -> None:
        line = raw.strip()
        if not line or set(line) <= {"*"}:
            return
        m = re.search(r"\bib_(?:write|read|send|atomic)_(?:bw|lat)\b.*?(?:\s-i\s*|\s--ib-port[= ])(\d+)\b", line)
        if m:
            self.port = int(m.group(1))
        if _BANNER.search(line):
            self.banner_pending = True
            return
        if _DASHES.match(line):
            if self.cur is not None and self.cur.table_open and (self.cur.bw or self.cur.lat):
                self.cur.closed, self.cur.table_open = True, False
            return
        t = _TITLE.match(line)
        if t:
            self.new(t.group("name"))
            return
        if "#bytes" in line and ("#iterations" in line or "iterations" in line):
            acc = self.cur if self.cur is not None and self.cur.cols is None else self.new(None)
            _header(acc, line)
            return
        if self.cur is not None and self.cur.table_open and re.match(r"^\d+\s", line):
            _row(self.cur, line)
            return
        self.other(line)

    def other(self, line: str) -> None:
        cur = self.cur
        if _WARNING.match(line):
            (cur.warnings if cur is not None and cur.cols is not None else self.pending).append(line)
            return
        if cur is not None and line.lower().startswith(("local address", "remote address", "gid:")):
            cur.addresses.append(line)
            return
        if cur is not None and cur.cols is None and _settings(cur, line):
            return
        if _ERROR.search(line):
            self.errors.append(line)
        elif cur is not None and cur.table_open:
            cur.problems.append(f"unreadable line in the table {line[:50]!r}")


def parse_perftest(text: Any) -> PerftestRun | Unparseable:
    """Every header+table block; Unparseable when there is none (the tool's error line said, when it printed one)."""
    if not isinstance(text, str) or not is_probably_text(text):
        return Unparseable.of("empty or binary output", text if isinstance(text, str) else "")
    reader = _Reader()
    for raw in text.split("\n"):
        reader.feed(raw)
    blocks = [b for b in reader.blocks if b.test or b.cols is not None]
    if not blocks:
        if reader.errors:
            return Unparseable.of(f"perftest printed an error and no result: {reader.errors[0][:160]}", text)
        return Unparseable.of("not perftest output (no '<test> BW/Latency Test' header, no #bytes table)", text)
    has_dashes = any(_DASHES.match(line.strip()) for line in text.split("\n"))
    built = [b.build(eof=(i == len(blocks) - 1), has_dashes=has_dashes) for i, b in enumerate(blocks)]
    return PerftestRun(tuple(built), tuple(reader.errors))
