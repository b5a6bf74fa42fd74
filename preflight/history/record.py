"""What a run leaves in the history: one row per node, one per node per check that did not pass, key values.

`run_rows` is pure (a judged report and its facts -> rows); `record_run` / `record_hang` write them in one
transaction. The key observed values come from the node facts (busbw at the largest message size, NVLink
and IB link counts, IB link_downed, versions, GPU count) and, for each check that did not pass, from its
worst finding's `observed`.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from preflight import __version__
from preflight.results import Finding, RunReport, Status

OBSERVED_MAX = 200


@dataclass
class RunRows:
    """The rows of one run, before they are written."""

    run: dict[str, Any]
    nodes: list[tuple[str, str, str, str]] = field(default_factory=list)  # node, status, outcome, reason
    checks: list[tuple[str, str, str, str | None, str | None, str]] = field(default_factory=list)
    metrics: list[tuple[str, str, float | None, str | None]] = field(default_factory=list)
    hang: list[tuple[str, str, str, float | None]] = field(default_factory=list)  # node, cause, kind, score


def _observed(value: Any) -> str | None:
    if value is None:
        return None
    try:
        text = json.dumps(value, default=str, ensure_ascii=False)
    except (TypeError, ValueError):
        text = json.dumps(str(value))
    return text if len(text) <= OBSERVED_MAX else text[: OBSERVED_MAX - 1] + "…"


def _check_rows(name: str, findings: Iterable[Finding]) -> list[tuple[str, str, str, str | None, str | None, str]]:
    """One row per check on this node that did not pass: its worst finding's status, subject, observed, msg."""
    worst: dict[str, Finding] = {}
    for f in findings:
        have = worst.get(f.check)
        if have is None or f.status.rank > have.status.rank:
            worst[f.check] = f
    return [(name, check, f.status.value, f.subject, _observed(f.observed), f.msg)
            for check, f in worst.items() if f.status != Status.PASS]


def key_values(facts: Any) -> dict[str, float | str]:
    """The values worth a trend, from one node's facts (missing ones are left out)."""
    out: dict[str, float | str] = {}
    if facts is None:
        return out
    runs = [r for r in getattr(facts, "nccl_tests", None) or () if _busbw(r) is not None]
    if runs:
        out["busbw_gbps"] = float(min(_busbw(r) or 0.0 for r in runs))
    nvlink = getattr(facts, "nvlink", None)
    if nvlink:
        out["nvlink_active"] = float(sum(n.active for n in nvlink))
        out["nvlink_total"] = float(sum(n.total for n in nvlink))
    ib = getattr(facts, "ib", None)
    if ib:
        out["ib_active"] = float(sum(1 for p in ib if (p.state or "").lower().startswith("active")))
        out["ib_ports"] = float(len(ib))
        downed = [p.counters.get("link_downed") for p in ib if isinstance(p.counters.get("link_downed"), int)]
        if downed:
            out["ib_link_downed"] = float(sum(downed))
    gpus = getattr(facts, "gpus", None)
    if gpus is not None:
        out["gpus"] = float(len(gpus))
    versions = getattr(facts, "versions", None)
    for key in ("driver", "cuda", "nccl", "kernel"):
        value = getattr(versions, key, None) if versions is not None else None
        if value:
            out[key] = str(value)
    return out


def _busbw(run: Any) -> float | None:
    try:
        value = run.busbw_at_largest()
    except Exception:
        return None
    if isinstance(value, tuple) and len(value) == 2:  # (message size, busbw GB/s)
        value = value[1]
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def run_rows(report: RunReport, facts: Mapping[str, Any] | None = None, *, kind: str = "run",
             source: str | None = None, label: str | None = None, exit_code: int | None = None,
             at: float | None = None) -> RunRows:
    """The rows a judged run leaves (pure). `facts`: node name -> NodeFacts (key values), may be empty."""
    facts = facts or {}
    rows = RunRows(run={"at": at if at is not None else float(report.meta.get("judged") or time.time()),
                        "kind": kind, "source": source, "label": label,
                        "tool_version": str(report.meta.get("tool_version") or __version__), "exit_code": exit_code,
                        "checks": json.dumps(list(report.meta.get("checks") or []))})
    for n in report.nodes:
        rows.nodes.append((n.name, n.status.value, n.outcome, n.reason))
        rows.checks.extend(_check_rows(n.name, n.findings))
        for key, value in key_values(facts.get(n.name)).items():
            rows.metrics.append((n.name, key, value, None) if isinstance(value, float) else (n.name, key, None, value))
    return rows


def hang_rows(verdict: Any, *, source: str | None = None, exit_code: int | None = None,
              at: float | None = None) -> RunRows:
    """A `preflight hang` verdict: every node a cause names (causes naming no node are left out). A gather is no
    health run: it adds no node_runs rows, so it does not count towards a node's last n runs."""
    rows = RunRows(run={"at": at if at is not None else time.time(), "kind": "hang", "source": source,
                        "label": "hang", "tool_version": __version__, "exit_code": exit_code, "checks": "[]"})
    seen: set[tuple[str, str]] = set()
    for cause in getattr(verdict, "causes", ()) or ():
        node = getattr(cause, "node", None)
        title = str(getattr(cause, "title", "") or getattr(cause, "kind", "") or "hang cause")
        if node and (node, title) not in seen:
            seen.add((node, title))
            rows.hang.append((str(node), title, str(getattr(cause, "kind", "") or ""),
                              float(getattr(cause, "score", 0.0) or 0.0)))
    return rows


def write(conn: sqlite3.Connection, rows: RunRows) -> int:
    """Write one run's rows in one transaction; the new run's id."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        r = rows.run
        cur = conn.execute("INSERT INTO runs (at, kind, source, label, tool_version, exit_code, checks) "
                           "VALUES (?, ?, ?, ?, ?, ?, ?)",
                           (r["at"], r["kind"], r["source"], r["label"], r["tool_version"], r["exit_code"], r["checks"]))
        run_id = int(cur.lastrowid or 0)
        conn.executemany("INSERT INTO node_runs (node, run_id, status, outcome, reason) VALUES (?, ?, ?, ?, ?)",
                         [(n, run_id, s, o, why) for n, s, o, why in rows.nodes])
        conn.executemany("INSERT INTO check_results (node, check_id, run_id, status, subject, observed, reason) "
                         "VALUES (?, ?, ?, ?, ?, ?, ?)", [(n, c, run_id, *rest) for n, c, *rest in rows.checks])
        conn.executemany("INSERT INTO metrics (node, key, run_id, num, text) VALUES (?, ?, ?, ?, ?)",
                         [(n, k, run_id, num, text) for n, k, num, text in rows.metrics])
        conn.executemany("INSERT INTO hang_nodes (node, run_id, cause, kind, score) VALUES (?, ?, ?, ?, ?)",
                         [(n, run_id, c, k, s) for n, c, k, s in rows.hang])
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return run_id
