"""coder_tools: run the tool calls of the coder (or of a repair) through the engine and hand the results back
to the node that asked (``tools_for``).

Every call is answered, within the attempt's budget: a valid call with its result, an unparseable one with
the parse problem (it counts, so a model that keeps sending broken JSON runs out), and past the budget with a
request to submit. On an endpoint without tool calling the "call" is the engine's own check of the code the
model answered with, and its result goes back as text.
"""

from __future__ import annotations

from typing import Literal

from langchain_core.messages import BaseMessage, HumanMessage, ToolMessage, messages_to_dict
from langgraph.runtime import Runtime
from langgraph.types import Command

from ksearch_agent.context import SearchContext
from ksearch_agent.nodes.common import emit, task_of
from ksearch_agent.resources import engine_for
from ksearch_agent.state import SearchState
from ksearch_agent.tools import ENGINE_CHECK, ToolSession, check_as_text, run_tool_call


def coder_tools(state: SearchState, runtime: Runtime[SearchContext]) -> Command[Literal["coder", "repair"]]:
    ctx = runtime.context or SearchContext()
    session = ToolSession(task=task_of(state), language=ctx.language, engine=engine_for(ctx.device))
    used = state.get("tool_calls_used", 0)
    replies: list[BaseMessage] = []
    for call in state.get("pending_tool_calls", []):
        as_text = call.get("name") == ENGINE_CHECK
        if used >= ctx.max_tool_calls:
            text = "error: tool budget for this attempt is spent; submit your complete files now"
        elif as_text:
            text = check_as_text(call["args"]["files"], session)
            used += 1
        else:
            text = run_tool_call(call, session)
            used += 1
        emit(state, "tool_result", tool=call.get("name"), result=text[:300])
        replies.append(
            HumanMessage(text)
            if as_text
            else ToolMessage(content=text, tool_call_id=call.get("id") or "call")
        )
    back: Literal["coder", "repair"] = "repair" if state.get("tools_for") == "repair" else "coder"
    return Command(
        goto=back,
        update={
            "coder_transcript": [*state.get("coder_transcript", []), *messages_to_dict(replies)],
            "tool_calls_used": used,
            "pending_tool_calls": [],
        },
    )
