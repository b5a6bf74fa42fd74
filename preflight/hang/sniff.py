"""What a hang-analysis input is (NCCL log, NCCL RAS report, watchdog, flight recorder, kernel log with Xid), parsed
once per kind."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from preflight.hang.flight_recorder import FrDump, FrTrace, load_dump, parse_dump_text, parse_frtrace
from preflight.hang.job_signals import JobSignals, scan
from preflight.hang.mlx5_health import Mlx5Event, parse_mlx5_health
from preflight.hang.nccl_log import NcclLog, parse_nccl_log
from preflight.hang.ncclras import RasReport, looks_like_ras, parse_ras
from preflight.hang.watchdog import WatchdogLog, parse_watchdog
from preflight.parse.common import Unparseable, is_probably_text, strip_corpus_header
from preflight.parse.xid import KernelLogEvents, parse_kernel_log
from preflight.textsafe import clean_text

MAX_TEXT_BYTES = 512 * 1024 * 1024
_SYSLOG_HOST = re.compile(r"^\s*[A-Z][a-z]{2}\s+\d{1,2}\s+\d\d:\d\d:\d\d\s+(?P<host>\S+)\s+kernel:", re.M)


@dataclass(frozen=True)
class HangFile:
    """Everything one input held; a job's stdout can be an NCCL log and a watchdog log at once."""

    source: str
    nccl: NcclLog | None = None
    watchdog: WatchdogLog | None = None
    dump: FrDump | None = None
    frtrace: FrTrace | None = None
    kernel: KernelLogEvents | None = None
    kernel_host: str | None = None  # the syslog host field of a kernel log, when it has one
    kernel_lines: dict[str, int] = field(default_factory=dict)  # stripped NVRM line -> its 1-based line number
    ras: RasReport | None = None  # an `ncclras` status report (NCCL >= 2.24)
    mlx5: tuple[Mlx5Event, ...] = ()  # mlx5_core health lines of a kernel log (hang/mlx5_health.py)
    signals: JobSignals = field(default_factory=JobSignals)  # time range, PyTorch build (hang/job_signals.py)

    @property
    def kinds(self) -> tuple[str, ...]:
        names = (("nccl_log", self.nccl), ("watchdog", self.watchdog), ("flight_recorder", self.dump),
                 ("frtrace", self.frtrace), ("kernel_log", self.kernel), ("ncclras", self.ras))
        return tuple(n for n, v in names if v is not None) + (("mlx5_health",) if self.mlx5 else ())


def parse_text(text: str, source: str = "") -> HangFile | Unparseable:
    """Sniff and parse one text; Unparseable (with why) when it holds none of the known kinds. Never raises."""
    if not isinstance(text, str) or not text.strip():
        return Unparseable.of("empty input", text if isinstance(text, str) else "")
    if not is_probably_text(text):
        return Unparseable.of("binary input (not a log or a text dump)", "")
    if text.startswith("# source:"):  # a corpus recording: blank its header (keeps file line numbers)
        body = strip_corpus_header(text)[1]
        text = "\n" * text[: len(text) - len(body)].count("\n") + body
    nccl = wd = dump = trace = kern = ras = None
    host = None
    klines: dict[str, int] = {}
    head = text.lstrip()[:1]
    if head == "{" and ('"entries"' in text or "'entries'" in text):
        d = parse_dump_text(text, source)
        dump = d if isinstance(d, FrDump) else None
    if dump is None and ("joining collective" in text or " at entry " in text):
        t = parse_frtrace(text, source)
        trace = t if isinstance(t, FrTrace) else None
    if dump is None and trace is None:
        if "atchdog" in text:
            w = parse_watchdog(text, source)
            wd = w if isinstance(w, WatchdogLog) else None
        if looks_like_ras(text):
            r = parse_ras(text, source)
            ras = r if isinstance(r, RasReport) else None
        if "NCCL" in text or "nccl" in text:
            n = parse_nccl_log(text, source)
            nccl = n if isinstance(n, NcclLog) else None
        if "Xid" in text or "NVRM" in text:
            k = parse_kernel_log(text)
            if k.xids or k.others:
                kern = k
                m = _SYSLOG_HOST.search(text)
                host = m.group("host") if m else None
                for i, line in enumerate(text.split("\n"), 1):
                    if "NVRM" in line:
                        klines.setdefault(line.strip(), i)
    mlx5 = tuple(parse_mlx5_health(text, source)) if dump is None and "mlx5_core" in text else ()
    if mlx5 and host is None:
        m = _SYSLOG_HOST.search(text)
        host = m.group("host") if m else None
    f = HangFile(source, nccl, wd, dump, trace, kern, host, klines, ras, mlx5, scan(text))
    if not f.kinds:
        return Unparseable.of("not an NCCL log, NCCL RAS report, watchdog log, flight-recorder dump or kernel log "
                              "with Xid or mlx5_core health lines", text)
    return f


def parse_path(path: Path, source: str | None = None) -> HangFile | Unparseable:
    """One file: pickled flight-recorder dumps (restricted unpickling) or any of the text kinds.
    `source` is the name evidence lines carry (default: the file name)."""
    source = source or path.name
    try:
        size = path.stat().st_size
        if size > MAX_TEXT_BYTES:
            return Unparseable.of(f"{path.name}: larger than {MAX_TEXT_BYTES} bytes, not read", "")
        with path.open("rb") as fh:
            first = fh.read(1)
    except OSError as e:
        return Unparseable.of(f"{path.name}: cannot read: {e.strerror or e}", "")
    if first == b"\x80":
        d = load_dump(path)
        return HangFile(source, dump=d) if isinstance(d, FrDump) else d
    try:
        text = clean_text(path.read_bytes().decode("utf-8", "replace"))  # a file off a node is node text
    except OSError as e:
        return Unparseable.of(f"{path.name}: cannot read: {e.strerror or e}", "")
    return parse_text(text, source)
