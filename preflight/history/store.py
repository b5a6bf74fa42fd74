"""The history file: where it lives, how it is opened (WAL, a bounded busy wait) and its numbered migrations.

A SQLite file (stdlib `sqlite3`), one per user by default: `$XDG_DATA_HOME/preflight/history.sqlite`, else
`~/.local/share/preflight/history.sqlite`. WAL mode lets two runs write at once (each waits for the other's
short transaction, at most `BUSY_TIMEOUT_S`) while readers never block. The schema is versioned: the
`schema_version` table holds the number of the last migration applied; `MIGRATIONS` are applied in order,
each in its own `BEGIN IMMEDIATE` transaction, so two processes opening a new file at once cannot both
migrate it. A file from a newer preflight (a version past the last migration known here) is refused.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

BUSY_TIMEOUT_S = 5.0


class HistoryError(Exception):
    """The history cannot be opened, read or written; one line."""


def default_path() -> Path:
    """`$XDG_DATA_HOME/preflight/history.sqlite`, else `~/.local/share/preflight/history.sqlite`."""
    base = os.environ.get("XDG_DATA_HOME") or ""
    root = Path(base) if base and os.path.isabs(base) else Path.home() / ".local" / "share"
    return root / "preflight" / "history.sqlite"


# Numbered migrations: (version, statements). Never edit one that shipped; add the next number.
MIGRATIONS: tuple[tuple[int, tuple[str, ...]], ...] = (
    (1, (
        """CREATE TABLE runs (
               id INTEGER PRIMARY KEY AUTOINCREMENT,
               at REAL NOT NULL,              -- unix time the run was judged
               kind TEXT NOT NULL,            -- run | replay | hang
               source TEXT,                   -- inventory or bundle path
               label TEXT,
               tool_version TEXT,
               exit_code INTEGER,
               checks TEXT                    -- JSON list of the check ids judged (absent rows passed)
           )""",
        """CREATE TABLE node_runs (
               node TEXT NOT NULL,
               run_id INTEGER NOT NULL REFERENCES runs(id),
               status TEXT NOT NULL,          -- the node's one verdict (NodeReport.status)
               outcome TEXT NOT NULL,
               reason TEXT,
               PRIMARY KEY (node, run_id)
           ) WITHOUT ROWID""",
        # one row per node per check that did not pass (a judged node's absent checks passed)
        """CREATE TABLE check_results (
               node TEXT NOT NULL,
               check_id TEXT NOT NULL,
               run_id INTEGER NOT NULL REFERENCES runs(id),
               status TEXT NOT NULL,
               subject TEXT,
               observed TEXT,                 -- JSON of the worst finding's observed value, cut to 200 chars
               reason TEXT,
               PRIMARY KEY (node, check_id, run_id)
           ) WITHOUT ROWID""",
        # key observed values per node per run: busbw_gbps, nvlink_active, ib_active, driver, ...
        """CREATE TABLE metrics (
               node TEXT NOT NULL,
               key TEXT NOT NULL,
               run_id INTEGER NOT NULL REFERENCES runs(id),
               num REAL,
               text TEXT,
               PRIMARY KEY (node, key, run_id)
           ) WITHOUT ROWID""",
    )),
    (2, (
        # the nodes a `preflight hang` verdict named, with the cause (repeat offenders read these)
        """CREATE TABLE hang_nodes (
               node TEXT NOT NULL,
               run_id INTEGER NOT NULL REFERENCES runs(id),
               cause TEXT NOT NULL,
               kind TEXT,
               score REAL,
               PRIMARY KEY (node, run_id, cause)
           ) WITHOUT ROWID""",
        "CREATE INDEX runs_kind ON runs (kind, id)",
    )),
)
LATEST = MIGRATIONS[-1][0]


def schema_version(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT name FROM sqlite_master WHERE type='table' AND name='schema_version'").fetchone()
    if row is None:
        return 0
    got = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
    return int(got[0] or 0)


def migrate(conn: sqlite3.Connection, upto: int = LATEST) -> int:
    """Apply every migration after the file's version (up to `upto`), each in one immediate transaction."""
    for version, statements in MIGRATIONS:
        if version > upto:
            break
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL, applied REAL NOT NULL)")
            if schema_version(conn) >= version:
                conn.execute("COMMIT")
                continue
            for sql in statements:
                conn.execute(sql)
            conn.execute("INSERT INTO schema_version (version, applied) VALUES (?, strftime('%s','now'))", (version,))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return schema_version(conn)


def connect(path: str | os.PathLike[str], *, create: bool = True, upto: int = LATEST) -> sqlite3.Connection:
    """The history at `path`, migrated to the latest schema; HistoryError (one line) when it cannot be."""
    p = Path(path)
    try:
        if not p.exists():
            if not create:
                raise HistoryError(f"no history at {p}")
            p.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(str(p), timeout=BUSY_TIMEOUT_S, isolation_level=None)
    except (OSError, sqlite3.Error) as exc:
        raise HistoryError(f"cannot open the history {p}: {exc}") from None
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        found = schema_version(conn)
        if found > LATEST:
            raise HistoryError(f"the history {p} has schema version {found}, newer than this preflight's {LATEST}")
        if found < upto:
            migrate(conn, upto)
    except sqlite3.Error as exc:
        conn.close()
        raise HistoryError(f"the history {p} cannot be used: {exc}") from None
    except HistoryError:
        conn.close()
        raise
    return conn
