"""coder: the policy implements the chosen action (possibly calling tools first); the files are stored."""

from __future__ import annotations

from typing import Literal

from langgraph.runtime import Runtime
from langgraph.types import Command

from ksearch_agent.coder_tools import candidate_from_files
from ksearch_agent.context import SearchContext
from ksearch_agent.llm.chat import is_context_length_error, is_retryable
from ksearch_agent.llm.endpoint import EndpointError
from ksearch_agent.llm.usage import UsageLedger
from ksearch_agent.nodes.common import emit, policy_for, store_of, task_of
from ksearch_agent.policy import CodeRequest, CoderTurn
from ksearch_agent.search_logic import failed_attempt, next_after_attempt
from ksearch_agent.state import SearchState
from ksearch_agent.world_model import WorldModel


def coder(
    state: SearchState, runtime: Runtime[SearchContext]
) -> Command[Literal["coder_tools", "evaluate", "repair", "world_model_update"]]:
    ctx = runtime.context or SearchContext()
    store, task = store_of(state), task_of(state)
    wm = WorldModel.model_validate(state["world_model"])
    action = wm.node(state["action_id"] or "")
    parent_files = (
        store.load_candidate(state.get("parent_candidate") or "").files
        if state.get("parent_candidate")
        else None
    )
    ledger = UsageLedger.model_validate(state.get("usage") or {})
    budget = max(ctx.max_tool_calls - state.get("tool_calls_used", 0), 0)
    req = CodeRequest(
        task=task,
        language=ctx.language,
        action=action,
        parent_files=parent_files,
        parent_speedup=state.get("parent_speedup"),
        transcript=state.get("coder_transcript", []),
        tool_budget=budget,
    )
    try:
        turn = policy_for(ctx, state).coder_turn(req, ledger)
    except Exception as exc:
        if is_retryable(exc) or isinstance(exc, EndpointError):  # EndpointError: the run stops, exit 3
            raise  # the node's RetryPolicy backs off and tries again
        reason = (
            "the prompt exceeded the model's context length" if is_context_length_error(exc) else str(exc)
        )
        turn = CoderTurn(error=f"the coder's model call failed: {type(exc).__name__}: {reason}"[:2000])
    usage = ledger.model_dump()
    if turn.tool_calls:
        return Command(
            goto="coder_tools",
            update={
                "usage": usage,
                "coder_transcript": [*state.get("coder_transcript", []), *turn.transcript],
                "pending_tool_calls": turn.tool_calls,
            },
        )
    attempt_no = len(state.get("attempts", [])) + 1
    if turn.files is None:
        attempt = failed_attempt(
            f"none-{state.get('round', 0)}-{attempt_no}", "coder", "COMPILE_ERROR", turn.error or "no code"
        )
        emit(state, "attempt_failed", origin="coder", log=attempt["log"][:300])
        new_state: SearchState = {
            **state,
            "attempts": [*state.get("attempts", []), attempt],
            "no_improve": state.get("no_improve", 0) + 1,
            "usage": usage,
        }
        return Command(
            goto=next_after_attempt(new_state, ctx),
            update={  # type: ignore[arg-type]
                "attempts": new_state["attempts"],
                "no_improve": new_state["no_improve"],
                "usage": usage,
            },
        )
    try:
        cand = candidate_from_files(turn.files, ctx.language)
    except ValueError as exc:
        attempt = failed_attempt(
            f"none-{state.get('round', 0)}-{attempt_no}", "coder", "COMPILE_ERROR", str(exc)
        )
        new_state = {
            **state,
            "attempts": [*state.get("attempts", []), attempt],
            "no_improve": state.get("no_improve", 0) + 1,
        }
        return Command(
            goto=next_after_attempt(new_state, ctx),
            update={  # type: ignore[arg-type]
                "attempts": new_state["attempts"],
                "no_improve": new_state["no_improve"],
                "usage": usage,
            },
        )
    store.save_candidate(
        cand,
        round=state.get("round", 0),
        action_node=action.id,
        parent_id=state.get("parent_candidate"),
        origin="coder",
        attempt=attempt_no,
    )
    emit(state, "candidate", candidate_id=cand.id, origin="coder", attempt=attempt_no)
    return Command(goto="evaluate", update={"pending": cand.id, "pending_origin": "coder", "usage": usage})
