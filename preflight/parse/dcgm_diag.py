"""`dcgmi diag` output (text table or `-j` JSON, DCGM 3.x and 4.x) -> DcgmDiag or Unparseable.

Why so careful: a diag is active evidence about the hardware, so a table cut off before its
closing border, a test that was skipped or not run, or a JSON fragment must never read as a pass.
`DcgmDiag.overall` is `pass` only for a complete output whose every test passed.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from preflight.parse.common import Unparseable, is_probably_text

STATUS_RANK = {"pass": 0, "skip": 1, "not_run": 1, "warn": 2, "fail": 3}
MESSAGE_KINDS = {"error": "error", "warning": "warning", "info": "info"}


@dataclass(frozen=True)
class GpuStatus:
    """One GPU's result in one test, as DCGM named it."""

    gpu: int
    status: str  # pass | fail | warn | skip | not_run


@dataclass(frozen=True)
class DcgmMessage:
    """An Error/Warning/Info text DCGM attached to a test (wrapped cells joined), with the GPUs it names."""

    kind: str  # error | warning | info
    text: str
    gpus: tuple[int, ...] = ()
    evidence: tuple[str, ...] = ()


@dataclass(frozen=True)
class DcgmTest:
    """One diag test (plugin): its worst status, per-GPU results and DCGM's messages."""

    name: str
    category: str | None
    status: str  # worst of the row and per-GPU statuses: pass | fail | warn | skip | not_run
    gpus: tuple[GpuStatus, ...] = ()
    all_gpus: bool = False  # "Pass - All" (DCGM 3 text) or one result covering every GPU
    messages: tuple[DcgmMessage, ...] = ()
    evidence: tuple[str, ...] = ()
    table: int = 0  # which table (or JSON document) of the output it came from

    @property
    def warnings(self) -> tuple[str, ...]:
        return tuple(m.text for m in self.messages if m.kind in ("error", "warning"))

    def gpu_status(self, gpu: int) -> str | None:
        """The GPU's own status; the test's status when DCGM reported it for all GPUs; None when unseen."""
        for g in self.gpus:
            if g.gpu == gpu:
                return g.status
        return self.status if self.all_gpus else None


@dataclass(frozen=True)
class DcgmDiag:
    """A parsed diag run. `partial` says what is missing when the output was cut short or is a fragment."""

    format: str  # text | json
    version: str | None
    driver: str | None
    run_level: str | None  # "1".."4" or a test name, when the command line was captured
    gpu_device_ids: tuple[str, ...]
    tests: tuple[DcgmTest, ...]
    partial: str | None = None
    tables: int = 1
    runtime_error: str | None = None

    @property
    def failed(self) -> tuple[DcgmTest, ...]:
        return tuple(t for t in self.tests if t.status == "fail")

    @property
    def overall(self) -> str:
        """fail > partial > warn > skip > pass; `empty` when no test was read. Only a whole run can pass."""
        statuses = {t.status for t in self.tests}
        if "fail" in statuses or self.runtime_error:
            return "fail"
        if self.partial:
            return "partial"
        if not self.tests:
            return "empty"
        if "warn" in statuses:
            return "warn"
        if statuses & {"skip", "not_run"}:
            return "skip"
        return "pass"


def normalize_status(word: str) -> str | None:
    w = word.strip().lower().replace("-", " ").replace("_", " ")
    if w.startswith("pass"):
        return "pass"
    if w.startswith("fail"):
        return "fail"
    if w.startswith("warn"):
        return "warn"
    if w.startswith("skip"):
        return "skip"
    if w.startswith("not run") or w in ("notrun", "not supported"):
        return "not_run"
    return None


def worst(statuses: list[str]) -> str:
    return max(statuses, key=lambda s: STATUS_RANK.get(s, 3)) if statuses else "not_run"


def gpus_named(text: str) -> tuple[int, ...]:
    seen: list[int] = []
    for m in re.finditer(r"\bGPU\s*(\d+)\b", text):
        n = int(m.group(1))
        if n not in seen:
            seen.append(n)
    return tuple(seen)


