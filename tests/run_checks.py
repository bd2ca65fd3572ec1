"""Running ``ksearch run`` in-process for the scale-out tests, and the checks on what it stored."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from ksearch_agent.cli import app


def run_cli(tmp_path: Path, *extra: str, rounds: int = 2) -> Any:
    """``ksearch run rmsnorm --policy playbook --rounds N --device cpu`` plus ``extra``, runs under tmp_path."""
    from ksearch_agent.backends import close_all
    from ksearch_agent.log import configure_logging

    args = ["run", "rmsnorm", "--policy", "playbook", "--rounds", str(rounds), "--device", "cpu"]
    try:
        return CliRunner().invoke(app, [*args, "--runs-root", str(tmp_path / "runs"), *extra])
    finally:
        close_all()  # the run's backend and its workers, before the test's Ray or engines go
        # The CLI configured logging onto CliRunner's stderr, closed now: log to the real one again.
        configure_logging("WARNING", force=True)


def assert_every_candidate_stored(runs: Path, *, slots: set[str], rounds: int) -> None:
    """One run; every candidate it made has its evaluation; every round ran; the cycles used every slot;
    the world model took the cycles in round order."""
    (db,) = runs.glob("*/run.sqlite")
    with sqlite3.connect(db) as conn:
        cands = conn.execute("SELECT id, round FROM candidates").fetchall()
        evaluated = {r[0] for r in conn.execute("SELECT candidate_id FROM evaluations")}
        events = conn.execute("SELECT round, kind, data FROM events ORDER BY seq").fetchall()
    assert cands and {c for c, _ in cands} <= evaluated
    assert {r for _, r in cands} == set(range(1, rounds + 1))
    made = [d for _, k, d in events if k == "candidate"]
    assert len(made) == len(cands)
    used = {__import__("json").loads(d)["slot"] for _, k, d in events if k == "placed"}
    assert used == slots
    assert [r for r, k, _ in events if k == "world_model_updated"] == list(range(1, rounds + 1))
