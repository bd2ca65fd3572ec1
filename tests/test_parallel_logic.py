"""The rules of parallel cycles: which actions go out together, the order finished cycles are folded in,
how their LLM usage adds up, and which best kernel stands."""

from __future__ import annotations

from ksearch_agent.parallel_logic import add_usage_delta, better_best, companions, cycle_parent, next_finished
from ksearch_agent.world_model import Solution, WorldModel


def _tree() -> WorldModel:
    wm = WorldModel.new()
    for i, score in enumerate((0.9, 0.7, 0.5, 0.3)):
        wm.add_node(
            "root",
            f"idea {i}",
            action={"title": f"a{i}", "difficulty": 1, "score": score, "expected_speedup": 1.5},
        )
    return wm


def test_companions_are_the_next_best_open_actions_within_k_and_the_rounds_left() -> None:
    wm = _tree()
    first = wm.select().id  # type: ignore[union-attr]
    assert [n.action.title for n in companions(wm, first, 3, 4, rounds_left=10)] == ["a1", "a2"]  # type: ignore[union-attr]
    assert [n.action.title for n in companions(wm, first, 3, 4, rounds_left=1)] == ["a1"]  # type: ignore[union-attr]
    assert companions(wm, first, 1, 4, rounds_left=10) == []


def test_a_cycle_starts_from_its_parent_s_solution_or_the_seed() -> None:
    wm = _tree()
    a0 = wm.select()
    assert a0 is not None
    wm.attach_solution(
        a0.id, Solution(candidate_id="c0", geomean_speedup=2.0, geomean_latency_ms=1.0, round=1)
    )
    child = wm.node(
        wm.add_node(
            a0.id, "refine", action={"title": "r", "difficulty": 1, "score": 0.5, "expected_speedup": 1.1}
        )
    )
    assert cycle_parent(wm, child, "seed") == {"parent_candidate": "c0", "parent_speedup": 2.0}
    root_action = wm.node(companions(wm, a0.id, 2, 4, 5)[0].id)
    assert cycle_parent(wm, root_action, "seed") == {"parent_candidate": "seed", "parent_speedup": None}


def test_finished_cycles_are_taken_lowest_round_first_whatever_order_they_ended_in() -> None:
    cycles = [
        {"round": 3, "action_id": "n3"},
        {"round": 1, "action_id": "n1"},
        {"round": 2, "action_id": "n2"},
    ]
    first, rest = next_finished(cycles)
    assert first["round"] == 1 and [c["round"] for c in rest] == [2, 3]


def test_usage_adds_what_each_cycle_spent_beyond_the_ledger_it_started_from() -> None:
    base = {"by_node": {"planner": {"calls": 1, "input_tokens": 100, "output_tokens": 10, "cost_usd": 0.01}}}
    one = {
        "by_node": {
            **base["by_node"],
            "coder": {"calls": 2, "input_tokens": 50, "output_tokens": 5, "cost_usd": 0.002},
        }
    }
    two = {
        "by_node": {
            "planner": base["by_node"]["planner"],
            "coder": {"calls": 1, "input_tokens": 20, "output_tokens": 2, "cost_usd": 0.001},
        }
    }
    total = add_usage_delta(add_usage_delta(base, base, one), base, two)
    assert total["by_node"]["planner"]["calls"] == 1  # counted once, not once per branch
    assert total["by_node"]["coder"]["calls"] == 3 and total["by_node"]["coder"]["input_tokens"] == 70
    assert abs(total["by_node"]["coder"]["cost_usd"] - 0.003) < 1e-12


def test_a_cycle_s_best_replaces_the_run_s_only_when_strictly_faster() -> None:
    a = {"candidate_id": "a", "geomean_speedup": 1.5}
    b = {"candidate_id": "b", "geomean_speedup": 1.5}
    c = {"candidate_id": "c", "geomean_speedup": 1.6}
    assert better_best(None, a) is a
    assert better_best(a, None) is a
    assert better_best(a, b) is a  # a tie keeps the earlier round's kernel
    assert better_best(a, c) is c
