"""How the judge spreads its timed calls over the sides of a comparison (profile_job.sampling_plan and
WorkloadTimer.run): a slow reference must not starve the kernels it is compared with of samples; and the
fixed cost subtracted from each side, timed beside its calls and held to the judge's wall clock."""

from __future__ import annotations

from collections import Counter

import pytest

from ksearch_agent.worker import profile_job
from ksearch_agent.worker.profile_job import (
    MAX_ROUNDS,
    MIN_ROUNDS,
    MIN_STRIDED_CALLS,
    WorkloadTimer,
    sampling_plan,
)

FIB_LIKE = {"candidate": 0.05, "reference": 50.0, "library": 0.03, "library_plan": 0.6}


def test_a_slow_reference_no_longer_caps_the_compared_sides_at_the_minimum_rounds() -> None:
    rounds, every = sampling_plan(FIB_LIKE, budget_ms=500.0)
    assert rounds == MAX_ROUNDS
    assert every["candidate"] == every["library"] == every["library_plan"] == 1


def test_a_slow_reference_is_still_called_at_least_the_minimum_number_of_times() -> None:
    rounds, every = sampling_plan(FIB_LIKE, budget_ms=500.0)
    assert len(range(0, rounds, every["reference"])) >= MIN_ROUNDS
    assert every["reference"] > 1


def test_a_reference_as_fast_as_the_candidate_is_called_every_round() -> None:
    rounds, every = sampling_plan({"candidate": 4.0, "reference": 4.0}, budget_ms=500.0)
    assert every == {"candidate": 1, "reference": 1}
    assert rounds == 125  # 500 ms of the candidate's time


def test_a_slow_candidate_keeps_the_minimum_rounds() -> None:
    rounds, _ = sampling_plan({"candidate": 400.0, "reference": 8.0}, budget_ms=500.0)
    assert rounds == MIN_ROUNDS


NULL_MS = {"null:candidate": 0.015, "null:judge": 0.011, "null:judge gated": 0.009}


class _ScriptedTimer(WorkloadTimer):
    """The real run loop with calls that take no GPU: each call is counted and reports its side's time (the
    empty calls their NULL_MS); a name in ``fail_after`` raises once it has been called that many times."""

    def __init__(
        self, times: dict[str, float], protocol: str = "flushed", fail_after: dict[str, int] | None = None
    ):
        self.times, self.calls, self.order = {**NULL_MS, **times}, Counter[str](), list[str]()
        self.failures = {}
        self.protocol = protocol
        self.gated = False
        self.fail_after = fail_after or {}

    def _one(self, name: str, checked: bool) -> float:
        if self.calls[name] >= self.fail_after.get(name, 10**9):
            raise profile_job.CallFailed("RUNTIME_ERROR", f"{name} lost")
        self.calls[name] += 1
        if checked:  # the timed rounds, not the warm-up
            self.order.append(name)
        return self.times[name]


def test_the_run_calls_the_reference_on_every_kth_round_and_the_kernels_on_all() -> None:
    wt = _ScriptedTimer(FIB_LIKE)
    samples = wt.run(list(FIB_LIKE), budget_ms=500.0)
    rounds, every = sampling_plan(FIB_LIKE, budget_ms=500.0)
    assert len(samples["candidate"]) == len(samples["library"]) == rounds
    assert len(samples["reference"]) == len(range(0, rounds, every["reference"]))


def test_the_reference_calls_are_spread_through_the_rounds_not_bunched() -> None:
    wt = _ScriptedTimer(FIB_LIKE)
    wt.run(list(FIB_LIKE), budget_ms=500.0)
    positions = [i for i, name in enumerate(wt.order) if name == "reference"]
    assert positions[0] < len(wt.order) // 10 and positions[-1] > len(wt.order) * 8 // 10


