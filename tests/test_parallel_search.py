"""The parallel search graph on rmsnorm with the playbook policy and a fake evaluation backend: K cycles at
once, folded into the world model in round order, budgets kept, and a crash resumed without repeating an
evaluation."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from fake_evaluator import SlowEvaluator
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.sqlite import SqliteSaver

from ksearch_agent.backends import register_backend, unregister_backend
from ksearch_agent.backends.base import Placed, device_of
from ksearch_agent.candidate import Candidate
from ksearch_agent.context import SearchContext
from ksearch_agent.graphs.kernel_search import recursion_limit
from ksearch_agent.graphs.parallel_search import build_parallel_search_graph
from ksearch_agent.resources import store_for
from ksearch_agent.task import Task


class RecordingBackend:
    """Two slots over one slow fake evaluator; counts evaluations per candidate; ``delay(round)`` adds a
    per-round wait; ``crash_on`` makes the n-th evaluation raise (the process dying mid-run)."""

    name = "fake"

    def __init__(
        self,
        run_dir: Path,
        seconds: float = 0.2,
        delay: Any = None,
        crash_on: int | None = None,
        device: Any = None,
    ) -> None:
        self.run_dir = run_dir
        self.evaluator = SlowEvaluator(seconds, device="NVIDIA H200")
        self.device = device
        self.delay = delay or (lambda r: 0.0)
        self.crash_on = crash_on
        self.calls: list[str] = []
        self.finished: list[int] = []
        self._lock = threading.Lock()
        self._slots = threading.Semaphore(2)

    @property
    def slots(self) -> int:
        return 2

    def evaluate(self, task: Task, candidate: Candidate, *, trials: int = 2) -> Placed:
        round_no = store_for(self.run_dir).candidate_row(candidate.id)["round"]
        with self._lock:
            self.calls.append(candidate.id)
            if self.crash_on is not None and len(self.calls) == self.crash_on:
                raise KeyboardInterrupt("the driver died mid-run (simulated)")
        with self._slots:
            time.sleep(self.delay(round_no))
            report = self.evaluator.evaluate(task, candidate, trials=trials)
        if self.device is not None:
            report.profile.device = report.correctness.device = self.device(round_no)  # type: ignore[union-attr]
        with self._lock:
            self.finished.append(round_no)
        return Placed(report=report, slot="fake", device=device_of(report), node="here")

    def close(self) -> None:
        pass


def _ctx(tmp_path: Path, **kw: Any) -> SearchContext:
    base: dict[str, Any] = {
        "policy": "playbook",
        "device": "cpu",
        "runs_root": str(tmp_path / "runs"),
        "max_rounds": 2,
        "max_attempts": 2,
        "trials": 1,
        "parallel": 2,
        "confirm_top": 0,
    }
    base.update(kw)
    return SearchContext(**base)


def _run(
    ctx: SearchContext, backend: RecordingBackend, checkpointer: Any = None, resume: bool = False
) -> dict[str, Any]:
    register_backend(ctx, backend)
    try:
        graph = build_parallel_search_graph(checkpointer=checkpointer or InMemorySaver())
        config = {"configurable": {"thread_id": "r1"}, "recursion_limit": recursion_limit(ctx)}
        payload = None if resume else {"task": "rmsnorm", "run_id": "r1"}
        for _ in graph.stream(
            payload, config, context=ctx, stream_mode="custom", subgraphs=True, durability="sync"
        ):
            pass
        return dict(graph.get_state(config).values)
    finally:
        unregister_backend(ctx)


def _events(run_dir: Path, kind: str) -> list[dict[str, Any]]:
    return [e for e in store_for(run_dir).events() if e["kind"] == kind]


def test_two_cycles_evaluate_at_the_same_time(tmp_path: Path) -> None:
    ctx = _ctx(tmp_path)
    backend = RecordingBackend(tmp_path / "runs" / "r1", seconds=0.5)
    _run(ctx, backend)
    assert backend.evaluator.peak == 2
    starts = _events(tmp_path / "runs" / "r1", "cycle_start")
    assert [e["round"] for e in starts] == [1, 2] and starts[0]["action_id"] != starts[1]["action_id"]


def test_the_world_model_takes_finished_cycles_in_round_order(tmp_path: Path) -> None:
    ctx = _ctx(tmp_path, max_attempts=1)  # one evaluation per cycle: the finishing order is the cycles' order
    backend = RecordingBackend(tmp_path / "runs" / "r1", seconds=0.05, delay=lambda r: 1.0 if r == 1 else 0.0)
    _run(ctx, backend)
    assert backend.finished[:2] == [2, 1]  # round 2's cycle finished first ...
    updates = _events(tmp_path / "runs" / "r1", "world_model_updated")
    assert [e["round"] for e in updates] == [1, 2]  # ... and still came second
    snaps = store_for(tmp_path / "runs" / "r1").snapshots()
    assert [s["note"] for s in snaps[1:]] == [f"after action {u['action_id']}" for u in updates]


def test_max_rounds_counts_every_cycle_of_every_batch(tmp_path: Path) -> None:
    ctx = _ctx(tmp_path, max_rounds=3)
    backend = RecordingBackend(tmp_path / "runs" / "r1", seconds=0.01)
    _run(ctx, backend)
    starts = _events(tmp_path / "runs" / "r1", "cycle_start")
    assert [e["round"] for e in starts] == [1, 2, 3]
    assert {r["round"] for r in store_for(tmp_path / "runs" / "r1").candidates()} == {1, 2, 3}


def test_the_best_kernel_of_any_branch_becomes_the_run_s_best(tmp_path: Path) -> None:
    ctx = _ctx(tmp_path, max_rounds=4)
    backend = RecordingBackend(tmp_path / "runs" / "r1", seconds=0.01)
    conn = sqlite3.connect(tmp_path / "cp.sqlite", check_same_thread=False)
    final = _run(ctx, backend, SqliteSaver(conn))
    rows = [r for r in store_for(tmp_path / "runs" / "r1").candidates() if r["status"] == "PASSED"]
    assert final["best"]["candidate_id"] in {r["id"] for r in rows}
    assert final["best"]["geomean_speedup"] == max(r["geomean_speedup"] for r in rows)


def test_a_crash_mid_batch_then_resume_repeats_no_evaluation(tmp_path: Path) -> None:
    ctx = _ctx(tmp_path, max_rounds=4)
    run_dir = tmp_path / "runs" / "r1"
    conn = sqlite3.connect(tmp_path / "cp.sqlite", check_same_thread=False)
    first = RecordingBackend(run_dir, seconds=0.05, crash_on=3)
    with pytest.raises(KeyboardInterrupt):
        _run(ctx, first, SqliteSaver(conn))
    done_before = {r["id"] for r in store_for(run_dir).candidates() if r["status"] is not None}
    assert done_before  # something was evaluated before the crash
    second = RecordingBackend(run_dir, seconds=0.05)
    final = _run(ctx, second, SqliteSaver(conn), resume=True)
    assert final["status"] == "max_rounds"
    assert not done_before & set(second.calls)  # nothing finished before the crash was evaluated again
    every = store_for(run_dir).candidates()
    assert all(r["status"] is not None for r in every)  # and nothing made was left unevaluated
    assert {r["round"] for r in every} == {1, 2, 3, 4}


def test_a_run_judged_on_two_gpu_models_says_so(tmp_path: Path) -> None:
    ctx = _ctx(tmp_path)
    run_dir = tmp_path / "runs" / "r1"
    backend = RecordingBackend(
        run_dir, seconds=0.01, device=lambda r: "NVIDIA H200" if r == 1 else "NVIDIA H100"
    )
    _run(ctx, backend)
    assert sorted(store_for(run_dir).get_meta("gpu_models")) == ["NVIDIA H100", "NVIDIA H200"]
    assert len(_events(run_dir, "mixed_gpu_models")) == 1
    placed = _events(run_dir, "placed")
    assert {e["device"] for e in placed} == {"NVIDIA H200", "NVIDIA H100"}
