"""repair: the policy debugs a failed attempt, or speeds up a slower one, keeping the action's idea."""

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
from ksearch_agent.policy import CoderTurn, RepairRequest
from ksearch_agent.search_logic import failed_attempt, next_after_attempt
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
) -> Command[Literal["evaluate", "repair", "world_model_update"]]:
    ctx = runtime.context or SearchContext()
    store, task = store_of(state), task_of(state)
    wm = WorldModel.model_validate(state["world_model"])
    action = wm.node(state["action_id"] or "")
    ledger = UsageLedger.model_validate(state.get("usage") or {})
    last = state["attempts"][-1]
    parent = state.get("parent_candidate")
    files = _last_files(state) or (store.load_candidate(parent).files if parent else {})
    req = RepairRequest(
        task=task,
        language=ctx.language,
        action=action,
        files=files,
        attempt=last,
        parent_speedup=state.get("parent_speedup"),
    )
    try:
        turn = policy_for(ctx, state).repair(req, ledger)
    except Exception as exc:
        if is_retryable(exc) or isinstance(exc, EndpointError):  # EndpointError: the run stops, exit 3
            raise
        reason = (
            "the prompt exceeded the model's context length" if is_context_length_error(exc) else str(exc)
        )
        turn = CoderTurn(error=f"the repair model call failed: {type(exc).__name__}: {reason}"[:2000])
    usage = ledger.model_dump()
    attempt_no = len(state["attempts"]) + 1
    if turn.files is not None:
        try:
            cand = candidate_from_files(turn.files, ctx.language)
        except ValueError as exc:
            turn = CoderTurn(error=str(exc))
        else:
            store.save_candidate(
                cand,
                round=state.get("round", 0),
                action_node=action.id,
                parent_id=state.get("parent_candidate"),
                origin="repair",
                attempt=attempt_no,
            )
            emit(state, "candidate", candidate_id=cand.id, origin="repair", attempt=attempt_no)
            return Command(
                goto="evaluate", update={"pending": cand.id, "pending_origin": "repair", "usage": usage}
            )
    attempt = failed_attempt(
        f"none-{state.get('round', 0)}-{attempt_no}", "repair", "COMPILE_ERROR", turn.error or "no code"
    )
    emit(state, "attempt_failed", origin="repair", log=attempt["log"][:300])
    update = {
        "attempts": [*state["attempts"], attempt],
        "no_improve": state.get("no_improve", 0) + 1,
        "usage": usage,
    }
    return Command(goto=next_after_attempt({**state, **update}, ctx), update=update)  # type: ignore[typeddict-item]
