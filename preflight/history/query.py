"""Reading the history: repeat offenders and one node's trends (pure reads, no output formatting)."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from preflight.history.store import connect

FAILING = ("fail", "error")  # a node's verdict that counts as failing a run (error: could not judge / unreachable)
FINDING_STATUSES = ("fail", "warn", "error")
LINK_KEYS = ("nvlink_active", "ib_active")


@contextmanager
def _conn(db: sqlite3.Connection | str | os.PathLike[str]) -> Iterator[sqlite3.Connection]:
    if isinstance(db, sqlite3.Connection):
        yield db
        return
    conn = connect(db, create=False)
    try:
        yield conn
    finally:
        conn.close()


def repeat_offenders(db: sqlite3.Connection | str | os.PathLike[str], k: int = 3, n: int = 5) -> list[tuple[str, str]]:
    """(node, why) for every node whose verdict failed in >= k of its last n runs, or that one of the last n
    `preflight hang` verdicts named; worst first. `db`: an open history or its path."""
    if k < 1 or n < 1 or k > n:
        raise ValueError(f"need 1 <= k <= n (got k={k}, n={n})")
    with _conn(db) as conn:
        bad = conn.execute(
            "WITH recent AS (SELECT node, status, ROW_NUMBER() OVER (PARTITION BY node ORDER BY run_id DESC) AS rn "
            "FROM node_runs) SELECT node, SUM(status IN (?, ?)) AS bad, COUNT(*) FROM recent WHERE rn <= ? "
            "GROUP BY node HAVING bad >= ?", (*FAILING, n, k)).fetchall()
        hung = conn.execute(
            "SELECT node, COUNT(DISTINCT run_id), MAX(run_id) FROM hang_nodes WHERE run_id IN "
            "(SELECT id FROM runs WHERE kind = 'hang' ORDER BY id DESC LIMIT ?) GROUP BY node", (n,)).fetchall()
        why: dict[str, list[str]] = {}
        score: dict[str, float] = {}
        for node, count, seen in bad:
            last = conn.execute("SELECT reason FROM node_runs WHERE node = ? AND status IN (?, ?) "
                                "ORDER BY run_id DESC LIMIT 1", (node, *FAILING)).fetchone()
            why.setdefault(node, []).append(f"failed {count} of its last {seen} runs"
                                            + (f" (last: {last[0]})" if last and last[0] else ""))
            score[node] = score.get(node, 0.0) + count / max(seen, 1)
        for node, count, last_run in hung:
            cause = conn.execute("SELECT cause FROM hang_nodes WHERE node = ? AND run_id = ? ORDER BY score DESC "
                                 "LIMIT 1", (node, last_run)).fetchone()
            why.setdefault(node, []).append(f"named in {count} of the last {n} hang verdicts"
                                            + (f" (last: {cause[0]})" if cause else ""))
            score[node] = score.get(node, 0.0) + 1.0 + count
    return [(node, "; ".join(why[node])) for node in sorted(why, key=lambda x: (-score[x], x))]


@dataclass(frozen=True)
class FindingSpan:
    check: str
    status: str
    first_at: float
    last_at: float
    runs: int  # runs the node had this finding in
    current: bool  # present in the node's latest run
    reason: str


@dataclass
class NodeTrend:
    node: str
    runs: list[tuple[int, float, str, str]] = field(default_factory=list)  # run id, at, status, reason (old first)
    busbw: list[float] = field(default_factory=list)  # old first
    flaps: list[str] = field(default_factory=list)  # each change of a link count, old first
    findings: list[FindingSpan] = field(default_factory=list)
    hangs: list[tuple[float, str]] = field(default_factory=list)  # (at, cause) of hang verdicts naming it

    @property
    def total_runs(self) -> int:
        return len(self.runs)

    def to_dict(self) -> dict[str, Any]:
        return {"node": self.node,
                "runs": [{"run": r, "at": at, "status": s, "reason": why} for r, at, s, why in self.runs],
                "busbw_gbps": self.busbw, "link_flaps": self.flaps,
                "findings": [f.__dict__ for f in self.findings],
                "hangs": [{"at": at, "cause": c} for at, c in self.hangs]}


def known_nodes(db: sqlite3.Connection | str | os.PathLike[str]) -> list[str]:
    with _conn(db) as conn:
        return [r[0] for r in conn.execute("SELECT DISTINCT node FROM node_runs ORDER BY node")]


def node_trend(db: sqlite3.Connection | str | os.PathLike[str], node: str, last: int = 30) -> NodeTrend:
    """One node's last `last` runs (verdicts, busbw, link flaps) and every finding's first and last sighting."""
    out = NodeTrend(node)
    with _conn(db) as conn:
        out.runs = [(int(r), float(at), s, why or "") for r, at, s, why in reversed(conn.execute(
            "SELECT n.run_id, r.at, n.status, n.reason FROM node_runs n JOIN runs r ON r.id = n.run_id "
            "WHERE n.node = ? ORDER BY n.run_id DESC LIMIT ?", (node, last)).fetchall())]
        since = out.runs[0][0] if out.runs else 0
        out.busbw = [float(v) for (v,) in conn.execute(
            "SELECT num FROM metrics WHERE node = ? AND key = 'busbw_gbps' AND run_id >= ? AND num IS NOT NULL "
            "ORDER BY run_id", (node, since))]
        out.flaps = _flaps(conn, node, since)
        out.findings = _findings(conn, node, out.runs[-1][0] if out.runs else None)
        out.hangs = [(float(at), c) for at, c in conn.execute(
            "SELECT r.at, h.cause FROM hang_nodes h JOIN runs r ON r.id = h.run_id WHERE h.node = ? "
            "ORDER BY h.run_id DESC LIMIT ?", (node, last))][::-1]
    return out


def _flaps(conn: sqlite3.Connection, node: str, since: int) -> list[str]:
    """Each change of an active link count between consecutive runs, and each rise of IB link_downed."""
    out: list[str] = []
    for key in (*LINK_KEYS, "ib_link_downed"):
        prev: float | None = None
        for run_id, value in conn.execute("SELECT run_id, num FROM metrics WHERE node = ? AND key = ? AND run_id >= ? "
                                          "AND num IS NOT NULL ORDER BY run_id", (node, key, since)):
            if prev is not None and value != prev and (key != "ib_link_downed" or value > prev):
                out.append(f"run {run_id}: {key} {prev:g} -> {value:g}")
            prev = value
    return sorted(out, key=lambda s: int(s.split()[1].rstrip(":")))


def _findings(conn: sqlite3.Connection, node: str, latest: int | None) -> list[FindingSpan]:
    rows = conn.execute(
        "SELECT c.check_id, c.status, MIN(c.run_id), MAX(c.run_id), COUNT(*) FROM check_results c "
        "WHERE c.node = ? AND c.status IN (?, ?, ?) GROUP BY c.check_id, c.status", (node, *FINDING_STATUSES)).fetchall()
    at: dict[int, float] = {}
    ids = {r for row in rows for r in row[2:4]}
    for chunk in _chunks(sorted(ids), 500):
        at.update(conn.execute(f"SELECT id, at FROM runs WHERE id IN ({','.join('?' * len(chunk))})", chunk).fetchall())
    out = []
    for check, status, first, last_run, count in rows:
        reason = conn.execute("SELECT reason FROM check_results WHERE node = ? AND check_id = ? AND run_id = ?",
                              (node, check, last_run)).fetchone()
        out.append(FindingSpan(check, status, float(at.get(first, 0.0)), float(at.get(last_run, 0.0)), int(count),
                               latest is not None and last_run == latest, (reason[0] if reason else "") or ""))
    rank = {"fail": 0, "error": 1, "warn": 2}
    return sorted(out, key=lambda f: (not f.current, rank.get(f.status, 3), -f.last_at, f.check))


def _chunks(items: list[int], size: int) -> Iterator[list[int]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]
