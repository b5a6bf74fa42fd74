"""PyTorch NCCL flight-recorder dumps: per rank the last collective entered and completed, and the first
mismatch across ranks. Three inputs:

- the unpickled dict as text (the tutorial's form: Python literals, tuples, `null`/`true`, `...` elisions),
- a real pickle dump, read with a restricted Unpickler that builds only dict/list/str/int/float/bool/None/tuple,
- `torchfrtrace` output ('Not all ranks joining collective N at entry M', 'Collective N at entry M errors').
"""

from __future__ import annotations

import ast
import io
import json
import pickle
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from preflight.hang.lines import Evidence, evidence, split_lines
from preflight.parse.common import Unparseable
from preflight.textsafe import clean, clean_text

MAX_PICKLE_BYTES = 256 * 1024 * 1024
_ALLOWED = {"dict", "list", "str", "int", "float", "bool", "tuple", "NoneType"}


class _SafeUnpickler(pickle.Unpickler):
    """Refuses every global except the plain builtin containers and scalars (no classes, no callables)."""

    def find_class(self, module: str, name: str) -> Any:
        if module in ("builtins", "__builtin__") and name in _ALLOWED:
            return {"NoneType": type(None)}.get(name) or getattr(__import__("builtins"), name)
        raise pickle.UnpicklingError(f"refused global {module}.{name} (flight-recorder dumps hold only plain data)")


def safe_unpickle(data: bytes) -> Any | Unparseable:
    if len(data) > MAX_PICKLE_BYTES:
        return Unparseable.of(f"pickle larger than {MAX_PICKLE_BYTES} bytes", "")
    try:
        return _SafeUnpickler(io.BytesIO(data)).load()
    except Exception as e:
        return Unparseable.of(f"not a plain-data pickle: {type(e).__name__}: {e}", "")


@dataclass(frozen=True)
class FrEntry:
    record_id: int | None
    pg_id: str
    pg_desc: str | None
    collective_seq_id: int | None
    p2p_seq_id: int | None
    is_p2p: bool
    profiling_name: str  # 'nccl:all_reduce'
    state: str  # scheduled | started | completed
    input_sizes: str  # repr of the list, comparable across ranks
    output_sizes: str
    input_dtypes: str
    time_created_ns: int | None


@dataclass(frozen=True)
class FrDump:
    """One rank's dump. `rank` from the dump's 'rank' key or the file name's trailing number (trace_3)."""

    rank: int | None
    version: str | None
    entries: tuple[FrEntry, ...]
    pg_ranks: dict[str, tuple[int, ...]]  # pg id -> ranks, from pg_config
    pg_status: dict[str, dict[str, int]]
    source: str = ""

    def collectives(self, pg: str | None = None) -> tuple[FrEntry, ...]:
        return tuple(e for e in self.entries if not e.is_p2p and e.collective_seq_id is not None
                     and (pg is None or e.pg_id == pg))

    @property
    def last_entered(self) -> FrEntry | None:
        c = self.collectives()
        return max(c, key=lambda e: e.collective_seq_id or 0) if c else None

    @property
    def last_completed(self) -> FrEntry | None:
        c = [e for e in self.collectives() if e.state == "completed"]
        return max(c, key=lambda e: e.collective_seq_id or 0) if c else None


@dataclass(frozen=True)
class FrFinding:
    """A cross-rank disagreement: kind 'missing' (ranks absent from a collective) or 'mismatch' (op/size/dtype)."""

    kind: str
    pg: str
    seq: int
    op: str | None
    ranks: tuple[int, ...]  # the culprits: missing ranks, or the minority side of a mismatch
    detail: str
    evidence: tuple[Evidence, ...] = ()
    state: str | None = None


@dataclass(frozen=True)
class FrTrace:
    """torchfrtrace's printed findings."""

    findings: tuple[FrFinding, ...]
    source: str = ""


# ---------------------------------------------------------------- dict dumps

def _s(v: Any) -> str:
    return "" if v is None else str(v)


def _int_or_none(v: Any) -> int | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        return v
    if isinstance(v, str) and re.fullmatch(r"-?\d+", v.strip()):
        return int(v)
    return None


def _ranks_list(v: Any) -> tuple[int, ...]:
    if isinstance(v, (list, tuple)):
        return tuple(x for x in (_int_or_none(i) for i in v) if x is not None)
    return tuple(int(x) for x in re.findall(r"-?\d+", _s(v)))


