"""What coder and repair do with an answer: store its files as a candidate and send it to evaluate, or record
an attempt without code; and where the cycle goes after an attempt.

A candidate's id is the hash of its code, so an answer that reproduces an earlier, evaluated candidate is
sent on marked as a repeat: evaluate records it as such instead of filing it under the old candidate.
"""

from __future__ import annotations

from typing import Any, Literal

from langgraph.types import Command

from ksearch_agent.coder_tools import candidate_from_files
from ksearch_agent.context import SearchContext
from ksearch_agent.nodes.common import emit, store_of
from ksearch_agent.search_logic import cycle_end_reason, failed_attempt
from ksearch_agent.state import SearchState

AfterAttempt = Literal["repair", "world_model_update"]
# The helpers return Command[Any] (Command is invariant in its goto type): a failure goes to repair or
# world_model_update, a submission to evaluate; each node's own return type names all its targets.


def route_after_attempt(state: SearchState, ctx: SearchContext) -> AfterAttempt:
    """Repair, or end the cycle (saying why in the event log)."""
    reason = cycle_end_reason(state, ctx)
    if reason is None:
        return "repair"
    emit(state, "cycle_ended", action_id=state.get("action_id"), reason=reason)
    return "world_model_update"


def record_failure(
    state: SearchState, ctx: SearchContext, origin: str, log: str, update: dict[str, Any]
) -> Command[Any]:
    """An attempt that produced no runnable code: a non-improving COMPILE_ERROR attempt."""
    attempt_no = len(state.get("attempts", [])) + 1
    attempt = failed_attempt(f"none-{state.get('round', 0)}-{attempt_no}", origin, "COMPILE_ERROR", log)
    emit(state, "attempt_failed", origin=origin, log=attempt["log"][:300])
    new = {
        **update,
        "attempts": [*state.get("attempts", []), attempt],
        "no_improve": state.get("no_improve", 0) + 1,
    }
    return Command(goto=route_after_attempt({**state, **new}, ctx), update=new)  # type: ignore[typeddict-item]


def submit_files(
    state: SearchState, ctx: SearchContext, files: dict[str, str], origin: str, update: dict[str, Any]
) -> Command[Any]:
    """Store ``files`` as this attempt's candidate and evaluate it; unusable files are a failed attempt."""
    try:
        cand = candidate_from_files(files, ctx.language)
    except ValueError as exc:
        return record_failure(state, ctx, origin, str(exc), update)
    store = store_of(state)
    attempt_no = len(state.get("attempts", [])) + 1
    # Only an evaluated candidate makes a repeat: a stored but unevaluated one is this same attempt's,
    # saved before a crash, and still needs its evaluation.
    repeat = store.candidate_row(cand.id) is not None and store.get_evaluation(cand.id) is not None
    if repeat:
        emit(
            state,
            "candidate_repeated",
            candidate_id=cand.id,
            origin=origin,
            attempt=attempt_no,
            action_id=state.get("action_id"),
        )
    else:
        store.save_candidate(
            cand,
            round=state.get("round", 0),
            action_node=state.get("action_id"),
            parent_id=state.get("parent_candidate"),
            origin=origin,
            attempt=attempt_no,
        )
        emit(state, "candidate", candidate_id=cand.id, origin=origin, attempt=attempt_no)
    return Command(
        goto="evaluate",
        update={**update, "pending": cand.id, "pending_origin": origin, "pending_repeat": repeat},
    )