def run_level_of(text: str) -> str | None:
    m = re.search(r"dcgmi\s+diag\b[^\n]*?(?:-r|--run)\s*(?:=\s*)?(\"[^\"]*\"|'[^']*'|\S+)", text)
    return m.group(1).strip("\"'") if m else None


# ---- text tables ---------------------------------------------------------------------------------

_BORDER = re.compile(r"^\+[-=]{3,}\+[-=]{3,}\+?$")
_SECTION = re.compile(r"^[|+]-{2,}\s+([A-Za-z][\w /&-]*?)\s+-+\+-+[|+]?$")
_GPU_LINE = re.compile(r"^GPU\s*(\S*?)\s*:\s*(Pass|Fail|Warn\w*|Skip\w*|Not Run)\b\s*(.*)$", re.I)
_GPU_STATUS = re.compile(r"^(Pass|Fail|Warn\w*|Skip\w*|Not Run)\s*-\s*GPUs?\b\s*:?\s*(.*)$", re.I)
_STATUS = re.compile(
    r"^(Pass|Fail|Warn(?:ing)?|Skip(?:ped)?|Not Run)\b(?:\s*-\s*(All|GPUs?\s*:\s*([\d,\s]+)))?\s*$", re.I)
_META = {"dcgm version": "version", "driver version detected": "driver", "gpu device ids detected": "ids"}
WRAP = 45  # dcgmi wraps a result cell every 45 characters, mid-word


@dataclass
class _Cell:
    """A cell being read: its wrapped chunks and the raw lines they came from."""

    kind: str
    chunks: list[str]
    lines: list[str]

    def text(self) -> str:
        return re.sub(r" {2,}", " ", "".join(self.chunks)).strip()


@dataclass
class _TestAcc:
    name: str
    category: str | None
    row_status: str | None
    all_gpus: bool
    gpus: list[GpuStatus]
    messages: list[DcgmMessage]
    lines: list[str]
    table: int
    unattributed: list[str]  # a per-GPU status whose GPU number could not be read still counts

    def build(self) -> DcgmTest:
        statuses = ([self.row_status] if self.row_status else []) + [g.status for g in self.gpus] + self.unattributed
        all_gpus = self.all_gpus or (not self.gpus and self.row_status is not None)
        return DcgmTest(self.name, self.category, worst(statuses), tuple(self.gpus), all_gpus,
                        tuple(self.messages), tuple(self.lines), self.table)


