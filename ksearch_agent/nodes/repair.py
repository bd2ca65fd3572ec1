"""repair: the policy debugs a failed attempt, or speeds up a passing one, keeping the action's idea.

It sees what the coder saw (task, reference, the action's plan) plus what was measured for the last attempt
(per-workload table, compile statistics), and may call the tools through ``coder_tools`` like the coder;
``tools_for`` says whose conversation the tool results continue.
"""

from __future__ import annotations

from typing import Any, Literal

from langgraph.runtime import Runtime
from langgraph.types import Command

from ksearch_agent.context import SearchContext
from ksearch_agent.llm.usage import UsageLedger
from ksearch_agent.nodes.attempts import record_failure, submit_files
from ksearch_agent.nodes.common import PROMPT_REJECTED, emit, policy_for, rejection_reason, store_of, task_of
from ksearch_agent.policy import CoderTurn, RepairRequest
from ksearch_agent.search_logic import best_attempt
from ksearch_agent.state import SearchState
from ksearch_agent.world_model import WorldModel


def _last_files(state: SearchState) -> dict[str, str] | None:
    """The most recent attempt that produced files (a code-less failure has nothing to repair)."""
    store = store_of(state)
    for a in reversed(state.get("attempts", [])):
        if store.candidate_row(a["candidate_id"]) is not None:
            return store.load_candidate(a["candidate_id"]).files
    return None


def repair(
    state: SearchState, runtime: Runtime[SearchContext]
) -> Command[Literal["coder_tools", "evaluate", "repair", "world_model_update"]]:
    ctx = runtime.context or SearchContext()
    store, task = store_of(state), task_of(state)
    wm = WorldModel.model_validate(state["world_model"])
    ledger = UsageLedger.model_validate(state.get("usage") or {})
    attempts = state["attempts"]
    last = attempts[-1]
    parent = state.get("parent_candidate")
    returning = state.get("tools_for") == "repair"  # back from coder_tools: continue that conversation
    transcript = state.get("coder_transcript", []) if returning else []
    used = state.get("tool_calls_used", 0) if returning else 0
    best = best_attempt(attempts)
    req = RepairRequest(
        task=task,
        language=ctx.language,
        action=wm.node(state["action_id"] or ""),
        files=_last_files(state) or (store.load_candidate(parent).files if parent else {}),
        attempt=last,
        parent_speedup=state.get("parent_speedup"),
        report=store.get_evaluation(last["candidate_id"]),
        cycle_best_speedup=best["geomean_speedup"] if best else None,
        transcript=transcript,
        tool_budget=max(ctx.max_tool_calls - used, 0),
    )
    try:
        turn = policy_for(ctx, state).repair(req, ledger)
    except PROMPT_REJECTED as exc:
        turn = CoderTurn(error=rejection_reason("repair", exc))
    usage = ledger.model_dump()
    if turn.tool_calls:
        return Command(
            goto="coder_tools",
            update={
                "usage": usage,
                "tools_for": "repair",
                "coder_transcript": [*transcript, *turn.transcript],
                "pending_tool_calls": turn.tool_calls,
                "tool_calls_used": used,
            },
        )
    done: dict[str, Any] = {"usage": usage, "tools_for": None, "coder_transcript": [], "tool_calls_used": 0}
    if turn.exhausted:
        emit(
            state, "cycle_ended", action_id=state.get("action_id"), reason=f"no further repair: {turn.error}"
        )
        return Command(goto="world_model_update", update=done)
    if turn.files is not None:
        return submit_files(state, ctx, turn.files, "repair", done)
    return record_failure(state, ctx, "repair", turn.error or "no code", done)
