"""One Engine called from many threads at once: each verdict belongs to its own request."""

from __future__ import annotations

import threading
from pathlib import Path

from conftest import candidate, seed

from ksearch_agent.candidate import Candidate
from ksearch_agent.engine import Engine
from ksearch_agent.results import CorrectnessResult
from ksearch_agent.task import Task, load_task

RMS, SOFTMAX = load_task("rmsnorm"), load_task("softmax")
ROUNDS = 20


def test_concurrent_evaluations_of_different_tasks_each_get_their_own_verdict(tmp_path: Path) -> None:
    wrong, right = candidate("rmsnorm_wrong.py"), seed("softmax", "triton_rowwise.py")
    with Engine(device="cpu", workdir=tmp_path / "w", cache_dir=tmp_path / "c") as engine:
        for _ in range(ROUNDS):
            got: dict[str, CorrectnessResult] = {}

            def evaluate(
                key: str, task: Task, cand: Candidate, got: dict[str, CorrectnessResult] = got
            ) -> None:
                got[key] = engine.run_correctness(task, cand, ["b1"])

            threads = [
                threading.Thread(target=evaluate, args=("rms", RMS, wrong)),
                threading.Thread(target=evaluate, args=("sm", SOFTMAX, right)),
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=300)
            assert got["sm"].status == "PASSED", got["sm"].workloads[0].log
            assert got["rms"].status == "INCORRECT_NUMERICAL"
            assert "'output'" in got["rms"].workloads[0].log and got["sm"].workloads[0].log == ""
