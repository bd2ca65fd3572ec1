"""planner: set the run up, keep the frontier stocked, pick the next action deterministically, or stop.

The decisions live in ``run_setup`` and ``planning``; this node only sequences them and routes.
"""

from __future__ import annotations

from typing import Any, Literal

from langgraph.runtime import Runtime
from langgraph.types import Command

from ksearch_agent.context import SearchContext
from ksearch_agent.llm.chat import ModelNotConfigured
from ksearch_agent.llm.usage import UsageLedger
from ksearch_agent.llm_policy import PolicyError
from ksearch_agent.nodes.common import emit, policy_for, store_of, task_of
from ksearch_agent.planning import choose_next, cycle_start, initial_tree, stock_frontier
from ksearch_agent.run_setup import RunSetupError, continue_run, new_run
from ksearch_agent.search_logic import stop_reason
from ksearch_agent.state import SearchState
from ksearch_agent.task import TaskFileError
from ksearch_agent.world_model import WorldModel

Route = Command[Literal["coder", "confirm_best", "__end__"]]


def _finish(state: SearchState, status: str, extra: dict[str, Any]) -> Route:
    """End the search through ``confirm_best``; ``extra`` (setup keys, usage) goes in first so the final
    fields win."""
    wm = WorldModel.model_validate(state["world_model"]) if state.get("world_model") else WorldModel.new()
    return Command(
        goto="confirm_best",
        update={**extra, "best": state.get("best"), "status": status, "world_model": wm.snapshot()},
    )


def _setup_failed(exc: Exception) -> Route:
    return Command(
        goto="__end__",
        update={
            "status": f"error: {exc}",
            "world_model": WorldModel.new().snapshot(),
            "best": None,
            "eval_summary": None,
            "lineage": [],
            "run_dir": "",
        },
    )


def planner(state: SearchState, runtime: Runtime[SearchContext]) -> Route:
    ctx = runtime.context or SearchContext()
    setup: dict[str, Any] = {}
    if not state.get("run_dir"):
        try:
            setup = (
                continue_run(str(state["continue_run"]))
                if state.get("continue_run")
                else new_run(state, ctx, task_of(state))
            )
        except (TaskFileError, RunSetupError) as exc:
            return _setup_failed(exc)
        state = {**state, **setup}  # type: ignore[typeddict-item]
    task = task_of(state)
    ledger = UsageLedger.model_validate(state.get("usage") or {})
    if state.get("world_model") and (early := stop_reason(state, ctx)) is not None:
        return _finish(state, early, setup)
    try:
        policy = policy_for(ctx, state)
        if not state.get("world_model"):
            wm = initial_tree(policy, task, ctx.language, ledger, store_of(state))
            emit(
                state, "world_model_initialised", nodes=len(wm.nodes) - 1, open_actions=len(wm.open_actions())
            )
        else:
            wm = WorldModel.model_validate(state["world_model"])
        stocked = stock_frontier(
            policy,
            task,
            ctx.language,
            wm,
            ledger,
            round_no=state.get("round", 0),
            max_difficulty=ctx.max_difficulty,
        )
        if stocked is not None:
            emit(state, "actions_proposed", inserted=stocked.inserted_ids, dropped=stocked.dropped)
    except (ModelNotConfigured, PolicyError) as exc:
        usage = ledger.model_dump()
        return _finish({**state, "usage": usage}, f"error: {exc}", {**setup, "usage": usage})  # type: ignore[typeddict-item]
    usage = ledger.model_dump()
    state = {**state, "world_model": wm.snapshot(), "usage": usage}  # type: ignore[typeddict-item]
    reason = stop_reason(state, ctx)
    choice = choose_next(wm, ctx.max_difficulty, state.get("seed_candidate")) if reason is None else None
    if choice is None:
        return _finish(state, reason or "frontier_exhausted", {**setup, "usage": usage})
    round_no = state.get("round", 0) + 1
    assert choice.action.action is not None
    emit(
        {**state, "round": round_no},  # type: ignore[typeddict-item]
        "cycle_start",
        action_id=choice.action.id,
        title=choice.action.action.title,
        parent_candidate=choice.parent_candidate,
        score=choice.action.action.score,
        difficulty=choice.action.action.difficulty,
    )
    return Command(
        goto="coder",
        update={**setup, "world_model": wm.snapshot(), "usage": usage, **cycle_start(choice, round_no)},
    )
