"""The parallel K-Search graph: planner → dispatch ⇉ cycle × K → absorb (one finished cycle per step) →
planner, and at the end planner → confirm_best → END.

``dispatch`` fans the planner's action and up to K-1 more open actions of the frontier out to ``cycle``
branches (LangGraph ``Send``; Studio draws the branches). A ``cycle`` is a subgraph of the sequential
graph's own nodes — coder (⇄ coder_tools) → evaluate (⇄ repair) — ending in ``cycle_done``; evaluations
go to the context's backend (``local`` GPUs or ``ray``), whose slots let the branches evaluate at once.
``absorb`` folds the finished cycles into the world model lowest round first, so the tree does not
depend on which branch finished first. Checkpoints are taken inside each branch: after a kill, finished
branches are not run again and an unfinished one resumes at its last step.
"""

from __future__ import annotations

import operator
from typing import Annotated, Any

from langgraph.graph import END, START, StateGraph
from typing_extensions import TypedDict

from ksearch_agent.context import SearchContext
from ksearch_agent.graphs.kernel_search import LLM_RETRY, recursion_limit
from ksearch_agent.nodes.coder import coder
from ksearch_agent.nodes.coder_tools import coder_tools
from ksearch_agent.nodes.confirm_best import confirm_best
from ksearch_agent.nodes.evaluate import evaluate
from ksearch_agent.nodes.fan_out import absorb, cycle_done, dispatch
from ksearch_agent.nodes.planner import planner
from ksearch_agent.nodes.redirect import redirect
from ksearch_agent.nodes.repair import repair
from ksearch_agent.state import SearchInput, SearchOutput, SearchState


class CycleState(SearchState, total=False):
    """A branch's state: the search state of one cycle, the ledger it started from, and its result."""

    cycle_base_usage: dict[str, Any]
    finished_cycles: list[dict[str, Any]]


class CycleOutput(TypedDict):
    finished_cycles: list[dict[str, Any]]


class ParallelSearchState(SearchState, total=False):
    """The search state plus the finished cycles waiting to be folded into the world model."""

    finished_cycles: Annotated[list[dict[str, Any]], operator.add]


_END_OF_CYCLE = {"world_model_update": "cycle_done"}


def build_cycle_graph() -> Any:
    """One cycle on one action: the sequential graph's cycle nodes, ending in ``cycle_done``."""
    g = StateGraph(CycleState, context_schema=SearchContext, output_schema=CycleOutput)
    for name, fn, retry in (("coder", coder, True), ("evaluate", evaluate, False), ("repair", repair, True)):
        node, dests = redirect(fn, _END_OF_CYCLE)
        g.add_node(name, node, destinations=dests, retry_policy=LLM_RETRY if retry else None)
    g.add_node("coder_tools", coder_tools)
    g.add_node("cycle_done", cycle_done)
    g.add_edge(START, "coder")
    g.add_edge("cycle_done", END)
    return g.compile(name="cycle")


def build_parallel_search_graph(checkpointer: Any = None, *, name: str = "kernel_search_parallel") -> Any:
    g = StateGraph(
        ParallelSearchState,
        context_schema=SearchContext,
        input_schema=SearchInput,
        output_schema=SearchOutput,
    )
    plan, plan_dests = redirect(planner, {"coder": "dispatch"})
    g.add_node("planner", plan, destinations=plan_dests, retry_policy=LLM_RETRY)
    g.add_node("dispatch", dispatch, destinations=("cycle",))
    g.add_node("cycle", build_cycle_graph())
    g.add_node("absorb", absorb, destinations=("absorb", "planner"), retry_policy=LLM_RETRY)
    g.add_node("confirm_best", confirm_best)
    g.add_edge(START, "planner")
    g.add_edge("cycle", "absorb")
    g.add_edge("confirm_best", END)
    return g.compile(checkpointer=checkpointer, name=name).with_config(
        {"recursion_limit": recursion_limit(SearchContext())}
    )
