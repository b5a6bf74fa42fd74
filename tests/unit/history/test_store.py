"""The history file: numbered migrations, WAL, two writers at once, and writes that never fail a run."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from preflight.history import LATEST, HistoryError, connect, record_safely, repeat_offenders
from preflight.history.record import RunRows
from preflight.history.store import schema_version


def _rows(node: str = "gpu-01", status: str = "fail") -> RunRows:
    return RunRows(run={"at": 1.0, "kind": "run", "source": None, "label": None, "tool_version": "t",
                        "exit_code": 2, "checks": "[]"},
                   nodes=[(node, status, "ok", f"{node} {status}")],
                   checks=[(node, "gpu.ecc.uncorrectable", status, "GPU3", "7", "7 uncorrectable")],
                   metrics=[(node, "busbw_gbps", 400.0, None)])


def test_new_file_is_wal_and_at_the_latest_schema(tmp_path: Path) -> None:
    conn = connect(tmp_path / "h.sqlite")
    assert schema_version(conn) == LATEST
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"schema_version", "runs", "node_runs", "check_results", "metrics", "hang_nodes"} <= tables


def test_a_version_1_file_is_migrated_keeping_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite"
    old = connect(path, upto=1)
    assert schema_version(old) == 1
    assert "hang_nodes" not in {r[0] for r in old.execute("SELECT name FROM sqlite_master")}
    old.execute("INSERT INTO runs (at, kind) VALUES (1, 'run')")
    old.execute("INSERT INTO node_runs VALUES ('gpu-01', 1, 'fail', 'ok', 'x')")
    old.close()
    conn = connect(path)
    assert schema_version(conn) == LATEST
    assert [r[0] for r in conn.execute("SELECT version FROM schema_version ORDER BY version")] == list(range(1, LATEST + 1))
    assert conn.execute("SELECT COUNT(*) FROM node_runs").fetchone()[0] == 1


def test_a_newer_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite"
    connect(path).execute("INSERT INTO schema_version VALUES (?, 0)", (LATEST + 1,))
    with pytest.raises(HistoryError, match="newer"):
        connect(path)


def test_corrupt_unwritable_and_locked_histories_are_one_warning(tmp_path: Path) -> None:
    warnings: list[str] = []
    corrupt = tmp_path / "corrupt.sqlite"
    corrupt.write_bytes(b"this is not a database" * 100)
    assert record_safely(corrupt, _rows, warnings.append) is None
    blocked = tmp_path / "file"
    blocked.write_text("x")
    assert record_safely(blocked / "sub" / "h.sqlite", _rows, warnings.append) is None  # parent is a file
    assert len(warnings) == 2 and all(w.startswith("preflight: history not written") for w in warnings)
    assert all("\n" not in w for w in warnings)


def test_a_locked_history_is_a_warning_within_the_busy_timeout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import preflight.history.store as store

    path = tmp_path / "h.sqlite"
    connect(path).close()
    holder = sqlite3.connect(str(path), isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    monkeypatch.setattr(store, "BUSY_TIMEOUT_S", 0.2)
    warnings: list[str] = []
    assert record_safely(path, _rows, warnings.append) is None
    holder.execute("ROLLBACK")
    assert len(warnings) == 1 and "locked" in warnings[0]


_WRITER = textwrap.dedent("""
    import sys
    from preflight.history import connect, write
    from preflight.history.record import RunRows
    path, who, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    conn = connect(path)
    for i in range(count):
        write(conn, RunRows(run={"at": float(i), "kind": "run", "source": who, "label": None, "tool_version": "t",
                                 "exit_code": 0, "checks": "[]"},
                            nodes=[(f"{who}-{n}", "pass", "ok", "") for n in range(20)]))
""")


def test_two_processes_writing_at_once_both_land(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite"
    connect(path).close()
    procs = [subprocess.Popen([sys.executable, "-c", _WRITER, str(path), who, "40"]) for who in ("a", "b")]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    conn = connect(path)
    assert conn.execute("SELECT source, COUNT(*) FROM runs GROUP BY source ORDER BY source").fetchall() == \
        [("a", 40), ("b", 40)]
    assert conn.execute("SELECT COUNT(*) FROM node_runs").fetchone()[0] == 2 * 40 * 20


def test_repeat_offenders_k_of_n_and_hang(tmp_path: Path) -> None:
    conn = connect(tmp_path / "h.sqlite")
    from preflight.history import write
    from preflight.history.record import hang_rows

    for status in ("fail", "pass", "fail", "fail", "pass"):  # gpu-01: 3 of the last 5
        write(conn, _rows("gpu-01", status))
    for status in ("fail", "fail", "pass", "pass", "pass"):  # gpu-02: 2 of the last 5, all old
        write(conn, _rows("gpu-02", status))

    class _Cause:
        node, title, kind, score = "gpu-09", "rank 3 stuck in ncclAllReduce", "fr_stuck", 0.9

    class _Verdict:
        causes = (_Cause(),)

    write(conn, hang_rows(_Verdict()))
    got = dict(repeat_offenders(conn, 3, 5))
    assert set(got) == {"gpu-01", "gpu-09"}
    assert got["gpu-01"].startswith("failed 3 of its last 5 runs (last: gpu-01 fail)")
    assert "named in 1 of the last 5 hang verdicts (last: rank 3 stuck" in got["gpu-09"]
    assert "gpu-02" in dict(repeat_offenders(conn, 2, 5))
    with pytest.raises(ValueError):
        repeat_offenders(conn, 6, 5)
