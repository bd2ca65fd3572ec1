"""world_model_update: attach the cycle's best passing attempt (or, where nothing could be measured, its
unverified kernel; else mark the action too hard), then let the policy revise the tree with a validated
edit script, from the prediction against per-workload evidence; snapshot everything."""

from __future__ import annotations

from typing import Literal

from langgraph.runtime import Runtime
from langgraph.types import Command

from ksearch_agent.context import SearchContext
from ksearch_agent.llm.redact import redact
from ksearch_agent.llm.usage import UsageLedger
from ksearch_agent.nodes.common import PROMPT_REJECTED, emit, policy_for, store_of, task_of
from ksearch_agent.policy import CycleOutcome
from ksearch_agent.results import EvalReport
from ksearch_agent.search_logic import best_attempt
from ksearch_agent.state import SearchState
from ksearch_agent.world_model import Solution, WorldModel


def world_model_update(state: SearchState, runtime: Runtime[SearchContext]) -> Command[Literal["planner"]]:
    ctx = runtime.context or SearchContext()
    store, task = store_of(state), task_of(state)
    wm = WorldModel.model_validate(state["world_model"])
    action_id = state["action_id"] or ""
    attempts = state.get("attempts", [])
    best = best_attempt(attempts)
    unverified = [a for a in attempts if a["status"] == "UNVERIFIED"]
    if best is not None:
        wm.attach_solution(
            action_id,
            Solution(
                candidate_id=best["candidate_id"],
                geomean_speedup=best["geomean_speedup"],
                geomean_latency_ms=best["geomean_latency_ms"],
                round=state.get("round", 0),
            ),
        )
    elif unverified:
        wm.attach_unverified(action_id, unverified[-1]["candidate_id"], state.get("round", 0))
    else:
        reason = (
            attempts[-1]["log"].splitlines()[0][:200]
            if attempts and attempts[-1]["log"]
            else "no attempt passed"
        )
        wm.mark_too_hard(action_id, reason)
    ledger = UsageLedger.model_validate(state.get("usage") or {})
    reports: dict[str, EvalReport] = {}
    for a in attempts:
        if (evaluation := store.get_evaluation(a["candidate_id"])) is not None:
            reports[a["candidate_id"]] = evaluation
    outcome = CycleOutcome(
        action=wm.node(action_id),
        parent_speedup=state.get("parent_speedup"),
        attempts=attempts,
        best=best,
        language=ctx.language,
        reports=reports,
    )
    try:
        ops, problems = policy_for(ctx, state).update_world_model(task, wm, outcome, ledger)
    except PROMPT_REJECTED as exc:
        reason = redact(f"{type(exc).__name__}: {exc}")  # the server's words: a key it repeats is masked
        ops, problems = [], [f"world-model update failed, tree left as it was: {reason}"]
    report = wm.apply(ops, max_inserts=3)
    dropped = [*problems, *report.dropped]
    store.save_snapshot(state.get("round", 0), wm.snapshot(), f"after action {action_id}")
    store.save_usage(state.get("round", 0), ledger.model_dump())
    emit(
        state,
        "world_model_updated",
        action_id=action_id,
        solved=best is not None,
        unverified=best is None and bool(unverified),
        applied=report.applied,
        dropped=dropped,
        tokens=ledger.total_tokens,
        cost_usd=ledger.cost_usd,
        cost=ledger.cost_label,
    )
    return Command(goto="planner", update={"world_model": wm.snapshot(), "usage": ledger.model_dump()})