class _TableReader:
    """Reads the box-drawn tables line by line; keeps what a cut-off table already showed."""

    def __init__(self) -> None:
        self.tests: list[DcgmTest] = []
        self.meta: dict[str, str] = {}
        self.problems: list[str] = []
        self.tables = 0
        self.open = False
        self.seen_eq = False
        self.rows = 0
        self.category: str | None = None
        self.test: _TestAcc | None = None
        self.cell: _Cell | None = None
        self.last_key = ""

    def flush_cell(self) -> None:
        cell, self.cell = self.cell, None
        if cell is None:
            return
        if cell.kind.startswith("meta:"):
            self.meta.setdefault(cell.kind[5:], cell.text())
        elif self.test is not None:
            text = cell.text()
            self.test.messages.append(DcgmMessage(cell.kind, text, gpus_named(text), tuple(cell.lines)))

    def flush_test(self) -> None:
        self.flush_cell()
        if self.test is not None:
            self.tests.append(self.test.build())
        self.test = None

    def start(self, line: str) -> None:
        self.tables += 1
        self.open, self.seen_eq, self.rows, self.category = True, False, 0, None
        if not _BORDER.match(line):
            self.problems.append(f"table {self.tables} has no header (a fragment)")

    def close(self, why: str | None) -> None:
        self.flush_test()
        if why and self.rows:
            self.problems.append(f"table {self.tables} {why} after {self.last_key!r}")
        elif why:
            self.problems.append(f"table {self.tables} {why} before any row")
        self.open = False

    def feed(self, raw: str) -> None:
        line = raw.strip()
        if not line.startswith(("|", "+")):
            if self.open and line:
                self.close("interrupted by other text (no closing border)")
            return
        if not self.open:
            if _BORDER.match(line) and not line.startswith("+="):
                self.start(line)
                return
            self.start(line)
        sec = _SECTION.match(line)
        if sec:
            self.flush_test()
            self.category = sec.group(1).strip()
            self.rows += 1
            self.last_key = f"section {self.category}"
            return
        if _BORDER.match(line):
            if line.startswith("+="):
                self.seen_eq = True
            elif self.seen_eq or self.rows:
                self.close(None)
            return
        self.row(raw.strip())

    def row(self, line: str) -> None:
        body = line[1:]
        if "|" not in body:
            self.problems.append(f"table {self.tables}: a row without cells: {line[:60]!r}")
            return
        left, rest = body.split("|", 1)
        closed = rest.rstrip().endswith("|")
        right_raw = rest.rstrip()[:-1] if closed else rest
        if not closed:
            self.problems.append(f"table {self.tables}: row cut mid-line: {line[:60]!r}")
        chunk = right_raw[1:] if right_raw.startswith(" ") else right_raw
        chunk = chunk[:WRAP].ljust(WRAP) if len(chunk.rstrip()) <= WRAP else chunk.rstrip()
        key, value = left.strip(), right_raw.strip()
        if not self.seen_eq and not self.rows and key == "Diagnostic":
            return
        self.rows += 1
        if key:
            self.last_key = key
            self.keyed_row(key, value, chunk, line)
        else:
            self.continued_row(value, chunk, line)

    def keyed_row(self, key: str, value: str, chunk: str, line: str) -> None:
        self.flush_cell()
        word = key.split()[0].rstrip(":").lower()
        if (self.category or "").lower() == "metadata" and key.lower() in _META:
            self.cell = _Cell("meta:" + _META[key.lower()], [chunk], [line])
            return
        if word in MESSAGE_KINDS and self.test is not None:
            self.test.lines.append(line)
            self.cell = _Cell(MESSAGE_KINDS[word], [chunk], [line])
            return
        self.flush_test()
        m = _STATUS.match(value)
        status = normalize_status(m.group(1)) if m else None
        acc = _TestAcc(key, self.category, status, False, [], [], [line], self.tables - 1, [])
        if m and m.group(2):
            if m.group(2).lower() == "all":
                acc.all_gpus = True
            else:
                acc.gpus.extend(GpuStatus(int(n), status or "not_run") for n in re.findall(r"\d+", m.group(3)))
        elif value and status is None:
            self.cell = _Cell("info", [chunk], [line])
        self.test = acc

    def continued_row(self, value: str, chunk: str, line: str) -> None:
        if self.test is None and self.cell is None:
            return
        gl = _GPU_LINE.match(value)
        st = _GPU_STATUS.match(value)
        if self.test is not None and (gl or st):
            self.flush_cell()
            self.test.lines.append(line)
            if gl:
                status = normalize_status(gl.group(2)) or "not_run"
                if gl.group(1).isdigit():
                    self.test.gpus.append(GpuStatus(int(gl.group(1)), status))
                else:
                    self.test.unattributed.append(status)
                if gl.group(3).strip():
                    self.cell = _Cell("info", [gl.group(3)], [line])
            elif st:
                status = normalize_status(st.group(1)) or "not_run"
                ids = re.findall(r"\d+", st.group(2))
                self.test.gpus.extend(GpuStatus(int(n), status) for n in ids)
                if not ids or not re.fullmatch(r"[\d,\s]*", st.group(2)):
                    self.test.unattributed.append(status)
            return
        if self.cell is None:
            self.cell = _Cell("info", [], [])
        self.cell.chunks.append(chunk)
        self.cell.lines.append(line)
        if self.test is not None:
            self.test.lines.append(line)


