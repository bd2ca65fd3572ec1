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
    cmd = [
        sys.executable,
        "-m",
        "ksearch_agent.cli",
        "run",
        "rmsnorm",
        "--policy",
        "playbook",
        "--rounds",
        "4",
        "--device",
        "cpu",
        "--runs-root",
        str(tmp_path / "runs"),
    ]
    proc = subprocess.Popen(
        cmd,
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
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
    out = subprocess.run(
        [sys.executable, "-m", "ksearch_agent.cli", "resume", str(db.parent)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
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
    out = subprocess.run(
        [sys.executable, "-m", "ksearch_agent.cli", "resume", str(run_dir)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 2
    assert "holds no checkpoint" in out.stderr and "ksearch run" in out.stderr


def test_resume_after_a_kill_between_a_nodes_saved_writes_and_its_checkpoint_goes_on(tmp_path: Path) -> None:
    """The process dies right after the round-2 coder's writes are saved and before the step's checkpoint
    (the window where LangGraph reports no next node): resume applies those writes and finishes the run."""
    script = tmp_path / "dies_after_writes.py"
    script.write_text(
        "import os, sys\n"
        "from langgraph.checkpoint.sqlite import SqliteSaver\n"
        "from ksearch_agent.cli import app\n"
        "seen = []\n"
        "original = SqliteSaver.put_writes\n"
        "def put_writes(self, config, writes, task_id, task_path=''):\n"
        "    original(self, config, writes, task_id, task_path)\n"
        "    if any(channel == 'branch:to:evaluate' for channel, _ in writes):\n"
        "        seen.append(task_id)\n"
        "        if len(seen) == 2:\n"
        "            os._exit(9)\n"
        "SqliteSaver.put_writes = put_writes\n"
        "sys.argv = ['ksearch'] + sys.argv[1:]\n"
        "app()\n"
    )
    env = {**os.environ, "KSEARCH_CACHE_DIR": str(tmp_path / "cache")}
    env.pop("KSEARCH_MODEL", None)
    died = subprocess.run(
        [
            sys.executable,
            str(script),
            "run",
            "rmsnorm",
            "--policy",
            "playbook",
            "--rounds",
            "3",
            "--device",
            "cpu",
            "--runs-root",
            str(tmp_path / "runs"),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert died.returncode == 9, died.stdout + died.stderr
    (db,) = (tmp_path / "runs").glob("*/run.sqlite")
    assert len(_evaluations(db)) == 1  # round 1 evaluated; round 2's candidate written, not yet evaluated
    out = subprocess.run(
        [sys.executable, "-m", "ksearch_agent.cli", "resume", str(db.parent)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert len(_evaluations(db)) == 3 and "status: max_rounds" in out.stdout, out.stdout
