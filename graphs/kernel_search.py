"""The K-Search graph: planner → coder (⇄ coder_tools) → evaluate (⇄ repair) → world_model_update → planner,
and at the end planner → confirm_best (the top candidates re-timed side by side) → END.

``build_kernel_search_graph()`` returns a compiled graph with input/output schemas, usable on its own,
as a subgraph (it inherits the parent's checkpointer when compiled without one) or from LangGraph Studio.
"""

from __future__ import annotations

from typing import Any

from langgraph.graph import END, START, StateGraph
from langgraph.types import RetryPolicy

from ksearch_agent.context import SearchContext
from ksearch_agent.llm.chat import is_retryable
from ksearch_agent.nodes.coder import coder
from ksearch_agent.nodes.coder_tools import coder_tools
from ksearch_agent.nodes.confirm_best import confirm_best
from ksearch_agent.nodes.evaluate import evaluate
from ksearch_agent.nodes.planner import planner
from ksearch_agent.nodes.repair import repair
from ksearch_agent.nodes.world_model_update import world_model_update
from ksearch_agent.state import SearchInput, SearchOutput, SearchState

LLM_RETRY = RetryPolicy(
    max_attempts=4, initial_interval=2.0, backoff_factor=2.0, max_interval=60.0, retry_on=is_retryable
)


def build_kernel_search_graph(checkpointer: Any = None, *, name: str = "kernel_search") -> Any:
    g = StateGraph(
        SearchState, context_schema=SearchContext, input_schema=SearchInput, output_schema=SearchOutput
    )
    g.add_node("planner", planner, retry_policy=LLM_RETRY)
    g.add_node("coder", coder, retry_policy=LLM_RETRY)
    g.add_node("coder_tools", coder_tools)
    g.add_node("evaluate", evaluate)
    g.add_node("repair", repair, retry_policy=LLM_RETRY)
    g.add_node("world_model_update", world_model_update, retry_policy=LLM_RETRY)
    g.add_node("confirm_best", confirm_best)
    g.add_edge(START, "planner")
    g.add_edge("confirm_best", END)
    # An explicit default: enough supersteps for the default context; run() passes one sized to its own.
    return g.compile(checkpointer=checkpointer, name=name).with_config(
        {"recursion_limit": recursion_limit(SearchContext())}
    )


def recursion_limit(ctx: SearchContext) -> int:
    """Enough supersteps for max_rounds cycles of attempts (coder or repair, each with its tool calls, then
    evaluate) and updates, with margin."""
    per_cycle = 2 + ctx.max_attempts * (2 + 2 * ctx.max_tool_calls) + 2
    return max(ctx.recursion_limit, 12 + ctx.max_rounds * per_cycle)