def parse_text_tables(text: str) -> DcgmDiag | Unparseable:
    """The box-drawn `dcgmi diag` table(s); a table without its closing border is named partial."""
    reader = _TableReader()
    for raw in text.split("\n"):
        reader.feed(raw)
    if reader.open:
        reader.close("cut off (no closing border)")
    if not reader.tests:
        why = "; ".join(reader.problems) or "no test rows"
        return Unparseable.of(f"dcgmi diag table without any test result: {why}", text)
    ids = tuple(i.strip() for i in reader.meta.get("ids", "").split(",") if i.strip())
    return DcgmDiag("text", reader.meta.get("version"), reader.meta.get("driver"), run_level_of(text), ids,
                    tuple(reader.tests), "; ".join(reader.problems) or None, reader.tables)


# ---- JSON (-j) -----------------------------------------------------------------------------------

_ROOT_KEYS = ("DCGM Diagnostic", "DCGM GPU Diagnostic")


def _json_objects(text: str) -> tuple[list[dict[str, Any]], bool]:
    """Every top-level decodable JSON object in the text, and whether the first `{` failed to decode."""
    dec = json.JSONDecoder()
    found: list[dict[str, Any]] = []
    first_failed = False
    i = text.find("{")
    first = i
    while i >= 0:
        try:
            obj, end = dec.raw_decode(text, i)
        except ValueError:
            first_failed = first_failed or i == first
            i = text.find("{", i + 1)
            continue
        if isinstance(obj, dict):
            found.append(obj)
        i = text.find("{", end)
    return found, first_failed


def _strings(value: Any, key: str) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [str(value.get(key) or value.get("message") or json.dumps(value, sort_keys=True))]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v, key)]
    return []


def _result_gpus(r: dict[str, Any]) -> list[int]:
    if "entity_id" in r and str(r.get("entity_group", "GPU")).upper() == "GPU":
        return [int(r["entity_id"])] if str(r["entity_id"]).isdigit() else []
    return [int(n) for n in re.findall(r"\d+", str(r.get("gpu_ids") or r.get("gpu_id") or ""))]


def _json_test(t: dict[str, Any], category: str | None, table: int) -> DcgmTest:
    name = str(t.get("name") or t.get("test_name") or "?")
    gpus: list[GpuStatus] = []
    msgs: list[DcgmMessage] = []
    statuses: list[str] = []
    evidence: list[str] = []
    covers_all = False
    for r in t.get("results") or []:
        if not isinstance(r, dict):
            continue
        st = normalize_status(str(r.get("status", ""))) or "not_run"
        statuses.append(st)
        ids = _result_gpus(r)
        covers_all = covers_all or len(ids) != 1
        gpus.extend(GpuStatus(g, st) for g in ids if len(ids) == 1)
        for kind, key in (("warning", "warnings"), ("warning", "warning"), ("info", "info")):
            for s in _strings(r.get(key), "warning"):
                msgs.append(DcgmMessage(kind, s, gpus_named(s) or tuple(ids), (s,)))
        if st != "pass" or r.get("warnings"):
            evidence.append(json.dumps(r, sort_keys=True)[:400])
    summary = t.get("test_summary")
    if isinstance(summary, dict):
        sst = normalize_status(str(summary.get("status", "")))
        statuses.extend([sst] if sst else [])
        for s in _strings(summary.get("info"), "info"):
            msgs.append(DcgmMessage("info", s, gpus_named(s), (s,)))
        for s in _strings(summary.get("warnings"), "warning"):
            msgs.append(DcgmMessage("warning", s, gpus_named(s), (s,)))
    if not evidence:
        evidence.append(f"{name}: {', '.join(statuses) or 'no result'}")
    return DcgmTest(name, category, worst(statuses), tuple(gpus), covers_all and not gpus, tuple(msgs),
                    tuple(evidence), table)