def dump_from_obj(obj: Any, source: str = "") -> FrDump | Unparseable:
    """A dump from the unpickled object; Unparseable unless it is a dict with an 'entries' list."""
    if not isinstance(obj, dict) or not isinstance(obj.get("entries"), list):
        return Unparseable.of("not a flight-recorder dump (no 'entries' list)", repr(obj)[:200])
    entries = []
    for e in obj["entries"]:
        if not isinstance(e, dict):
            continue
        pg = e.get("process_group")
        pg_desc = _s(pg[1]) if isinstance(pg, (list, tuple)) and len(pg) > 1 else None
        entries.append(FrEntry(
            record_id=_int_or_none(e.get("record_id")), pg_id=_s(e.get("pg_id")), pg_desc=pg_desc,
            collective_seq_id=_int_or_none(e.get("collective_seq_id")), p2p_seq_id=_int_or_none(e.get("p2p_seq_id")),
            is_p2p=bool(e.get("is_p2p")), profiling_name=_s(e.get("profiling_name")), state=_s(e.get("state")),
            input_sizes=repr(e.get("input_sizes")), output_sizes=repr(e.get("output_sizes")),
            input_dtypes=repr(e.get("input_dtypes")), time_created_ns=_int_or_none(e.get("time_created_ns"))))
    cfg = obj.get("pg_config")
    cfg = cfg if isinstance(cfg, dict) else {}
    pg_ranks = {str(k): _ranks_list(v.get("ranks")) for k, v in cfg.items() if isinstance(v, dict)}
    st = obj.get("pg_status")
    st = st if isinstance(st, dict) else {}
    pg_status = {str(k): {kk: vv for kk, vv in v.items() if isinstance(vv, int)} for k, v in st.items() if isinstance(v, dict)}
    rank = _int_or_none(obj.get("rank"))
    if rank is None and source:
        m = re.search(r"(\d+)(?:\.\w+)?$", Path(source).name)
        rank = int(m.group(1)) if m else None
    return FrDump(rank, _s(obj.get("version")) or None, tuple(entries), pg_ranks, pg_status, source)


_LITERAL_TOKENS = re.compile(r'("(?:[^"\\\n]|\\.)*"|\'(?:[^\'\\\n]|\\.)*\')|\bnull\b|\btrue\b|\bfalse\b')


def literal_obj(text: str) -> Any | Unparseable:
    """The object a dump printed as text stands for (JSON or Python literals, `...` elisions dropped); never
    evaluates code. Also how the simulated fleet turns a recorded text dump back into the dict PyTorch pickles."""
    body = _LITERAL_TOKENS.sub(lambda m: m.group(1) or {"null": "None", "true": "True", "false": "False"}[m.group(0)], text)
    try:
        return _drop_ellipsis(ast.literal_eval(body.strip()))
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError) as e:
        return Unparseable.of(f"flight-recorder text is not a literal dict: {type(e).__name__}", text)


def parse_dump_text(text: str, source: str = "") -> FrDump | Unparseable:
    """The unpickled dump printed as text (JSON or Python literals, `...` elisions allowed); never evaluates code."""
    if not isinstance(text, str) or "entries" not in text:
        return Unparseable.of("not a flight-recorder dump (no 'entries')", text if isinstance(text, str) else "")
    obj = literal_obj(text)
    return obj if isinstance(obj, Unparseable) else dump_from_obj(obj, source)


def parse_dump_bytes(data: bytes, source: str = "") -> FrDump | Unparseable:
    """A dump as its file holds it: a pickle (what DebugInfoWriter writes, read with the restricted unpickler),
    JSON (`_dump_nccl_trace_json`'s form, which leaves 'entries' out when there are none) or the text form.
    Its strings are node text: made inert and scrubbed like any other. Never raises."""
    try:
        if data[:1] == b"\x80":
            obj = safe_unpickle(data)
            return obj if isinstance(obj, Unparseable) else dump_from_obj(clean(obj), source)
        text = data.decode("utf-8", "replace")
        if text.lstrip()[:1] == "{":
            try:
                obj = json.loads(text)
            except ValueError:
                obj = None  # the text form (tuples, `...`): below
            if isinstance(obj, dict):
                if "entries" not in obj and "version" in obj:
                    obj = {**obj, "entries": []}
                return dump_from_obj(clean(obj), source)
        return parse_dump_text(clean_text(text), source)
    except (RecursionError, MemoryError) as e:  # nesting deeper than any dump has
        return Unparseable.of(f"flight-recorder dump too deeply nested: {type(e).__name__}", "")


def _drop_ellipsis(obj: Any, depth: int = 0) -> Any:
    if depth > 50:
        return obj
    if isinstance(obj, list):
        return [_drop_ellipsis(x, depth + 1) for x in obj if x is not Ellipsis]
    if isinstance(obj, dict):
        return {k: _drop_ellipsis(v, depth + 1) for k, v in obj.items() if v is not Ellipsis}
    return obj


def load_dump(path: Path) -> FrDump | Unparseable:
    """A pickle dump file (restricted unpickling), its JSON or its text form."""
    try:
        data = path.read_bytes()
    except OSError as e:
        return Unparseable.of(f"cannot read {path}: {e}", "")
    return parse_dump_bytes(data, path.name)


