"""Opening a run directory for reading, plus the two things ``RunStore`` does not expose: the history of
usage ledgers and the run's time span.

A report must never create a run where there is none (``RunStore`` makes the directory and its tables),
so :func:`open_run` checks for ``run.sqlite`` first.  The store it returns is the process's shared one (a
search running in this process writes through it; on an existing file it only re-declares its tables); the
extra queries here use a read-only connection of their own.
"""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

from ksearch_agent.resources import store_for
from ksearch_agent.store import RunStore

RUN_FILE = "run.sqlite"


class NotARunDirectory(FileNotFoundError):
    """The path holds no ``run.sqlite``: nothing to report on."""


def is_run_dir(path: Path) -> bool:
    """Whether ``path`` is a run directory (it holds the run's SQLite record)."""
    return (path / RUN_FILE).is_file()


def open_run(run_dir: Path) -> RunStore:
    """The run's store (shared with a search running in this process), or :class:`NotARunDirectory`."""
    if not is_run_dir(run_dir):
        raise NotARunDirectory(f"{run_dir} is not a run directory (no {RUN_FILE})")
    return store_for(run_dir)


def _read_only(db_path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"{db_path.resolve().as_uri()}?mode=ro", uri=True)


def usage_history(run_dir: Path) -> list[tuple[int, dict[str, Any]]]:
    """Every saved usage ledger as ``(round, ledger)``, oldest first; each ledger is cumulative."""
    with closing(_read_only(run_dir / RUN_FILE)) as db:
        rows = db.execute("SELECT round, ledger FROM usage ORDER BY seq").fetchall()
    return [(int(r or 0), json.loads(ledger)) for r, ledger in rows]


def time_span(run_dir: Path) -> tuple[float | None, float | None]:
    """Unix times of the run's first and last record (events and candidates), or ``None`` when empty."""
    with closing(_read_only(run_dir / RUN_FILE)) as db:
        row = db.execute(
            "SELECT MIN(t), MAX(t) FROM (SELECT created AS t FROM events "
            "UNION ALL SELECT created AS t FROM candidates)"
        ).fetchone()
    return (row[0], row[1]) if row else (None, None)