def _doc_tests(root: dict[str, Any], table: int) -> list[DcgmTest]:
    tests: list[DcgmTest] = []
    cats = root.get("test_categories")
    for cat in cats if isinstance(cats, list) else []:
        if isinstance(cat, dict):
            for t in cat.get("tests") or []:
                if isinstance(t, dict):
                    tests.append(_json_test(t, cat.get("category"), table))
    for t in root.get("tests") or [] if isinstance(root.get("tests"), list) else []:
        if isinstance(t, dict):
            tests.append(_json_test(t, None, table))
    return tests


def _meta(doc: dict[str, Any], root: dict[str, Any], key: str) -> str | None:
    for d in (doc.get("metadata"), root, doc):
        if isinstance(d, dict) and isinstance(d.get(key), (str, int, float)):
            return str(d[key])
    return None


def _device_ids(doc: dict[str, Any], root: dict[str, Any]) -> tuple[str, ...]:
    ids: list[str] = []
    for g in doc.get("entity_groups") or []:
        if isinstance(g, dict) and str(g.get("entity_group", "")).upper() == "GPU":
            ids += [str(e.get("device_id")) for e in g.get("entities") or [] if isinstance(e, dict)]
    raw = root.get("GPU Device IDs") or doc.get("GPU Device IDs")
    if not ids and raw:
        ids = [str(x).strip() for x in (raw if isinstance(raw, list) else str(raw).split(","))]
    return tuple(ids)


def parse_json(text: str) -> DcgmDiag | Unparseable:
    """`dcgmi diag -j`: the whole document, or what a cut-off or fragmentary one still holds (partial)."""
    objects, first_failed = _json_objects(text)
    docs = [o for o in objects if any(k in o for k in _ROOT_KEYS)]
    if docs:
        doc = docs[0]
        root = next(doc[k] for k in _ROOT_KEYS if k in doc)
        root = root if isinstance(root, dict) else {}
        tests = _doc_tests(root, 0)
        rt = root.get("runtime_error") or doc.get("runtime_error")
        partial = "JSON text before the document did not decode" if first_failed else None
        if not tests and not rt:
            partial = partial or "the document holds no test results"
        return DcgmDiag("json", _meta(doc, root, "version"), _meta(doc, root, "Driver Version Detected"),
                        run_level_of(text), _device_ids(doc, root), tuple(tests), partial, len(docs),
                        str(rt) if rt else None)
    tests = []
    for i, o in enumerate(objects):
        if "test_categories" in o or isinstance(o.get("tests"), list):
            tests += _doc_tests(o, i)
        elif "name" in o and ("results" in o or "test_summary" in o):
            tests.append(_json_test(o, None, i))
    if not tests:
        return Unparseable.of("no dcgmi diag JSON document and no complete test object in it", text)
    why = "cut off: the JSON document did not decode" if first_failed else "a fragment"
    return DcgmDiag("json", None, None, run_level_of(text), (), tuple(tests),
                    f"{why}; {len(tests)} test object(s) without the enclosing 'DCGM Diagnostic' document", 1)


def parse_dcgm_diag(text: Any) -> DcgmDiag | Unparseable:
    """Text table or JSON, whichever the output is; anything else is Unparseable with why."""
    if not isinstance(text, str) or not is_probably_text(text):
        return Unparseable.of("empty or binary output", text if isinstance(text, str) else "")
    has_table = re.search(r"^\s*\+-{3,}|^\s*\|[^|\n]*\|", text, re.M) is not None
    starts_json = text.lstrip()[:1] in "{[\""
    if has_table and not starts_json:
        result = parse_text_tables(text)
        if not isinstance(result, Unparseable) or "{" not in text:
            return result
    if "{" in text:
        res = parse_json(text)
        if isinstance(res, Unparseable) and has_table:
            return parse_text_tables(text)
        return res
    err = re.search(r"^.*\b(?:Error|error)\b.*$", text, re.M)
    if err:
        return Unparseable.of(f"dcgmi printed an error instead of a diag table: {err.group(0).strip()[:160]}", text)
    return Unparseable.of("not dcgmi diag output (no result table, no JSON document)", text)
