"""structlog records carry task/candidate/stage; the CLI's JSON and exit codes tell the truth."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from conftest import CANDIDATES

from ksearch_agent.task import BUNDLED_TASKS_DIR


def _ksearch(*args: str, tmp: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KSEARCH_CACHE_DIR": str(tmp / "cache")}
    return subprocess.run(
        [sys.executable, "-m", "ksearch_agent.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )


def test_eval_json_passes_with_exit_zero_and_json_log_lines(tmp_path: Path) -> None:
    seed = BUNDLED_TASKS_DIR / "rmsnorm" / "seeds" / "triton_rowwise.py"
    out = _ksearch("--log-level", "INFO", "eval", "rmsnorm", str(seed), "--cpu", "--json", tmp=tmp_path)
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["status"] == "PASSED" and doc["speed_measured"] is False
    assert [w["id"] for w in doc["workloads"]][:4] == ["b1", "b7", "b64", "b300"] and len(
        doc["workloads"]
    ) == 5
    assert all(w["status"] == "PASSED" and w["max_abs_error"] is not None for w in doc["workloads"])
    records = [json.loads(line) for line in out.stderr.splitlines() if line.startswith("{")]
    staged = [r for r in records if r.get("stage") == "correctness"]
    assert staged and all(r["task"] == "rmsnorm" and r["candidate"] == doc["candidate_id"] for r in staged)


def test_eval_of_a_wrong_kernel_exits_one_with_the_failure_in_json(tmp_path: Path) -> None:
    out = _ksearch(
        "eval",
        "rmsnorm",
        str(CANDIDATES / "rmsnorm_wrong.py"),
        "--cpu",
        "--json",
        "--workloads",
        "b1",
        tmp=tmp_path,
    )
    assert out.returncode == 1
    doc = json.loads(out.stdout)
    assert doc["status"] == "INCORRECT_NUMERICAL" and doc["workloads"][0]["status"] == "INCORRECT_NUMERICAL"


def test_unknown_task_and_unknown_workload_exit_two_with_a_message(tmp_path: Path) -> None:
    seed = BUNDLED_TASKS_DIR / "rmsnorm" / "seeds" / "triton_rowwise.py"
    bad_task = _ksearch("eval", "nope", str(seed), tmp=tmp_path)
    bad_wl = _ksearch("eval", "rmsnorm", str(seed), "--workloads", "b3", tmp=tmp_path)
    assert bad_task.returncode == 2 and "no such task" in bad_task.stderr
    assert bad_wl.returncode == 2 and "b3" in bad_wl.stderr


def test_tasks_command_lists_the_bundled_tasks(tmp_path: Path) -> None:
    out = _ksearch("tasks", tmp=tmp_path)
    assert out.returncode == 0 and all(n in out.stdout for n in ("rmsnorm", "softmax", "trimul"))
