"""The per-action cycle's rules as plain functions: attempt allowance, stagnation window, what ends a cycle."""

from __future__ import annotations

import time
from typing import Any

from ksearch_agent.context import SearchContext
from ksearch_agent.results import CorrectnessResult, EvalReport, ProfileResult
from ksearch_agent.search_logic import (
    best_attempt,
    cycle_end_reason,
    is_improvement,
    next_after_attempt,
    repeat_attempt,
)
from ksearch_agent.state import Attempt, SearchState


def _att(status: str = "PASSED", speed: float | None = 1.5, cid: str = "c") -> Attempt:
    return Attempt(
        candidate_id=cid,
        origin="coder",
        status=status,
        geomean_speedup=speed,
        geomean_latency_ms=None,
        log="",
    )


def _state(attempts: list[Attempt], no_improve: int = 0, **kw: Any) -> SearchState:
    return SearchState(**{"attempts": attempts, "no_improve": no_improve, "started_at": time.time(), **kw})


CTX = SearchContext(max_attempts=5, stagnation_window=3)


def test_the_default_cycle_is_five_attempts_with_a_window_of_three() -> None:
    ctx = SearchContext()
    assert (ctx.max_attempts, ctx.stagnation_window) == (5, 3)


def test_a_failure_is_repaired_while_attempts_and_window_last() -> None:
    assert next_after_attempt(_state([_att("COMPILE_ERROR", None)], no_improve=1), CTX) == "repair"


def test_an_improving_measured_pass_is_pushed_further_by_repair() -> None:
    assert next_after_attempt(_state([_att("PASSED", 2.0)], no_improve=0), CTX) == "repair"


def test_the_cycle_ends_after_max_attempts() -> None:
    attempts = [_att("PASSED", 1.0 + i) for i in range(5)]
    assert cycle_end_reason(_state(attempts, no_improve=0), CTX) == "max_attempts"


def test_the_cycle_ends_after_the_stagnation_window_of_non_improving_attempts() -> None:
    attempts = [
        _att("PASSED", 2.0),
        _att("PASSED", 1.9),
        _att("INCORRECT_NUMERICAL", None),
        _att("REPEAT", None),
    ]
    assert cycle_end_reason(_state(attempts, no_improve=2), CTX) is None
    assert cycle_end_reason(_state(attempts, no_improve=3), CTX) == "stagnation"


def test_an_unverified_attempt_ends_the_cycle_without_a_repair() -> None:
    assert cycle_end_reason(_state([_att("UNVERIFIED", None)], no_improve=1), CTX) == (
        "unverified: correctness and speed cannot be measured here"
    )


def test_a_pass_whose_speed_cannot_be_measured_ends_the_cycle() -> None:
    assert next_after_attempt(_state([_att("PASSED", None)]), CTX) == "world_model_update"


def test_a_spent_budget_ends_the_cycle_first() -> None:
    ctx = SearchContext(max_attempts=5, stagnation_window=3, max_wall_s=1.0)
    state = _state([_att("COMPILE_ERROR", None)], started_at=time.time() - 10)
    assert cycle_end_reason(state, ctx) == "wall_time"


def _report(status: str = "PASSED", speed: float | None = 1.7) -> EvalReport:
    return EvalReport(
        task="rmsnorm",
        candidate_id="old",
        language="triton",
        status=status,  # type: ignore[arg-type]
        correctness=CorrectnessResult(status=status, checked="gpu", device="H100"),  # type: ignore[arg-type]
        profile=ProfileResult(measured=True, geomean_speedup=speed),
    )


def test_a_repeat_names_the_earlier_candidate_and_its_verdict() -> None:
    row = {"round": 1, "attempt": 2, "origin": "repair"}
    a = repeat_attempt(_report(), "repair", row)
    assert a["status"] == "REPEAT" and a["repeat_of"] == "old"
    assert "round 1, attempt 2 (repair)" in a["log"] and "PASSED at 1.700x" in a["log"]


def test_a_repeat_of_a_pass_is_neither_an_improvement_nor_the_cycle_best() -> None:
    repeat = repeat_attempt(_report(), "coder", {"origin": "seed"})
    assert not is_improvement([], repeat)
    assert best_attempt([repeat]) is None
