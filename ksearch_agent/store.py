"""The run directory: an SQLite record of every candidate and evaluation, world-model snapshots and usage.

Each write commits at once (WAL mode), so a run killed with ``kill -9`` loses nothing it evaluated;
candidate sources are files under ``candidates/<id>/``. LangGraph's own checkpoints sit beside it in
``checkpoints.sqlite``.
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

from ksearch_agent.candidate import Candidate
from ksearch_agent.results import EvalReport

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS candidates (
    id TEXT PRIMARY KEY, round INTEGER, action_node TEXT, parent_id TEXT, language TEXT, api TEXT,
    entry TEXT, origin TEXT, attempt INTEGER, label TEXT, created REAL);
CREATE TABLE IF NOT EXISTS evaluations (
    candidate_id TEXT PRIMARY KEY, status TEXT, geomean_speedup REAL, geomean_latency_ms REAL,
    report TEXT, created REAL);
CREATE TABLE IF NOT EXISTS snapshots (seq INTEGER PRIMARY KEY AUTOINCREMENT, round INTEGER, note TEXT,
    world_model TEXT, created REAL);
CREATE TABLE IF NOT EXISTS usage (seq INTEGER PRIMARY KEY AUTOINCREMENT, round INTEGER, ledger TEXT, created REAL);
CREATE TABLE IF NOT EXISTS events (seq INTEGER PRIMARY KEY AUTOINCREMENT, round INTEGER, kind TEXT, data TEXT,
    created REAL);
"""


class RunStore:
    """Durable record of one search run, keyed by candidate id."""

    def __init__(self, run_dir: Path | str) -> None:
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.db_path = self.run_dir / "run.sqlite"
        self._db = sqlite3.connect(self.db_path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    @property
    def checkpoint_path(self) -> Path:
        return self.run_dir / "checkpoints.sqlite"

    # meta
    def set_meta(self, key: str, value: Any) -> None:
        self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, json.dumps(value)))

    def get_meta(self, key: str, default: Any = None) -> Any:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else default

    # candidates
    def save_candidate(
        self,
        cand: Candidate,
        *,
        round: int,
        action_node: str | None,
        parent_id: str | None,
        origin: str,
        attempt: int,
    ) -> str:
        directory = self.run_dir / "candidates"
        cand.materialize(directory)
        (directory / cand.id / "candidate.json").write_text(
            json.dumps(
                {"language": cand.language, "entry": cand.entry, "api": cand.api, "files": sorted(cand.files)}
            )
        )
        self._db.execute(
            "INSERT OR IGNORE INTO candidates VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            (
                cand.id,
                round,
                action_node,
                parent_id,
                cand.language,
                cand.api,
                cand.entry,
                origin,
                attempt,
                cand.label,
                time.time(),
            ),
        )
        return cand.id

    def load_candidate(self, cand_id: str) -> Candidate:
        directory = self.run_dir / "candidates" / cand_id
        meta = json.loads((directory / "candidate.json").read_text())
        files = {name: (directory / name).read_text() for name in meta["files"]}
        return Candidate(
            language=meta["language"],
            files=files,
            entry=meta["entry"],
            api=meta["api"],
            label=f"run candidate {cand_id}",
        )

    def candidate_row(self, cand_id: str) -> dict[str, Any] | None:
        cur = self._db.execute("SELECT * FROM candidates WHERE id = ?", (cand_id,))
        row = cur.fetchone()
        return dict(zip([d[0] for d in cur.description], row, strict=True)) if row else None

    def candidates(self) -> list[dict[str, Any]]:
        cur = self._db.execute(
            "SELECT c.id, c.round, c.action_node, c.parent_id, c.language, c.origin, c.attempt, e.status, "
            "e.geomean_speedup, e.geomean_latency_ms FROM candidates c LEFT JOIN evaluations e "
            "ON e.candidate_id = c.id ORDER BY c.created"
        )
        cols = [d[0] for d in cur.description]
        return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]

    def best_candidate(self) -> dict[str, Any] | None:
        """The run's best passing candidate row: the winner of the side-by-side confirmation when one was
        recorded (``confirmed_best`` meta) and it still names a passing candidate, else the top score."""
        passed = [r for r in self.candidates() if r["status"] == "PASSED"]
        confirmed = (self.get_meta("confirmed_best") or {}).get("candidate_id")
        for r in passed:
            if r["id"] == confirmed:
                return r
        return max(passed, key=lambda r: r["geomean_speedup"] or 0.0) if passed else None

    # evaluations
    def save_evaluation(self, report: EvalReport) -> None:
        prof = report.profile
        self._db.execute(
            "INSERT OR REPLACE INTO evaluations VALUES (?,?,?,?,?,?)",
            (
                report.candidate_id,
                report.status,
                prof.geomean_speedup if prof else None,
                prof.geomean_latency_ms if prof else None,
                report.model_dump_json(),
                time.time(),
            ),
        )

    def get_evaluation(self, cand_id: str) -> EvalReport | None:
        row = self._db.execute("SELECT report FROM evaluations WHERE candidate_id = ?", (cand_id,)).fetchone()
        return EvalReport.model_validate_json(row[0]) if row else None

    # world model, usage, events
    def save_snapshot(self, round: int, world_model: dict[str, Any], note: str = "") -> None:
        self._db.execute(
            "INSERT INTO snapshots (round, note, world_model, created) VALUES (?,?,?,?)",
            (round, note, json.dumps(world_model), time.time()),
        )

    def snapshots(self) -> list[dict[str, Any]]:
        rows = self._db.execute("SELECT round, note, world_model FROM snapshots ORDER BY seq").fetchall()
        return [{"round": r, "note": n, "world_model": json.loads(w)} for r, n, w in rows]

    def save_usage(self, round: int, ledger: dict[str, Any]) -> None:
        self._db.execute(
            "INSERT INTO usage (round, ledger, created) VALUES (?,?,?)",
            (round, json.dumps(ledger), time.time()),
        )

    def latest_usage(self) -> dict[str, Any] | None:
        row = self._db.execute("SELECT ledger FROM usage ORDER BY seq DESC LIMIT 1").fetchone()
        return json.loads(row[0]) if row else None

    def log_event(self, round: int, kind: str, data: dict[str, Any]) -> None:
        self._db.execute(
            "INSERT INTO events (round, kind, data, created) VALUES (?,?,?,?)",
            (round, kind, json.dumps(data, default=str), time.time()),
        )

    def events(self) -> list[dict[str, Any]]:
        rows = self._db.execute("SELECT round, kind, data FROM events ORDER BY seq").fetchall()
        return [{"round": r, "kind": k, **json.loads(d)} for r, k, d in rows]