def first_mismatch(dumps: list[FrDump]) -> FrFinding | None:
    """The lowest collective sequence number (per process group) where ranks disagree: a rank missing from the
    collective, or a different op / input sizes / dtypes. Only sequence numbers every rank's ring buffer covers count."""
    by_pg: dict[str, dict[int, dict[int, FrEntry]]] = defaultdict(lambda: defaultdict(dict))
    lo: dict[str, dict[int, int]] = defaultdict(dict)
    for d in dumps:
        if d.rank is None:
            continue
        for e in d.collectives():
            seq = e.collective_seq_id or 0
            by_pg[e.pg_id][seq][d.rank] = e
            lo[e.pg_id][d.rank] = min(lo[e.pg_id].get(d.rank, seq), seq)
    findings: list[FrFinding] = []
    for pg, seqs in by_pg.items():
        members = set(lo[pg])
        for d in dumps:  # ranks of this pg that have a dump but no collective in it at all
            if d.rank is not None and pg in d.pg_ranks and d.rank in d.pg_ranks[pg]:
                members.add(d.rank)
        start = max(lo[pg].values())
        for seq in sorted(s for s in seqs if s >= start):
            got = seqs[seq]
            missing = tuple(sorted(members - set(got)))
            sample = next(iter(got.values()))
            if missing:
                findings.append(FrFinding("missing", pg, seq, sample.profiling_name, missing,
                                          f"ranks {sorted(got)} entered {sample.profiling_name} #{seq}; "
                                          f"rank(s) {list(missing)} never did", state=sample.state))
                break
            for attr in ("profiling_name", "input_sizes", "input_dtypes"):
                vals: dict[str, list[int]] = defaultdict(list)
                for r, e in got.items():
                    vals[getattr(e, attr)].append(r)
                if len(vals) > 1:
                    minority = min(vals.values(), key=len)
                    findings.append(FrFinding("mismatch", pg, seq, sample.profiling_name, tuple(sorted(minority)),
                                              f"{attr} differ at #{seq}: " + "; ".join(f"{v} on ranks {sorted(r)}" for v, r in vals.items())))
                    break
            else:
                continue
            break
    return min(findings, key=lambda f: f.seq) if findings else None


# ---------------------------------------------------------------- torchfrtrace text

_FT_MISSING = re.compile(r"Not all ranks joining collective (?P<seq>\d+) at entry (?P<entry>\d+)")
_FT_ERRORS = re.compile(r"Collective (?P<seq>\d+) at entry (?P<entry>\d+) errors")
_FT_FIELD = re.compile(r"^\s*(?P<k>group info|collective|missing ranks|input sizes|output sizes|expected ranks|"
                       r"collective state|error msg)\s*:\s*(?P<v>.*)$")
_CULPRIT = re.compile(r"Culprit rank (\d+)")
_ERRTYPE = re.compile(r"Error type:\s*(\w+)")


def parse_frtrace(text: str, source: str = "") -> FrTrace | Unparseable:
    """torchfrtrace / fr_trace.py findings. Never raises on bad input."""
    if not isinstance(text, str) or not (_FT_MISSING.search(text) or _FT_ERRORS.search(text)):
        return Unparseable.of("no torchfrtrace findings ('Not all ranks joining collective ...')",
                              text if isinstance(text, str) else "")
    findings: list[FrFinding] = []
    cur: dict[str, Any] | None = None

    def flush() -> None:
        if cur is None:
            return
        f = cur["fields"]
        kind = cur["kind"]
        if kind == "missing":
            ranks = _ranks_list(f.get("missing ranks", ""))
        else:
            ranks = tuple(int(x) for x in _CULPRIT.findall(f.get("error msg", "")))
        et = _ERRTYPE.search(f.get("error msg", ""))
        detail = cur["head"].text + (f"; {et.group(1)}" if et else "")
        findings.append(FrFinding(kind, f.get("group info", "").split(":")[0].strip() or "?", cur["seq"],
                                  f.get("collective") or None, ranks, detail, tuple(cur["evs"]), f.get("collective state")))

    for lineno, line in enumerate(split_lines(text), 1):
        m = _FT_MISSING.search(line) or _FT_ERRORS.search(line)
        if m:
            flush()
            head = evidence(source, lineno, line)
            cur = {"kind": "missing" if "Not all ranks" in line else "mismatch", "seq": int(m.group("seq")),
                   "head": head, "fields": {}, "evs": [head]}
            continue
        if cur is not None:
            fm = _FT_FIELD.match(line)
            if fm:
                cur["fields"].setdefault(fm.group("k"), fm.group("v").strip())
                if fm.group("k") in ("missing ranks", "collective", "error msg", "collective state"):
                    cur["evs"].append(evidence(source, lineno, line))
    flush()
    return FrTrace(tuple(findings), source)
