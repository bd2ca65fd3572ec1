"""An example parent graph: an "inference optimisation" agent that asks for two kernels and collects them.

It shows both ways to embed ``kernel_search``: as a node that shares keys with the parent (the parent's
state carries ``task``/``best``/...), and called from a wrapper node with a different state. Compiled
without a checkpointer, the search inherits whatever the parent is compiled with; streaming the parent
with ``subgraphs=True`` shows the search's progress events.
"""

from __future__ import annotations

import operator
from typing import Annotated, Any

from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from typing_extensions import TypedDict

from ksearch_agent.context import SearchContext
from ksearch_agent.graphs.kernel_search import build_kernel_search_graph


class OptimizerState(TypedDict, total=False):
    model_name: str
    kernels_wanted: list[str]
    results: Annotated[list[dict[str, Any]], operator.add]
    # keys shared with kernel_search when it is added directly as a node
    task: str
    best: dict[str, Any] | None
    status: str
    world_model: dict[str, Any]
    eval_summary: dict[str, Any] | None
    run_dir: str
    lineage: list[dict[str, Any]]


def plan(state: OptimizerState) -> dict[str, Any]:
    """Decide which kernels the model needs (here: a fixed pair; a real agent would profile the model)."""
    wanted = state.get("kernels_wanted") or ["rmsnorm", "softmax"]
    return {"kernels_wanted": wanted, "task": wanted[0]}


def collect_first(state: OptimizerState) -> dict[str, Any]:
    return {
        "results": [
            {
                "task": state["task"],
                "status": state["status"],
                "best": state.get("best"),
                "run_dir": state.get("run_dir"),
            }
        ]
    }


def build_inference_optimizer_graph(checkpointer: Any = None) -> Any:
    search = build_kernel_search_graph()

    def second_kernel(state: OptimizerState, runtime: Runtime[SearchContext]) -> dict[str, Any]:
        """The wrapper-node way: different state, explicit input and output mapping."""
        out = search.invoke({"task": state["kernels_wanted"][1]}, context=runtime.context)
        return {
            "results": [
                {
                    "task": state["kernels_wanted"][1],
                    "status": out["status"],
                    "best": out["best"],
                    "run_dir": out["run_dir"],
                }
            ]
        }

    g = StateGraph(OptimizerState, context_schema=SearchContext)
    g.add_node("plan", plan)
    g.add_node("first_kernel", search)  # the shared-keys way: the compiled search graph as a node
    g.add_node("collect_first", collect_first)
    g.add_node("second_kernel", second_kernel)
    g.add_edge(START, "plan")
    g.add_edge("plan", "first_kernel")
    g.add_edge("first_kernel", "collect_first")
    g.add_edge("collect_first", "second_kernel")
    g.add_edge("second_kernel", END)
    return g.compile(checkpointer=checkpointer, name="inference_optimizer")
