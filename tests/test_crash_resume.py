"""kill -9 of the agent mid-run, then `ksearch resume`: no evaluated candidate is lost or evaluated again."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path


def _evaluations(db: Path) -> list[tuple[str, float]]:
    try:
        with sqlite3.connect(db) as conn:
            return conn.execute("SELECT candidate_id, created FROM evaluations ORDER BY created").fetchall()
    except sqlite3.OperationalError:
        return []


def test_kill_9_mid_run_then_resume_loses_nothing(tmp_path: Path) -> None:
    env = {**os.environ, "KSEARCH_CACHE_DIR": str(tmp_path / "cache")}
    env.pop("KSEARCH_MODEL", None)
    cmd = [sys.executable, "-m", "ksearch_agent.cli", "run", "rmsnorm", "--policy", "playbook", "--rounds", "4",
           "--device", "cpu", "--runs-root", str(tmp_path / "runs")]
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.monotonic() + 240
    db = None
    while time.monotonic() < deadline:
        runs = list((tmp_path / "runs").glob("*/run.sqlite")) if (tmp_path / "runs").exists() else []
        if runs and len(_evaluations(runs[0])) >= 2:
            db = runs[0]
            break
        time.sleep(0.2)
    assert db is not None, "the run never evaluated two candidates"
    os.killpg(proc.pid, signal.SIGKILL)  # the agent and its workers, mid-run
    proc.wait(timeout=30)
    before = _evaluations(db)
    out = subprocess.run([sys.executable, "-m", "ksearch_agent.cli", "resume", str(db.parent)], cwd=tmp_path,
                         env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout + out.stderr
    after = _evaluations(db)
    assert after[: len(before)] == before  # same candidates, same evaluation timestamps: nothing redone
    assert len(after) == 4 and "status: max_rounds" in out.stdout


def test_resume_of_a_run_with_no_checkpoint_names_the_problem(tmp_path: Path) -> None:
    """A run directory whose process died before its first step was saved: a clear error, exit 2."""
    from ksearch_agent.resources import store_for

    run_dir = tmp_path / "runs" / "rmsnorm-20261124-000000-dead"
    run_dir.mkdir(parents=True)
    store_for(run_dir).set_meta("run_id", run_dir.name)
    out = subprocess.run([sys.executable, "-m", "ksearch_agent.cli", "resume", str(run_dir)], cwd=tmp_path,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2
    assert "holds no checkpoint" in out.stderr and "ksearch run" in out.stderr
