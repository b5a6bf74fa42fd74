"""NCCL RAS status reports (`ncclras`, or `echo status | nc localhost 28028`; NCCL >= 2.24): communicators, their
status, the ranks that lag (operation counts) and the processes RAS cannot reach, each rank with its node.

Shapes read (NCCL's src/ras/client_support.cc and the RAS page of the NCCL user guide; spacing is not relied on):
  Group  Comms  Nodes  Ranks  Ranks  Ranks  Status  Errors          the communicators table, one row per group:
      0      1      4      8     32     32  RUNNING  MISMATCH         '0 1 4 1-2 32 32 FINALIZE MISMATCH'
  #0-0 (27a079b828ff1a75) MISMATCH | INCOMPLETE | ERROR            a communicator's detail (Errors / Warnings)
    26 ranks have launched up to operation 6650                     a group of ranks with the same count
    Rank 0 -- GPU 0 managed by process 483072 on node 172.16.64.210 a member of the group above
    Rank 7 has launched up to operation 60 -- GPU 3 managed by ...  a group of one
    26 ranks have status UNKNOWN / Rank 3 has status INIT -- ...     status mismatches
    The missing rank: 21                                            older INCOMPLETE detail
  INCOMPLETE / DEAD                                                 job-level: processes RAS has no data from
    Process 3487984 on node 172.16.64.213 managing GPU 5
RAS itself says a MISMATCH can be transient (collectives outpace its query): the verdict says to repeat the query.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from preflight.hang.lines import Evidence, evidence, split_lines, strip_launcher
from preflight.parse.common import Unparseable

_ROW = re.compile(r"^(?P<g>\d+) (?P<comms>\d+) (?P<nodes>\d+) (?P<rpn>\d+(?:-\d+)?) (?P<rpc>\d+) (?P<rig>\d+) "
                  r"(?P<status>[A-Z]+) (?P<errors>[A-Z]+)$")
_COMM = re.compile(r"^#(?P<id>\d+-\d+) \((?P<hash>[0-9a-fA-F]+)\) (?P<kind>MISMATCH|INCOMPLETE|ERROR)$")
_DIFFERENT = re.compile(r"^Communicator ranks have different (?P<what>.+?)$")
_GROUP_OPS = re.compile(r"^(?P<n>\d+) ranks have "
                        r"(?:launched up to operation (?P<op>\d+)|(?P<none>not launched any operations))$")
_GROUP_STATUS = re.compile(r"^(?P<n>\d+) ranks have status (?P<status>[A-Z]+)$")
_GROUP_ERROR = re.compile(r"^(?P<n>\d+) ranks reported (?P<err>.+)$")
_RANK = re.compile(
    r"^Rank (?P<rank>\d+)(?: has launched up to operation (?P<op>\d+)| has (?P<none>not launched any operations)"
    r"| has status (?P<status>[A-Z]+)| reported (?P<err>.+?))?"
    r" -- (?:GPU (?P<gpu>\S+) managed by process (?P<pid>\d+) on node (?P<node>\S+)"
    r"|\[process information not found\])$")
_MISSING_RANK = re.compile(r"^The missing ranks?: (?P<ranks>[\d, ]+)$")
_PROCESS = re.compile(r"^Process (?P<pid>\d+) on node (?P<node>\S+) managing GPUs? (?P<gpus>.+)$")
_MISSING_PROCS = re.compile(r"^Missing communicator data from (?P<n>\d+) (?P<what>job process(?:es)?|ranks?)$")
_DEAD = re.compile(r"^(?P<n>\d+) job process(?:es are| is) considered dead")
_TIMEOUTS = re.compile(r"^Encountered (?P<n>\d+) communication timeouts?")
_VERSION = re.compile(r"^NCCL version (?P<v>\d+\.\d+\.\d+)")
_SECTIONS = {"Job summary": "job", "Errors": "errors", "Warnings": "warnings"}


@dataclass(frozen=True)
class RasRank:
    """One rank RAS names: its communicator rank, GPU, process and node (None where RAS had no process data)."""

    rank: int
    gpu: str | None
    pid: int | None
    node: str | None
    evidence: Evidence


@dataclass(frozen=True)
class RasCountGroup:
    """Ranks of one communicator that share a value: an operation count (0 = none launched) or a status name.
    RAS lists the members only of small (outlier) groups; `ranks` is empty when it did not."""

    size: int
    operation: int | None
    status: str | None
    ranks: tuple[RasRank, ...]
    evidence: Evidence


@dataclass(frozen=True)
class RasMismatch:
    """'#0-0 (hash) MISMATCH': the communicator's ranks disagree on an operation count or on their status."""

    comm: str  # '0-0': group number - communicator number in the group
    comm_hash: str
    what: str  # 'AllReduce operation counts', 'collective operation counts', 'status'
    groups: tuple[RasCountGroup, ...]
    evidence: Evidence

    @property
    def counts_operations(self) -> bool:
        return "operation counts" in self.what

    @property
    def top(self) -> int | None:
        ops = [g.operation for g in self.groups if g.operation is not None]
        return max(ops) if ops else None

    @property
    def lagging(self) -> tuple[RasCountGroup, ...]:
        """The groups below the highest operation count, lowest first (empty for status mismatches)."""
        top = self.top
        if top is None:
            return ()
        return tuple(sorted((g for g in self.groups if g.operation is not None and g.operation < top),
                            key=lambda g: g.operation or 0))


