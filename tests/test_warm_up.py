"""How long the judge warms a player up before timing it (ksearch_agent.worker.profile_job.warm_up)."""

from __future__ import annotations

from ksearch_agent.worker.profile_job import WARMUP_MAX_CALLS, WARMUP_MS, warm_up


class _Clock:
    """A wall clock that each timed call advances by ``wall_per_call`` seconds."""

    def __init__(self, wall_per_call: float) -> None:
        self.now, self.wall_per_call, self.calls = 0.0, wall_per_call, 0

    def __call__(self) -> float:
        return self.now

    def call(self, ms: float) -> float:
        self.now += self.wall_per_call
        self.calls += 1
        return ms


def test_warm_up_times_its_target_when_calls_are_cheap_to_make() -> None:
    clock = _Clock(wall_per_call=0.001)
    assert warm_up(lambda: clock.call(10.0), clock) == 10.0
    assert clock.calls == int(WARMUP_MS / 10.0)


def test_warm_up_stops_at_its_wall_budget_when_fresh_inputs_dwarf_the_call() -> None:
    clock = _Clock(wall_per_call=0.004)  # a 0.09 ms call whose 1 GB of fresh inputs take 4 ms to make
    warm_up(lambda: clock.call(0.09), clock)
    assert 200 <= clock.calls <= 260 < WARMUP_MAX_CALLS


def test_warm_up_makes_three_calls_even_when_one_outlasts_the_budgets() -> None:
    clock = _Clock(wall_per_call=5.0)
    warm_up(lambda: clock.call(500.0), clock)
    assert clock.calls == 3


def test_a_player_that_fails_while_warming_up_has_no_probe_time() -> None:
    results = iter([0.5, None, 0.5])
    assert warm_up(lambda: next(results)) is None
