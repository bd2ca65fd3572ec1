"""The bookkeeping of parallel cycles as plain functions: which actions go out together, how a finished
cycle's usage and best kernel fold back into the run, and the order finished cycles are taken in.

Kept apart from the nodes (``dispatch``, ``cycle_done``, ``absorb``) so each rule is testable on its own.
"""

from __future__ import annotations

from typing import Any

from ksearch_agent.llm.usage import NodeUsage, UsageLedger
from ksearch_agent.world_model import Node, WorldModel


def companions(wm: WorldModel, first: str, k: int, max_difficulty: int, rounds_left: int) -> list[Node]:
    """Open actions to work beside ``first`` (the planner's pick): the next ones of the frontier, best
    first, at most ``k - 1`` and at most ``rounds_left`` (each cycle is a round of the budget)."""
    room = max(0, min(k - 1, rounds_left))
    return [n for n in wm.frontier(max_difficulty) if n.id != first][:room]


def cycle_parent(wm: WorldModel, node: Node, seed_candidate: str | None) -> dict[str, Any]:
    """The kernel a cycle starts from: its parent's solution, else the run's seed (as the planner does)."""
    parent = wm.node(node.parent or "root")
    return {
        "parent_candidate": parent.solution.candidate_id if parent.solution else seed_candidate,
        "parent_speedup": parent.solution.geomean_speedup if parent.solution else None,
    }


def add_usage_delta(total: dict[str, Any], before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """``total`` plus what a cycle spent (its ledger ``after`` minus the ledger ``before`` it started with):
    cycles run side by side from the same ledger, so only their own calls are added."""
    out = UsageLedger.model_validate(total or {})
    b = UsageLedger.model_validate(before or {}).by_node
    for node, usage in UsageLedger.model_validate(after or {}).by_node.items():
        prev = b.get(node, NodeUsage())
        entry = out.by_node.setdefault(node, NodeUsage())
        entry.calls += usage.calls - prev.calls
        entry.input_tokens += usage.input_tokens - prev.input_tokens
        entry.output_tokens += usage.output_tokens - prev.output_tokens
        entry.unpriced_calls += usage.unpriced_calls - prev.unpriced_calls
        spent = (usage.cost_usd or 0.0) - (prev.cost_usd or 0.0)
        if usage.cost_usd is not None and (spent or entry.cost_usd is not None):
            entry.cost_usd = (entry.cost_usd or 0.0) + spent
    return out.model_dump()


def better_best(current: dict[str, Any] | None, challenger: dict[str, Any] | None) -> dict[str, Any] | None:
    """The run's best after a cycle: the cycle's best replaces the current one only when strictly faster
    (a first passing kernel always counts), so ties keep the earlier round's kernel."""
    if challenger is None:
        return current
    if current is None:
        return challenger
    if challenger.get("candidate_id") == current.get("candidate_id"):
        return current
    return (
        challenger
        if (challenger.get("geomean_speedup") or 0.0) > (current.get("geomean_speedup") or 0.0)
        else current
    )


def next_finished(cycles: list[dict[str, Any]]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The finished cycle to fold in next (lowest round, whatever order the branches ended in) and the rest."""
    ordered = sorted(cycles, key=lambda c: (c["round"], c["action_id"]))
    return ordered[0], ordered[1:]