@dataclass(frozen=True)
class RasIncomplete:
    """'#0-0 (hash) INCOMPLETE': ranks of a communicator that sent RAS no data."""

    comm: str
    comm_hash: str
    missing: int | None
    ranks: tuple[RasRank, ...]
    rank_numbers: tuple[int, ...]  # 'The missing rank: 21' (older form, no process data)
    evidence: Evidence


@dataclass(frozen=True)
class RasProcess:
    """A job process RAS has no data from ('incomplete') or has declared unreachable for good ('dead')."""

    state: str  # incomplete | dead
    pid: int
    node: str
    gpus: str
    evidence: Evidence


@dataclass(frozen=True)
class RasCommGroup:
    """One row of the communicators table."""

    group: int
    comms: int
    nodes: int
    ranks_per_node: str  # '8' or a range '7-8'
    ranks_per_comm: int
    ranks_in_group: int
    status: str  # RUNNING | INIT | FINALIZE | ABORT | ...
    errors: str  # OK | MISMATCH | INCOMPLETE | ERROR
    evidence: Evidence


@dataclass(frozen=True)
class RasReport:
    """One RAS status report. `complete` only when its Errors and Warnings sections were both seen."""

    source: str
    nccl_version: str | None
    groups: tuple[RasCommGroup, ...]
    mismatches: tuple[RasMismatch, ...] = ()
    incomplete: tuple[RasIncomplete, ...] = ()
    processes: tuple[RasProcess, ...] = ()
    error_lines: tuple[Evidence, ...] = ()  # '#x-y ERROR' details: initialization / asynchronous errors
    timeouts: int = 0
    no_communicators: bool = False  # 'No communicator data collected!'
    sections: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default=())

    @property
    def complete(self) -> bool:
        return "errors" in self.sections and "warnings" in self.sections

    @property
    def healthy(self) -> bool:
        """RAS itself saw nothing wrong, and the whole report is here (a cut report proves nothing)."""
        return (self.complete and bool(self.groups) and all(g.errors == "OK" for g in self.groups)
                and not (self.mismatches or self.incomplete or self.processes or self.error_lines or self.timeouts))

    @property
    def dead(self) -> tuple[RasProcess, ...]:
        return tuple(p for p in self.processes if p.state == "dead")


def looks_like_ras(text: str) -> bool:
    """Cheap sniff: the RAS report's own headings or detail lines."""
    return ("Communicators..." in text or "ranks have launched up to operation" in text
            or "has launched up to operation" in text or "considered dead (unreachable via the RAS network)" in text
            or bool(re.search(r"^\s*#\d+-\d+ \([0-9a-fA-F]+\) (?:MISMATCH|INCOMPLETE|ERROR)\s*$", text, re.M))
            or bool(re.search(r"Group\s+Comms\s+Nodes\s+Ranks", text)))


def _rank(m: re.Match[str], ev: Evidence) -> RasRank:
    return RasRank(int(m.group("rank")), m.group("gpu"), int(m.group("pid")) if m.group("pid") else None,
                   m.group("node"), ev)


