"""The local backend: slots evaluate side by side, each result on its own candidate, a failed slot is a
status, and a profile holds its GPU alone while correctness checks share it."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from fake_evaluator import SlowEvaluator, fake_candidate, speed_of

from ksearch_agent.backends.lease import GpuLease
from ksearch_agent.backends.local import LeasedEngine, LocalBackend
from ksearch_agent.engine import Engine
from ksearch_agent.task import load_task

TASK = load_task("rmsnorm")


def _evaluate_all(backend: LocalBackend, speeds: list[float]) -> tuple[float, list[Any]]:
    cands = [fake_candidate(s) for s in speeds]
    t0 = time.perf_counter()
    with ThreadPoolExecutor(len(cands)) as pool:
        placed = list(pool.map(lambda c: backend.evaluate(TASK, c, trials=1), cands))
    return time.perf_counter() - t0, list(zip(cands, placed, strict=True))


def test_two_slots_take_half_the_wall_time_of_one() -> None:
    one = LocalBackend([("s0", SlowEvaluator(0.4))])
    two = LocalBackend([("s0", SlowEvaluator(0.4)), ("s1", SlowEvaluator(0.4))])
    serial, _ = _evaluate_all(one, [1.0, 1.1, 1.2, 1.3])
    parallel, _ = _evaluate_all(two, [1.0, 1.1, 1.2, 1.3])
    assert serial >= 1.6
    assert parallel < 0.65 * serial


def test_every_result_lands_on_its_own_candidate() -> None:
    backend = LocalBackend([(f"s{i}", SlowEvaluator(0.05 * (i + 1))) for i in range(3)])
    _, rows = _evaluate_all(backend, [1.0 + i / 10 for i in range(9)])
    for cand, placed in rows:
        assert placed.report.candidate_id == cand.id
        assert placed.report.profile is not None
        assert placed.report.profile.geomean_speedup == speed_of(cand)
    assert {p.slot for _, p in rows} == {"s0", "s1", "s2"}


def test_a_slot_that_fails_mid_evaluation_gives_a_status_and_the_backend_goes_on() -> None:
    backend = LocalBackend([("s0", SlowEvaluator(0.01))])
    lost = backend.evaluate(TASK, fake_candidate(2.0, "RAISE_IN_SLOT = 1"))
    assert lost.report.status == "RUNTIME_ERROR"
    assert "evaluation lost" in lost.report.correctness.note and "s0" in lost.report.correctness.note
    after = backend.evaluate(TASK, fake_candidate(3.0))
    assert after.report.status == "PASSED"


def test_the_gpu_name_is_recorded_per_evaluation() -> None:
    backend = LocalBackend(
        [("s0", SlowEvaluator(0.01, device="NVIDIA H200")), ("s1", SlowEvaluator(0.01, device="NVIDIA H100"))]
    )
    _, rows = _evaluate_all(backend, [1.0, 2.0, 3.0, 4.0])
    assert {p.device for _, p in rows} <= {"NVIDIA H200", "NVIDIA H100"}
    assert all(p.device == p.report.profile.device for _, p in rows)  # type: ignore[union-attr]


def test_a_profile_waits_for_running_checks_and_holds_the_gpu_alone() -> None:
    lease = GpuLease()
    log: list[str] = []
    inside = {"checks": 0, "profiles": 0}
    lock = threading.Lock()
    overlaps: list[str] = []

    def work(kind: str, seconds: float) -> None:
        ctx = lease.exclusive() if kind == "profile" else lease.shared()
        with ctx:
            with lock:
                inside[kind + "s"] += 1
                if inside["profiles"] > 1 or (inside["profiles"] and inside["checks"]):
                    overlaps.append(f"{kind} overlapped {dict(inside)}")
                log.append(f"start {kind}")
            time.sleep(seconds)
            with lock:
                inside[kind + "s"] -= 1

    threads = [threading.Thread(target=work, args=("check", 0.3)) for _ in range(2)]
    threads += [threading.Thread(target=work, args=("profile", 0.1)) for _ in range(2)]
    threads += [threading.Thread(target=work, args=("check", 0.1))]
    t0 = time.perf_counter()
    for i, t in enumerate(threads):
        t.start()
        time.sleep(0.02 if i < 2 else 0.05)
    for t in threads:
        t.join()
    assert overlaps == []
    assert log[:2] == ["start check", "start check"]  # checks share the GPU
    assert log[2:4] == ["start profile", "start profile"]  # the late check waited behind the profiles
    assert time.perf_counter() - t0 < 1.5


def test_a_leased_engine_checks_under_the_shared_lease_and_profiles_under_the_exclusive_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    lease = GpuLease()
    seen: dict[str, tuple[int, bool]] = {}

    def fake_correctness(self: Engine, *args: Any, **kwargs: Any) -> str:
        seen["correctness"] = (lease._readers, lease._writer)
        return "checked"

    def fake_profile(self: Engine, *args: Any, **kwargs: Any) -> str:
        seen["profile"] = (lease._readers, lease._writer)
        return "timed"

    monkeypatch.setattr(Engine, "run_correctness", fake_correctness)
    monkeypatch.setattr(Engine, "profile", fake_profile)
    with LeasedEngine(lease, device="cpu") as engine:
        assert engine.run_correctness(TASK, fake_candidate(1.0)) == "checked"
        assert engine.profile(TASK, fake_candidate(1.0)) == "timed"
    assert seen == {"correctness": (1, False), "profile": (0, True)}
