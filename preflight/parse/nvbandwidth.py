"""nvbandwidth output (v0.2 .. v0.8 layouts) -> NvbandwidthRun or Unparseable.

Why: a bandwidth matrix is active evidence about the PCIe/NVLink paths, so a block cut off
mid-matrix keeps only its complete rows and says what is missing (`partial`), an aborted test
(ASSERT, CUDA error) is an error, and a run with either never reads as complete.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from preflight.parse.common import Unparseable, is_probably_text

_RUNNING = re.compile(r"^Running\s+(\S+?)(\.?)\s*$")
_TITLE = re.compile(r"^(?P<title>.*?\b(?P<rk>CPU|GPU)\(row\)\s*(?P<dir><->|->|<-)\s*(?P<ck>CPU|GPU)\(column\)"
                    r".*?)\s*(?:\((?P<unit>[^)]+)\))?\s*$")
_SUM = re.compile(r"^SUM\s+(\S+)\s+(\S+)\s*$")
# v0.10 prints the run-to-run spread of a test's samples after its SUM line
_COV = re.compile(r"^COEFFICIENT_OF_VARIATION\s+(\S+)\s+(\S+)\s*$")
_DEVICE = re.compile(r"^Device\s+(\d+):\s*(.*?)\s*(?:\(([0-9a-fA-F]{4,8}:[0-9a-fA-F]{2}:[0-9a-fA-F]{2}(?:\.\d)?)\))?\s*$")
_ERROR = re.compile(r"ASSERT|Invalid value|CUDA error|cudaError|CUresult|failed|Segmentation fault|core dumped"
                    r"|terminate called|what\(\):|^Error\b|^ERROR\b", re.I)
_HEADER_KEYS = {
    "nvbandwidth version": "version", "built from git version": "git_version",
    "cuda runtime version": "cuda_runtime", "cuda driver version": "cuda_driver", "driver version": "driver",
}


@dataclass(frozen=True)
class NvbDevice:
    index: int
    name: str
    pci: str | None = None


@dataclass(frozen=True)
class NvbRow:
    label: str
    values: tuple[float | None, ...]  # None where nvbandwidth printed N/A (or a cell was unreadable)


@dataclass(frozen=True)
class NvbTest:
    """One test block: its matrix (row label -> values per column), SUM, and what is missing."""

    name: str | None
    title: str | None
    unit: str | None
    row_kind: str | None  # CPU | GPU
    col_kind: str | None
    direction: str | None  # -> | <- | <->
    columns: tuple[str, ...]
    rows: tuple[NvbRow, ...]
    sum: float | None
    partial: str | None = None
    error: str | None = None
    waived: bool = False
    evidence: tuple[str, ...] = ()

    def value(self, row: str | int, col: str | int) -> float | None:
        """The cell at (row label, column label), None for N/A or absent."""
        for r in self.rows:
            if r.label == str(row) and str(col) in self.columns:
                i = self.columns.index(str(col))
                return r.values[i] if i < len(r.values) else None
        return None

    def measured(self) -> tuple[float, ...]:
        """Every measured cell, leaving out N/A and the 0.00 self-copy diagonal older versions printed."""
        out: list[float] = []
        for r in self.rows:
            for col, v in zip(self.columns, r.values):
                diag = self.row_kind == self.col_kind == "GPU" and col == r.label
                if v is not None and not (diag and v == 0.0):
                    out.append(v)
        return tuple(out)


@dataclass(frozen=True)
class NvbandwidthRun:
    version: str | None
    git_version: str | None
    cuda_runtime: str | None
    cuda_driver: str | None
    driver: str | None
    devices: tuple[NvbDevice, ...]
    tests: tuple[NvbTest, ...]
    errors: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def partial(self) -> str | None:
        """What is missing, test by test; None when every block is whole."""
        parts = [f"{t.name or t.title or 'test'}: {t.partial}" for t in self.tests if t.partial]
        return "; ".join(parts) or None

    @property
    def complete(self) -> bool:
        return bool(self.tests) and not self.errors and self.partial is None and not any(t.error for t in self.tests)

    def test(self, name: str) -> NvbTest | None:
        return next((t for t in self.tests if t.name == name), None)


@dataclass
class _Block:
    name: str | None = None
    name_cut: bool = False
    title: str | None = None
    unit: str | None = None
    row_kind: str | None = None
    col_kind: str | None = None
    direction: str | None = None
    columns: list[str] = field(default_factory=list)
    rows: list[NvbRow] = field(default_factory=list)
    sum: float | None = None
    problems: list[str] = field(default_factory=list)
    error: str | None = None
    waived: bool = False
    lines: list[str] = field(default_factory=list)

    def missing(self, sum_expected: bool) -> list[str]:
        out = list(self.problems)
        if self.error or self.waived:
            return out
        if self.name_cut:
            out.append("test name cut mid-line")
        if self.title is None:
            out.append("cut before the matrix")
        elif not self.columns:
            out.append("cut before the column header")
        elif not self.rows:
            out.append("cut after the column header: no row")
        elif self.row_kind == "GPU" and len(self.rows) < len(self.columns):
            out.append(f"{len(self.columns) - len(self.rows)} of {len(self.columns)} rows missing "
                       f"(last complete row {self.rows[-1].label})")
        if self.title is not None and self.sum is None and sum_expected:
            out.append("no SUM line")
        return out

    def build(self, sum_expected: bool) -> NvbTest:
        missing = self.missing(sum_expected)
        return NvbTest(self.name, self.title, self.unit, self.row_kind, self.col_kind, self.direction,
                       tuple(self.columns), tuple(self.rows), self.sum, "; ".join(missing) or None, self.error,
                       self.waived, tuple(self.lines))


def _cell(token: str) -> tuple[float | None, bool]:
    """(value, readable): N/A is None and readable; anything else not a number is None and unreadable."""
    if token.upper() in ("N/A", "NA"):
        return None, True
    try:
        return float(token), True
    except ValueError:
        return None, False


class _Reader:
    def __init__(self) -> None:
        self.header: dict[str, str] = {}
        self.devices: dict[int, NvbDevice] = {}
        self.blocks: list[_Block] = []
        self.cur: _Block | None = None
        self.errors: list[str] = []
        self.notes: list[str] = []
        self.saw_sum = False
        self.in_note = False

    def block(self) -> _Block:
        if self.cur is None:
            self.cur = _Block()
            self.blocks.append(self.cur)
        return self.cur

    def feed(self, raw: str) -> None:
        line = raw.strip()
        if not line or line.startswith("NOTE") or self.in_note:
            self.in_note = bool(line)
            if line:
                self.notes.append(line)
            return
        key, sep, val = line.partition(":")
        if sep and key.strip().lower() in _HEADER_KEYS and self.cur is None:
            self.header.setdefault(_HEADER_KEYS[key.strip().lower()], val.strip())
            return
        if self.structural(line):
            return
        if self.cur is not None and self.cur.columns and re.match(r"^\S+(\s+\S+)+$", line) and \
                re.match(r"^\d+$", line.split()[0]):
            self.data_row(line)
            return
        self.other(line)

    def structural(self, line: str) -> bool:
        m = _RUNNING.match(line)
        if m:
            self.cur = None
            b = self.block()
            b.name, b.name_cut = m.group(1), m.group(2) != "."
            b.lines.append(line)
            return True
        m = _TITLE.match(line)
        if m:
            b = self.block()
            if b.title is not None:  # a second matrix without a Running line: a new block
                self.cur = None
                b = self.block()
            b.title, b.unit = m.group("title"), m.group("unit")
            b.row_kind, b.col_kind, b.direction = m.group("rk"), m.group("ck"), m.group("dir")
            b.lines.append(line)
            return True
        m = _SUM.match(line)
        if m:
            self.sum_line(line, m.group(1), m.group(2))
            return True
        if _COV.match(line):
            if self.cur is not None:
                self.cur.lines.append(line)
            return True
        m = _DEVICE.match(line)
        if m:
            idx = int(m.group(1))
            self.devices.setdefault(idx, NvbDevice(idx, m.group(2), m.group(3)))
            return True
        if self.cur is not None and self.cur.title and not self.cur.columns and re.fullmatch(r"\d+(\s+\d+)*", line):
            self.cur.columns = line.split()
            self.cur.lines.append(line)
            return True
        return False

    def sum_line(self, line: str, name: str, value: str) -> None:
        self.saw_sum = True
        b = self.cur if self.cur is not None and self.cur.name in (None, name) else None
        if b is None:
            b = next((x for x in reversed(self.blocks) if x.name == name), None)
        if b is None:
            self.cur = None
            b = self.block()
        b.name = b.name or name
        v, ok = _cell(value)
        if not ok or v is None:
            b.problems.append(f"SUM value {value!r} is not a number")
        elif b.sum is not None and b.sum != v:
            b.problems.append(f"two SUM lines ({b.sum} and {v})")
        else:
            b.sum = v
        b.lines.append(line)

    def data_row(self, line: str) -> None:
        b = self.cur
        assert b is not None
        label, *cells = line.split()
        values: list[float | None] = []
        for c in cells:
            v, ok = _cell(c)
            if not ok:
                b.problems.append(f"row {label}: cell {c!r} is not a number")
            values.append(v)
        if any(r.label == label for r in b.rows):
            b.problems.append(f"row {label} printed twice")
            return
        if len(values) < len(b.columns):
            b.problems.append(f"row {label} cut after {len(values)} of {len(b.columns)} values (dropped)")
            return
        if len(values) > len(b.columns):
            b.problems.append(f"row {label} has {len(values)} values for {len(b.columns)} columns")
        b.rows.append(NvbRow(label, tuple(values[:len(b.columns)])))
        b.lines.append(line)

    def other(self, line: str) -> None:
        if line.lower().startswith("waived"):
            self.block().waived = True
            self.block().lines.append(line)
        elif _ERROR.search(line):
            self.errors.append(line)
            if self.cur is not None:
                self.cur.error = self.cur.error or line
                self.cur.lines.append(line)
        elif self.cur is not None and self.cur.title and not self.cur.columns:
            self.cur.problems.append(f"unreadable column header {line[:40]!r}")
        elif self.cur is not None and self.cur.columns:
            self.cur.problems.append(f"unreadable line in the matrix {line[:40]!r}")


def parse_nvbandwidth(text: Any) -> NvbandwidthRun | Unparseable:
    """Banner, devices and every test block; Unparseable when there is neither a test block nor an error."""
    if not isinstance(text, str) or not is_probably_text(text):
        return Unparseable.of("empty or binary output", text if isinstance(text, str) else "")
    reader = _Reader()
    for raw in text.split("\n"):
        reader.feed(raw)
    if not reader.blocks and not reader.errors:
        if reader.header or reader.devices:
            return Unparseable.of("nvbandwidth banner without any test block (cut off before the first test)", text)
        return Unparseable.of("not nvbandwidth output (no 'Running <test>.', matrix or SUM line)", text)
    sum_expected = reader.saw_sum or "version" in reader.header
    h = reader.header
    return NvbandwidthRun(h.get("version"), h.get("git_version"), h.get("cuda_runtime"), h.get("cuda_driver"),
                          h.get("driver"), tuple(reader.devices[i] for i in sorted(reader.devices)),
                          tuple(b.build(sum_expected) for b in reader.blocks), tuple(reader.errors),
                          tuple(reader.notes))
