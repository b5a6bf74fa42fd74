"""A memory of every run: each `run`, `replay --record` and `hang` appends to a SQLite history.

Core-side (no UI, CLI or SSH imports): `store` (the file, WAL, numbered migrations), `record` (a judged report
-> rows, written in one transaction), `query` (repeat offenders, one node's trends). `record_safely` is what
the commands call: a history that cannot be written is one warning line, never a failed or hung run.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from preflight.history.query import NodeTrend, known_nodes, node_trend, repeat_offenders
from preflight.history.record import RunRows, hang_rows, run_rows, write
from preflight.history.store import LATEST, HistoryError, connect, default_path

__all__ = ["LATEST", "HistoryError", "NodeTrend", "RunRows", "connect", "default_path", "hang_rows", "known_nodes",
           "node_trend", "record_safely", "repeat_offenders", "run_rows", "write"]


def record_safely(path: str | os.PathLike[str] | None, rows: Callable[[], RunRows],
                  warn: Callable[[str], None]) -> int | None:
    """Append one run (rows built lazily) to the history at `path` (None: the default); any problem is one
    `warn` line and None, never an exception: the run's own result stands."""
    where = Path(path) if path is not None else default_path()
    try:
        conn = connect(where)
    except Exception as exc:
        warn(f"preflight: history not written: {exc}")
        return None
    try:
        return write(conn, rows())
    except Exception as exc:
        warn(f"preflight: history not written ({where}): {type(exc).__name__}: {exc}")
        return None
    finally:
        conn.close()
