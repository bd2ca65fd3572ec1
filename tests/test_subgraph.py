"""kernel_search embedded in a parent graph: shared keys, a wrapper node, the parent's checkpointer, and
progress events streamed from inside the subgraph."""

from __future__ import annotations

from pathlib import Path

from langgraph.checkpoint.memory import InMemorySaver

from ksearch_agent.context import SearchContext
from ksearch_agent.engine import Engine
from ksearch_agent.graphs.inference_optimizer import build_inference_optimizer_graph
from ksearch_agent.resources import register_engine


def test_parent_graph_collects_two_kernels_and_streams_subgraph_progress(
    tmp_path: Path, cpu_engine: Engine
) -> None:
    register_engine("cpu", cpu_engine)
    saver = InMemorySaver()
    graph = build_inference_optimizer_graph(checkpointer=saver)
    ctx = SearchContext(
        policy="playbook", device="cpu", runs_root=str(tmp_path / "runs"), max_rounds=1, trials=1
    )
    config = {"configurable": {"thread_id": "parent-1"}, "recursion_limit": 200}
    namespaces, custom = set(), []
    for ns, mode, chunk in graph.stream(
        {"kernels_wanted": ["rmsnorm", "softmax"]},
        config,
        context=ctx,
        stream_mode=["custom", "updates"],
        subgraphs=True,
    ):
        if mode == "custom":
            custom.append(chunk)
            namespaces.add(ns[0].split(":")[0] if ns else "")
    state = graph.get_state(config).values
    assert [r["task"] for r in state["results"]] == ["rmsnorm", "softmax"]
    assert all(r["status"] == "max_rounds" and r["best"] for r in state["results"])
    assert {"first_kernel", "second_kernel"} <= namespaces  # events came from inside both searches
    assert any(e["event"] == "new_best" for e in custom)
    # the embedded search was checkpointed by the parent's saver (it has none of its own)
    assert any(
        cp.config["configurable"].get("checkpoint_ns", "").startswith("first_kernel")
        for cp in saver.list(None)
    )