def test_rounds_cut_short_by_the_wall_cap_still_time_a_strided_reference_a_few_times(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(profile_job, "ROUNDS_WALL_S", 0.0)
    wt = _ScriptedTimer(FIB_LIKE)
    samples = wt.run(list(FIB_LIKE), budget_ms=500.0)
    assert len(samples["candidate"]) == MIN_ROUNDS
    assert len(samples["reference"]) == MIN_STRIDED_CALLS


def test_every_round_times_an_empty_call_through_each_contestant_and_the_judge() -> None:
    wt = _ScriptedTimer(FIB_LIKE)
    samples = wt.run(list(FIB_LIKE), budget_ms=500.0)
    rounds, _ = sampling_plan(FIB_LIKE, budget_ms=500.0)
    assert {n: len(v) for n, v in wt.null_samples.items()} == {"null:candidate": rounds, "null:judge": rounds}
    assert not any(n.startswith("null:") for n in samples)
    first_round = wt.order[: len(FIB_LIKE) + 2]
    assert "null:candidate" in first_round and "null:judge" in first_round


def test_behind_a_launch_gate_the_library_gets_the_gated_empty_calls_and_the_reference_the_spins() -> None:
    wt = _ScriptedTimer(FIB_LIKE)
    wt.gated = True
    wt.run(list(FIB_LIKE), budget_ms=500.0)
    rounds, _ = sampling_plan(FIB_LIKE, budget_ms=500.0)
    assert {n: len(v) for n, v in wt.null_samples.items()} == {
        "null:candidate": rounds,
        "null:judge": rounds,
        "null:judge gated": rounds,
    }
    assert wt.overhead_ms("library", 1.0) == NULL_MS["null:judge gated"]
    assert wt.overhead_ms("reference", 1.0) == wt.overhead_ms("library_plan", 1.0) == NULL_MS["null:judge"]


def test_the_fixed_cost_subtracted_is_the_one_timed_beside_the_calls_not_the_calibration() -> None:
    wt = _ScriptedTimer(FIB_LIKE)
    wt.run(list(FIB_LIKE), budget_ms=500.0)
    assert wt.overhead_ms("candidate", calibrated=0.039) == NULL_MS["null:candidate"]
    assert wt.overhead_ms("library", calibrated=0.02) == NULL_MS["null:judge"]
    assert wt.overhead_ms("reference", calibrated=0.02) == NULL_MS["null:judge"]


def test_a_contestant_whose_empty_calls_stop_keeps_its_calibration_and_no_failure_of_its_own() -> None:
    wt = _ScriptedTimer(FIB_LIKE, fail_after={"null:candidate": 2})
    samples = wt.run(list(FIB_LIKE), budget_ms=500.0)
    assert wt.overhead_ms("candidate", calibrated=0.039) == 0.039
    assert wt.failures == {} and len(samples["candidate"]) == len(samples["library"])


def test_gpumode_timing_makes_no_empty_calls() -> None:
    wt = _ScriptedTimer({"candidate": 0.05, "reference": 0.05}, protocol="gpumode")
    wt.run(["candidate", "reference"], budget_ms=500.0)
    assert wt.null_samples == {} and not any(n.startswith("null:") for n in wt.calls)


def test_a_side_that_drops_out_stops_its_empty_calls_and_the_others_go_on() -> None:
    wt = _ScriptedTimer(FIB_LIKE, fail_after={"candidate": 5})
    samples = wt.run(list(FIB_LIKE), budget_ms=500.0)
    assert "candidate" in wt.failures and "candidate" not in samples
    assert len(wt.null_samples["null:candidate"]) <= 3
    assert len(wt.null_samples["null:judge"]) == len(samples["library"]) > 10


def _player_with_walls(walls_ms: list[float], null_wall_ms: float) -> profile_job.Player:
    player = profile_job.Player("candidate", contestant=None, slab=None, timeout=1.0)  # type: ignore[arg-type]
    player.walls, player.null_wall_ms = walls_ms, null_wall_ms
    return player


def test_an_inflated_fixed_cost_cannot_shrink_a_long_call_past_the_wall_clock_check() -> None:
    player = _player_with_walls([10.5] * 20, null_wall_ms=0.5)  # the judge saw 10 ms beyond the fixed cost
    assert player.timing_problem([10.02] * 20, overhead_ms=0.02) is None
    problem = player.timing_problem([10.02] * 20, overhead_ms=8.0)  # empty calls that claimed 8 ms each
    assert problem is not None and "wall clock" in problem


def test_an_empty_call_counts_no_more_than_the_judges_wall_clock_saw() -> None:
    player = _player_with_walls([], null_wall_ms=0.0)
    player._ask = lambda message, expect: {"type": "timed", "ms": 50.0}  # type: ignore[method-assign]
    reported, wall = player.time_null("flushed")
    assert reported == wall < 50.0
