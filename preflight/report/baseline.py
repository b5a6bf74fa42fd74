"""Drift against a known-good run: ``--baseline GOOD.json`` compares two JSON reports (docs/json-schema.md).

What counts as drift (per node, matched by name; per finding, matched by check id and subject):

- ``node_missing``: a node in the baseline that is not in the current run; ``node_new``: the reverse.
- ``node_unreachable``: reached in the baseline, not now; ``node_reachable``: the reverse.
- ``version_changed``: the observed value of a version/consistency check changed (driver, CUDA,
  NCCL, OFED, kernel, OS, VBIOS, HCA firmware, and any other ``*.consistent`` check such as the
  topology matrix, plus the GPU model), e.g. "driver 565.57.01 → 535.129.03 on gpu-03". This is drift
  even when both runs pass (the whole fleet moved off the known-good versions); re-baseline to accept it.
- ``nvlink_down``: fewer active NVLinks on a GPU (``nvlink.links.active``: ``18`` or ``"16 of 18"``).
- ``busbw_drop``: all-reduce bus bandwidth (``nccl.allreduce.busbw``, ``"470.7 / 468.2 GB/s at 2G
  (spread 0.5%)"``) down by more than ``bandwidth_drop_pct`` percent. The best of the runs is
  compared, so one noisy run does not count as drift (the check itself warns about that).
- ``regression``: any other finding that was pass (or skip) and is now warn/fail/error, or warn
  and now fail/error; ``fixed``: warn/fail/error then, pass now; ``improved``: fail/error then,
  warn now. A finding that is skipped now, or that exists in only one of the runs (a different
  ``--checks`` selection), is not compared.

One item per finding at most: a changed value, lost link or bandwidth drop is reported as that
kind (with the status change in its text); when the status got better at the same time (the odd
node came back to the fleet's driver) it is reported as ``fixed``.

Exit code policy (``Drift.exit_code``), separate from the run's own 0/1/2/3:

- ``0``: no drift.
- ``1``: only improvements (``fixed``, ``improved``, ``node_reachable``) and new nodes.
- ``4``: at least one regression (``node_missing``, ``node_unreachable``, ``version_changed``,
  ``nvlink_down``, ``busbw_drop``, ``regression``).

The baseline is user input: :func:`load_report` turns a missing, unreadable, non-JSON or
wrong-format file into a :class:`BaselineError` naming the path and the problem, and
:func:`compare` raises it for a document that is not a preflight report.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCHEMA_ID = "preflight-report"
SUPPORTED_SCHEMA_VERSIONS = (1,)

EXIT_NO_DRIFT = 0
EXIT_IMPROVED = 1
EXIT_REGRESSED = 4

REGRESSION_KINDS = ("node_missing", "node_unreachable", "version_changed", "nvlink_down", "busbw_drop", "regression")
IMPROVEMENT_KINDS = ("node_new", "node_reachable", "fixed", "improved")

VERSION_LABELS = {
    "versions.driver.consistent": "driver",
    "versions.cuda.consistent": "CUDA",
    "versions.nccl.consistent": "NCCL",
    "versions.ofed.consistent": "OFED",
    "versions.kernel.consistent": "kernel",
    "versions.os.consistent": "OS",
    "versions.vbios.consistent": "VBIOS",
    "versions.hca_firmware.consistent": "HCA firmware",
    "topology.consistent": "GPU topology",
    "gpu.model": "GPU model",
}
NVLINK_CHECK = "nvlink.links.active"
BUSBW_CHECK = "nccl.allreduce.busbw"

_STATUSES = ("pass", "skip", "accepted", "warn", "fail", "error")
_BADNESS = {"pass": 0, "skip": 0, "accepted": 0, "warn": 1, "fail": 2, "error": 2}


class BaselineError(ValueError):
    """A baseline (or current) report that cannot be compared: missing, unreadable, not JSON, wrong format."""


@dataclass(frozen=True)
class DriftItem:
    kind: str
    node: str | None
    check: str | None
    subject: str | None
    before: Any
    after: Any
    text: str

    @property
    def is_regression(self) -> bool:
        return self.kind in REGRESSION_KINDS

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "node": self.node, "check": self.check, "subject": self.subject,
                "before": self.before, "after": self.after, "text": self.text,
                "regression": self.is_regression}


@dataclass(frozen=True)
class Drift:
    items: tuple[DriftItem, ...] = ()
    bandwidth_drop_pct: float = 10.0
    baseline_generated: float | None = None

    @property
    def regressions(self) -> list[DriftItem]:
        return [i for i in self.items if i.is_regression]

    @property
    def improvements(self) -> list[DriftItem]:
        return [i for i in self.items if not i.is_regression]

    @property
    def exit_code(self) -> int:
        """0 no drift; 1 only improvements and new nodes; 4 any regression (see the module docstring)."""
        if self.regressions:
            return EXIT_REGRESSED
        return EXIT_IMPROVED if self.items else EXIT_NO_DRIFT

    def lines(self) -> list[str]:
        """One plain-text line per item, regressions first."""
        ordered = self.regressions + self.improvements
        return [f"{'REGRESSION' if i.is_regression else 'improved'} [{i.kind}] {i.text}" for i in ordered]

    def to_dict(self) -> dict[str, Any]:
        return {
            "exit_code": self.exit_code,
            "bandwidth_drop_pct": self.bandwidth_drop_pct,
            "baseline_generated": self.baseline_generated,
            "regressions": len(self.regressions),
            "improvements": len(self.improvements),
            "items": [i.to_dict() for i in self.items],
        }


# ---------------------------------------------------------------- reading and checking the documents


def validate_report(doc: Any, *, label: str = "baseline") -> dict[str, Any]:
    """`doc` if it is a preflight JSON report this module can compare, else BaselineError naming `label`."""
    if not isinstance(doc, dict):
        raise BaselineError(f"{label}: not a preflight JSON report (top level is {type(doc).__name__}, not an object)")
    if "format" in doc and "nodes" in doc and "schema" not in doc:
        raise BaselineError(f"{label}: this is a saved bundle, not a JSON report; make one with "
                            "`preflight replay DIR --json GOOD.json` and use that as the baseline")
    if doc.get("schema") != SCHEMA_ID:
        raise BaselineError(f"{label}: not a preflight JSON report (schema is {doc.get('schema')!r}, "
                            f"expected {SCHEMA_ID!r}; write one with --json)")
    version = doc.get("schema_version")
    if version not in SUPPORTED_SCHEMA_VERSIONS:
        raise BaselineError(f"{label}: report schema_version {version!r} is not one this preflight reads "
                            f"({', '.join(map(str, SUPPORTED_SCHEMA_VERSIONS))})")
    nodes = doc.get("nodes")
    if not isinstance(nodes, list):
        raise BaselineError(f"{label}: 'nodes' is missing or not a list")
    for i, n in enumerate(nodes):
        where = f"{label}: nodes[{i}]"
        if not isinstance(n, dict) or not isinstance(n.get("name"), str) or not n["name"]:
            raise BaselineError(f"{where}: not a node object with a name")
        if not isinstance(n.get("outcome", "ok"), str):
            raise BaselineError(f"{where} ({n['name']}): 'outcome' is not a string")
        _validate_findings(n.get("findings", []), f"{where} ({n['name']}).findings")
    _validate_findings(doc.get("fleet_findings", []), f"{label}: fleet_findings")
    return doc


def _validate_findings(findings: Any, where: str) -> None:
    if not isinstance(findings, list):
        raise BaselineError(f"{where}: not a list")
    for j, f in enumerate(findings):
        if not isinstance(f, dict) or not isinstance(f.get("check"), str):
            raise BaselineError(f"{where}[{j}]: not a finding object with a check id")
        if f.get("status") not in _STATUSES:
            raise BaselineError(f"{where}[{j}] ({f['check']}): status {f.get('status')!r} is not one of "
                                f"{', '.join(_STATUSES)}")


def load_report(path: str | Path, *, label: str | None = None) -> dict[str, Any]:
    """Read and check a JSON report file (e.g. the ``--baseline`` argument); BaselineError says what is wrong."""
    p = Path(path)
    name = label or str(p)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BaselineError(f"{name}: no such file (expected a JSON report written by `preflight ... --json FILE`)") from None
    except IsADirectoryError:
        raise BaselineError(f"{name}: is a directory, not a JSON report (a saved bundle? run `preflight replay "
                            f"{p} --json GOOD.json` and pass GOOD.json)") from None
    except UnicodeDecodeError as exc:
        raise BaselineError(f"{name}: not a text file ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise BaselineError(f"{name}: cannot read: {exc.strerror or exc}") from None
    if not text.strip():
        raise BaselineError(f"{name}: the file is empty")
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BaselineError(f"{name}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    return validate_report(doc, label=name)


# ---------------------------------------------------------------- parsing observed values


def nvlink_active(observed: Any) -> int | None:
    """Active NVLinks from ``18`` or ``"16 of 18"`` (None if it does not say)."""
    if isinstance(observed, bool):
        return None
    if isinstance(observed, int):
        return observed
    if isinstance(observed, float) and observed.is_integer():
        return int(observed)
    if isinstance(observed, str):
        m = re.match(r"\s*(\d+)(?:\s+of\s+\d+)?\b", observed)
        if m:
            return int(m.group(1))
    return None


def busbw_gbps(observed: Any) -> float | None:
    """The best bus bandwidth in GB/s from ``"470.7 / 468.2 GB/s at 2G (spread 0.5%)"`` (None if it does not say)."""
    if isinstance(observed, (int, float)) and not isinstance(observed, bool):
        return float(observed)
    if not isinstance(observed, str):
        return None
    head = observed.split("GB/s", 1)[0] if "GB/s" in observed else None
    if head is None:
        return None
    values = [float(v) for v in re.findall(r"\d+(?:\.\d+)?", head)]
    return max(values) if values else None


# ---------------------------------------------------------------- comparing


def _key_findings(findings: Iterable[dict[str, Any]]) -> dict[tuple[str, str | None, int], dict[str, Any]]:
    out: dict[tuple[str, str | None, int], dict[str, Any]] = {}
    seen: dict[tuple[str, str | None], int] = {}
    for f in findings:
        base = (f["check"], f.get("subject"))
        k = seen.get(base, 0)
        seen[base] = k + 1
        out[(base[0], base[1], k)] = f
    return out


def _short(value: Any, limit: int = 80) -> str:
    text = str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _pairs_diff(before: str, after: str) -> str | None:
    """For "a:x;b:y" lists (the topology matrix): only the entries that changed, "0-5 NV18→NV16, ..."."""
    def parse(s: str) -> dict[str, str] | None:
        parts = [p for p in s.split(";") if p]
        if not parts or not all(":" in p for p in parts):
            return None
        return dict(p.split(":", 1) for p in parts)
    b, a = parse(before), parse(after)
    if b is None or a is None:
        return None
    changed = [f"{k} {b.get(k, '-')}→{a.get(k, '-')}" for k in list(b) + [k for k in a if k not in b] if b.get(k) != a.get(k)]
    if not changed:
        return None
    more = f" (+{len(changed) - 6} more)" if len(changed) > 6 else ""
    return ", ".join(changed[:6]) + more


def _status_note(sb: str, sa: str) -> str:
    return "" if sb == sa else f" (status {sb} → {sa})"


def _compare_finding(node: str | None, b: dict[str, Any], a: dict[str, Any], pct: float) -> DriftItem | None:
    check, subject = a["check"], a.get("subject")
    sb, sa = b["status"], a["status"]
    if sa in ("skip", "accepted"):
        return None  # not judged now (check not applicable, or its gap accepted): nothing to compare
    worse = _BADNESS[sa] > _BADNESS[sb]
    better = _BADNESS[sa] < _BADNESS[sb]
    where = node or "the fleet"
    subj = f"{subject} " if subject else ""
    ob, oa = b.get("observed"), a.get("observed")
    note = _status_note(sb, sa)

    specific: tuple[str, str] | None = None
    if check in VERSION_LABELS or check.endswith(".consistent"):
        if ob is not None and oa is not None and str(ob) != str(oa):
            label = VERSION_LABELS.get(check, check)
            diff = _pairs_diff(str(ob), str(oa))
            change = diff if diff else f"{_short(ob)} → {_short(oa)}"
            specific = ("version_changed", f"{label} {change} on {where}{note}")
    elif check == NVLINK_CHECK:
        nb, na = nvlink_active(ob), nvlink_active(oa)
        if nb is not None and na is not None and na < nb:
            specific = ("nvlink_down", f"{subj}active NVLinks {nb} → {na} on {where} (observed {_short(oa)}){note}")
    elif check == BUSBW_CHECK:
        bb, ba = busbw_gbps(ob), busbw_gbps(oa)
        if bb and ba is not None:
            drop = (bb - ba) / bb * 100
            if drop > pct:
                specific = ("busbw_drop", f"all-reduce busbw {bb:.1f} → {ba:.1f} GB/s on {where} "
                                          f"(down {drop:.1f}%, more than {pct:g}%){note}")
    if better:
        kind = "fixed" if sa == "pass" else "improved"
        if specific:
            return DriftItem(kind, node, check, subject, ob, oa, specific[1])
        return DriftItem(kind, node, check, subject, sb, sa, f"{check} {subj}on {where}: {sb} → {sa}")
    if specific:
        kind, text = specific
        return DriftItem(kind, node, check, subject, ob, oa, text)
    if worse:
        msg = a.get("msg") or ""
        return DriftItem("regression", node, check, subject, sb, sa,
                         f"{check} {subj}on {where}: {sb} → {sa}" + (f": {_short(msg, 160)}" if msg else ""))
    return None


def _compare_findings(node: str | None, before: Iterable[dict[str, Any]], after: Iterable[dict[str, Any]],
                      pct: float) -> list[DriftItem]:
    kb, ka = _key_findings(before), _key_findings(after)
    out = []
    for key, a in ka.items():
        b = kb.get(key)
        if b is None:
            continue
        item = _compare_finding(node, b, a, pct)
        if item is not None:
            out.append(item)
    return out


def compare(baseline: dict[str, Any], current: dict[str, Any], *, bandwidth_drop_pct: float = 10.0) -> Drift:
    """Drift of `current` from `baseline`, two JSON report documents (``report_dict`` output or ``--json`` files).

    Raises BaselineError when either is not a preflight report (see :func:`validate_report`).
    """
    validate_report(baseline, label="baseline")
    validate_report(current, label="current report")
    if not bandwidth_drop_pct >= 0:
        raise ValueError(f"bandwidth_drop_pct must be >= 0, not {bandwidth_drop_pct!r}")
    pct = float(bandwidth_drop_pct)
    items: list[DriftItem] = []
    before = {n["name"]: n for n in baseline["nodes"]}
    after = {n["name"]: n for n in current["nodes"]}
    for name, b in before.items():
        a = after.get(name)
        b_ok = b.get("outcome", "ok") == "ok"
        if a is None:
            items.append(DriftItem("node_missing", name, None, None, b.get("outcome", "ok"), None,
                                   f"{name} was in the baseline and is not in this run"))
            continue
        a_ok = a.get("outcome", "ok") == "ok"
        if b_ok and not a_ok:
            msg = a.get("message") or ""
            items.append(DriftItem("node_unreachable", name, None, None, "ok", a.get("outcome"),
                                   f"{name} was reached in the baseline and is {a.get('outcome')} now"
                                   + (f": {_short(msg, 160)}" if msg else "")))
        elif a_ok and not b_ok:
            items.append(DriftItem("node_reachable", name, None, None, b.get("outcome"), "ok",
                                   f"{name} was {b.get('outcome')} in the baseline and is reached now"))
        elif a_ok and b_ok:
            items += _compare_findings(name, b.get("findings", []), a.get("findings", []), pct)
    for name, a in after.items():
        if name not in before:
            items.append(DriftItem("node_new", name, None, None, None, a.get("outcome", "ok"),
                                   f"{name} is new (not in the baseline)"))
    items += _compare_findings(None, baseline.get("fleet_findings", []), current.get("fleet_findings", []), pct)
    generated = baseline.get("generated")
    return Drift(items=tuple(items), bandwidth_drop_pct=pct,
                 baseline_generated=float(generated) if isinstance(generated, (int, float)) else None)