class _Detail:
    """A communicator detail being read: its count groups and the rank lines under each."""

    def __init__(self, kind: str, comm: str, comm_hash: str, ev: Evidence) -> None:
        self.kind, self.comm, self.hash, self.ev = kind, comm, comm_hash, ev
        self.what = ""
        self.groups: list[tuple[int, int | None, str | None, list[RasRank], Evidence]] = []
        self.missing: int | None = None
        self.ranks: list[RasRank] = []
        self.numbers: list[int] = []


class _RasReader:
    """Reads a report line by line: the table, the communicator details (one `_Detail` open at a time) and the
    job-level INCOMPLETE / DEAD blocks. `seen` counts lines that are RAS's own (none: not a RAS report)."""

    def __init__(self) -> None:
        self.version: str | None = None
        self.groups: list[RasCommGroup] = []
        self.mismatches: list[RasMismatch] = []
        self.incomplete: list[RasIncomplete] = []
        self.processes: list[RasProcess] = []
        self.error_lines: list[Evidence] = []
        self.sections: dict[str, None] = {}
        self.timeouts = 0
        self.no_comms = False
        self.seen = 0
        self.detail: _Detail | None = None
        self.job_state: str | None = None  # 'incomplete' | 'dead' while reading a job-level block

    def feed(self, line: str, ev: Evidence) -> None:
        if self._heading(line, ev) or self._block_start(line, ev) or self._job_line(line, ev):
            return
        if self.detail is None:
            return
        self.seen += 1
        self._detail_line(self.detail, line, ev)

    def close(self) -> None:
        """The open communicator detail is complete: keep it as a mismatch or an incomplete communicator."""
        d = self.detail
        self.detail = None
        if d is None:
            return
        if d.kind == "MISMATCH":
            what = d.what or ("status" if any(g[2] for g in d.groups) else "operation counts")
            self.mismatches.append(RasMismatch(d.comm, d.hash, what, tuple(
                RasCountGroup(n, op, st, tuple(rs), ev) for n, op, st, rs, ev in d.groups), d.ev))
        elif d.kind == "INCOMPLETE":
            self.incomplete.append(RasIncomplete(d.comm, d.hash, d.missing, tuple(d.ranks), tuple(d.numbers), d.ev))

    def _heading(self, line: str, ev: Evidence) -> bool:
        """Section headings, separators, the NCCL version, table rows, 'No communicator data collected'."""
        if line in _SECTIONS or line.startswith("Communicators..."):
            self.close()
            self.job_state = None
            self.sections[_SECTIONS.get(line, "communicators")] = None
            self.seen += 1
            return True
        if set(line) <= {"=", "#", " "} and "=" in line:
            return True
        m = _VERSION.match(line)
        if m:
            self.version = self.version or m.group("v")
            return True
        m = _ROW.match(line)
        if m and self.detail is None:
            self.groups.append(RasCommGroup(int(m.group("g")), int(m.group("comms")), int(m.group("nodes")),
                                            m.group("rpn"), int(m.group("rpc")), int(m.group("rig")),
                                            m.group("status"), m.group("errors"), ev))
            self.seen += 1
            return True
        if line.startswith("No communicator data collected"):
            self.no_comms = True
            self.seen += 1
            return True
        return False

    def _block_start(self, line: str, ev: Evidence) -> bool:
        """'#0-0 (hash) KIND' opens a communicator detail; a bare INCOMPLETE / DEAD / TIMEOUT a job-level block."""
        m = _COMM.match(line)
        if m:
            self.close()
            self.job_state = None
            self.detail = _Detail(m.group("kind"), m.group("id"), m.group("hash"), ev)
            self.seen += 1
            return True
        if line in ("INCOMPLETE", "DEAD", "TIMEOUT"):
            self.close()
            self.job_state = line.lower()
            self.seen += 1
            return True
        return False

    def _job_line(self, line: str, ev: Evidence) -> bool:
        """Timeout counts, the processes of a job-level block, and that block's own summary lines."""
        m = _TIMEOUTS.match(line)
        if m:
            self.timeouts += int(m.group("n"))
            return True
        m = _PROCESS.match(line)
        if m and self.job_state in ("incomplete", "dead"):
            self.processes.append(RasProcess(self.job_state, int(m.group("pid")), m.group("node"),
                                             m.group("gpus").strip(), ev))
            return True
        return bool(_DEAD.match(line) or (self.job_state and _MISSING_PROCS.match(line)))

    def _detail_line(self, detail: _Detail, line: str, ev: Evidence) -> None:
        """A line under '#x-y (hash) KIND': what differs, a count group, a rank, the missing ranks."""
        m = _DIFFERENT.match(line)
        if m:
            detail.what = m.group("what")
            return
        m = _GROUP_OPS.match(line)
        if m:
            op = 0 if m.group("none") else int(m.group("op"))
            detail.groups.append((int(m.group("n")), op, None, [], ev))
            return
        m = _GROUP_STATUS.match(line)
        if m:
            detail.groups.append((int(m.group("n")), None, m.group("status"), [], ev))
            return
        if _GROUP_ERROR.match(line):
            self.error_lines.append(ev)
            return
        m = _RANK.match(line)
        if m:
            self._rank_line(detail, m, ev)
            return
        m = _MISSING_RANK.match(line)
        if m:
            detail.numbers += [int(x) for x in re.findall(r"\d+", m.group("ranks"))]
            return
        m = _MISSING_PROCS.match(line)
        if m:
            detail.missing = int(m.group("n"))
            return
        if detail.kind == "ERROR":
            self.error_lines.append(ev)

    def _rank_line(self, detail: _Detail, m: re.Match[str], ev: Evidence) -> None:
        """'Rank N ... -- GPU g managed by process p on node n': a missing rank, an error, a group of one, or a
        member of the group printed just above."""
        r = _rank(m, ev)
        if detail.kind == "INCOMPLETE":
            detail.ranks.append(r)
        elif detail.kind == "ERROR" or m.group("err"):
            self.error_lines.append(ev)
        elif m.group("op") or m.group("none"):  # a group of one: its count is on the rank line
            detail.groups.append((1, 0 if m.group("none") else int(m.group("op")), None, [r], ev))
        elif m.group("status"):
            detail.groups.append((1, None, m.group("status"), [r], ev))
        elif detail.groups:
            detail.groups[-1][3].append(r)  # a member of the group printed just above

    def notes(self) -> list[str]:
        """What the report says about itself: sections missing, details the table flags but the text lacks."""
        notes: list[str] = []
        if "errors" not in self.sections or "warnings" not in self.sections:
            missing = [s for s in ("errors", "warnings") if s not in self.sections]
            notes.append(f"report incomplete: no {' / '.join(missing)} section (truncated, or an excerpt)")
        if any(g.errors == "MISMATCH" for g in self.groups) and not self.mismatches:
            notes.append("the table flags MISMATCH but its detail (under Warnings) is missing: truncated?")
        if any(g.errors == "INCOMPLETE" for g in self.groups) and not (self.incomplete or self.processes):
            notes.append("the table flags INCOMPLETE but its detail (under Errors) is missing: truncated?")
        for d in self.mismatches:
            listed = sum(len(g.ranks) for g in d.groups)
            if d.counts_operations and d.lagging and not any(g.ranks for g in d.lagging):
                notes.append(f"#{d.comm}: RAS did not list the lagging ranks (not an outlier group; "
                             f"`ncclras -v` lists more)")
            elif listed == 0 and d.groups:
                notes.append(f"#{d.comm}: no ranks listed")
        return notes

    def report(self, source: str) -> RasReport:
        return RasReport(source, self.version, tuple(self.groups), tuple(self.mismatches), tuple(self.incomplete),
                         tuple(self.processes), tuple(self.error_lines), self.timeouts, self.no_comms,
                         tuple(self.sections), tuple(self.notes()))


def parse_ras(text: str, source: str = "") -> RasReport | Unparseable:
    """Parse one RAS report; Unparseable when nothing in it is RAS's. Never raises on bad input."""
    if not isinstance(text, str) or not text.strip():
        return Unparseable.of("empty input: no NCCL RAS report", text if isinstance(text, str) else "")
    reader = _RasReader()
    for lineno, raw in enumerate(split_lines(text), 1):
        line = " ".join(strip_launcher(raw)[0].split())
        if line:
            reader.feed(line, evidence(source, lineno, raw))
    reader.close()
    if reader.seen == 0:
        return Unparseable.of("no NCCL RAS report lines (expected the 'Communicators...' table or "
                              "'#0-0 (hash) ...')", text)
    return reader.report(source)
