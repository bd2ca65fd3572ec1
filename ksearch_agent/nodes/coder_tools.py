"""coder_tools: run the tool calls of the coder (or of a repair) through the engine and hand the results back
to the node that asked (``tools_for``)."""

from __future__ import annotations

from typing import Literal

from langchain_core.messages import ToolMessage, messages_to_dict
from langgraph.runtime import Runtime
from langgraph.types import Command

from ksearch_agent.coder_tools import execute
from ksearch_agent.context import SearchContext
from ksearch_agent.nodes.common import emit, task_of
from ksearch_agent.resources import engine_for
from ksearch_agent.state import SearchState


def coder_tools(state: SearchState, runtime: Runtime[SearchContext]) -> Command[Literal["coder", "repair"]]:
    ctx = runtime.context or SearchContext()
    task, engine = task_of(state), engine_for(ctx.device)
    used = state.get("tool_calls_used", 0)
    replies = []
    for call in state.get("pending_tool_calls", []):
        if used >= ctx.max_tool_calls:
            text = "error: tool budget for this attempt is spent; submit your complete files now"
        else:
            text = execute(call, task, ctx.language, engine)
            used += 1
        emit(state, "tool_result", tool=call.get("name"), result=text[:300])
        replies.append(ToolMessage(content=text, tool_call_id=call.get("id") or "call"))
    back: Literal["coder", "repair"] = "repair" if state.get("tools_for") == "repair" else "coder"
    return Command(
        goto=back,
        update={
            "coder_transcript": [*state.get("coder_transcript", []), *messages_to_dict(replies)],
            "tool_calls_used": used,
            "pending_tool_calls": [],
        },
    )
