"""dispatch, cycle_done, absorb: the nodes of the parallel search around the unchanged cycle nodes.

``dispatch`` sends the planner's action and up to K-1 more open actions of the frontier to their own
``cycle`` branch (LangGraph ``Send``); each branch is the coder → evaluate → repair cycle ending in
``cycle_done``, which hands back what the cycle found. ``absorb`` then folds the finished cycles into the
world model one per step, lowest round first, through the usual ``world_model_update`` node, so the tree
evolves the same way whatever order the branches ended in.
"""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime
from langgraph.types import Command, Overwrite, Send

from ksearch_agent.backends import slots_wanted
from ksearch_agent.context import SearchContext
from ksearch_agent.nodes.common import emit
from ksearch_agent.nodes.world_model_update import world_model_update
from ksearch_agent.parallel_logic import add_usage_delta, better_best, companions, cycle_parent, next_finished
from ksearch_agent.state import SearchState
from ksearch_agent.world_model import WorldModel

CYCLE_KEYS = ("round", "action_id", "parent_candidate", "parent_speedup", "attempts", "best", "usage")
"""What a finished cycle hands back (plus ``base_usage``, the ledger it started from)."""

_FRESH_CYCLE: dict[str, Any] = {
    "attempts": [],
    "no_improve": 0,
    "pending": None,
    "pending_origin": "coder",
    "pending_repeat": False,
    "tools_for": None,
    "pending_tool_calls": [],
    "coder_transcript": [],
    "tool_calls_used": 0,
}


def _branch(state: dict[str, Any], **cycle: Any) -> dict[str, Any]:
    shared = {k: v for k, v in state.items() if k in SearchState.__annotations__ and k != "messages"}
    return {**shared, **_FRESH_CYCLE, **cycle, "cycle_base_usage": state.get("usage") or {}}


def dispatch(state: dict[str, Any], runtime: Runtime[SearchContext]) -> Command[Any]:
    ctx = runtime.context or SearchContext()
    k = ctx.parallel if ctx.parallel is not None else slots_wanted(ctx)
    wm = WorldModel.model_validate(state["world_model"])
    first_round = state.get("round", 0)
    extra = companions(wm, state["action_id"] or "", k, ctx.max_difficulty, ctx.max_rounds - first_round)
    sends = [Send("cycle", _branch(state))]
    for i, node in enumerate(extra, start=1):
        fields = cycle_parent(wm, node, state.get("seed_candidate"))
        assert node.action is not None
        emit(
            {**state, "round": first_round + i},  # type: ignore[typeddict-item]
            "cycle_start",
            action_id=node.id,
            title=node.action.title,
            parent_candidate=fields["parent_candidate"],
            score=node.action.score,
            difficulty=node.action.difficulty,
        )
        sends.append(Send("cycle", _branch(state, round=first_round + i, action_id=node.id, **fields)))
    return Command(goto=sends, update={"round": first_round + len(extra)})


def cycle_done(state: dict[str, Any]) -> dict[str, Any]:
    """End of a branch: what the cycle tried and found, for ``absorb``."""
    finished = {k: state.get(k) for k in CYCLE_KEYS}
    finished["base_usage"] = state.get("cycle_base_usage") or {}
    finished["unverified"] = state.get("unverified") or []
    return {"finished_cycles": [finished]}


def absorb(state: dict[str, Any], runtime: Runtime[SearchContext]) -> Command[Any]:
    """Fold the lowest-round finished cycle into the world model, the run's usage and its best kernel."""
    cycle, rest = next_finished(state.get("finished_cycles") or [])
    usage = add_usage_delta(state.get("usage") or {}, cycle["base_usage"], cycle["usage"] or {})
    best = better_best(state.get("best"), cycle["best"])
    update: dict[str, Any] = {"usage": usage, "best": best, "finished_cycles": Overwrite(rest)}
    known = state.get("unverified") or []
    if new := [c for c in cycle.get("unverified") or [] if c not in known]:
        update["unverified"] = [
            *known,
            *new,
        ]  # compiled but unmeasurable here, as the sequential run lists them
    wm = WorldModel.model_validate(state["world_model"])
    if cycle["action_id"] in wm.nodes:
        cycle_state = {**state, **{k: cycle[k] for k in CYCLE_KEYS}, "usage": usage, "best": best}
        result = world_model_update(cycle_state, runtime)  # type: ignore[arg-type]
        update.update({k: v for k, v in (result.update or {}).items() if k in ("world_model", "usage")})
    else:  # an earlier cycle's update removed this action from the tree
        emit(
            {**state, "round": cycle["round"]},  # type: ignore[typeddict-item]
            "cycle_dropped",
            action_id=cycle["action_id"],
            reason="the action left the tree before its cycle was folded in; its candidates stay stored",
        )
    return Command(goto="absorb" if rest else "planner", update=update)
