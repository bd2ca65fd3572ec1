"""``ksearch run --parallel K --backend local|ray`` from the command line on a CPU machine: the run completes
and stores every candidate, bad backend input is a clear exit 2, and kill -9 then ``ksearch resume`` of a
parallel run loses no evaluation and repeats none."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from run_checks import assert_every_candidate_stored, run_cli

from ksearch_agent.engine import Engine
from ksearch_agent.resources import register_engine


def test_ksearch_run_on_the_local_backend_stores_every_candidate(tmp_path: Path, cpu_engine: Engine) -> None:
    register_engine("cpu", cpu_engine)  # slot 0; slot 1 gets an engine of its own
    out = run_cli(tmp_path, "--parallel", "2", "--backend", "local")
    assert out.exit_code == 0, out.output
    assert "2 cycles at once on the local backend" in out.output
    assert_every_candidate_stored(tmp_path / "runs", slots={"cpu0", "cpu1"}, rounds=2)


def test_an_unknown_backend_exits_two_naming_the_option(tmp_path: Path) -> None:
    out = run_cli(tmp_path, "--backend", "slurm")
    assert out.exit_code == 2 and "--backend" in out.output


def test_the_ray_backend_without_ray_exits_two_saying_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ksearch_agent.backends import ray_backend

    def missing() -> None:
        raise ray_backend.BackendUnavailable(ray_backend.RAY_MISSING)

    monkeypatch.setattr(ray_backend, "import_ray", missing)
    out = run_cli(tmp_path, "--parallel", "2", "--backend", "ray")
    assert out.exit_code == 2
    assert 'pip install "ksearch-agent[ray]"' in out.output
    assert "Traceback" not in out.output and not (tmp_path / "runs").exists()


def _evaluations(db: Path) -> list[tuple[str, float]]:
    try:
        with sqlite3.connect(db) as conn:
            return conn.execute("SELECT candidate_id, created FROM evaluations ORDER BY created").fetchall()
    except sqlite3.OperationalError:
        return []


@pytest.mark.slow
def test_kill_9_of_a_parallel_run_then_resume_loses_and_repeats_no_evaluation(tmp_path: Path) -> None:
    env = {**os.environ, "KSEARCH_CACHE_DIR": str(tmp_path / "cache")}
    env.pop("KSEARCH_MODEL", None)
    base = [sys.executable, "-m", "ksearch_agent.cli"]
    run = ["run", "rmsnorm", "--policy", "playbook", "--rounds", "4", "--device", "cpu", "--parallel", "2"]
    proc = subprocess.Popen(
        [*base, *run, "--runs-root", str(tmp_path / "runs")],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline, db = time.monotonic() + 300, None
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
        [*base, "resume", str(db.parent)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
    )
    assert out.returncode == 0, out.stdout + out.stderr
    after = _evaluations(db)
    assert after[: len(before)] == before  # the same evaluations, same timestamps: nothing redone
    assert "status: max_rounds" in out.stdout
    with sqlite3.connect(db) as conn:
        rounds = {r for (r,) in conn.execute("SELECT round FROM candidates")}
        unevaluated = conn.execute(
            "SELECT count(*) FROM candidates WHERE id NOT IN (SELECT candidate_id FROM evaluations)"
        ).fetchone()[0]
    assert rounds == {1, 2, 3, 4} and unevaluated == 0
