"""coder: the policy implements the chosen action (possibly calling tools first); the files are stored."""

from __future__ import annotations

from typing import Literal

from langgraph.runtime import Runtime
from langgraph.types import Command

from ksearch_agent.context import SearchContext
from ksearch_agent.llm.usage import UsageLedger
from ksearch_agent.nodes.attempts import record_failure, submit_files
from ksearch_agent.nodes.common import PROMPT_REJECTED, policy_for, rejection_reason, store_of, task_of
from ksearch_agent.policy import CodeRequest, CoderTurn
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
    except PROMPT_REJECTED as exc:
        turn = CoderTurn(error=rejection_reason("coder", exc))
    usage = ledger.model_dump()
    if turn.tool_calls:
        return Command(
            goto="coder_tools",
            update={
                "usage": usage,
                "coder_transcript": [*state.get("coder_transcript", []), *turn.transcript],
                "pending_tool_calls": turn.tool_calls,
                "tools_for": "coder",
            },
        )
    if turn.files is None:
        return record_failure(state, ctx, "coder", turn.error or "no code", {"usage": usage})
    return submit_files(state, ctx, turn.files, "coder", {"usage": usage})
