"""Running, resuming and inspecting searches with durable checkpoints in the run directory."""

from __future__ import annotations

import dataclasses
import secrets
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from langgraph.checkpoint.sqlite import SqliteSaver

from ksearch_agent.context import SearchContext
from ksearch_agent.graphs.kernel_search import build_kernel_search_graph, recursion_limit
from ksearch_agent.resources import store_for

EventSink = Callable[[dict[str, Any]], None]


class RunNotResumable(RuntimeError):
    """The run directory exists but holds nothing to resume from."""


def new_run_id(task_name: str) -> str:
    return f"{task_name}-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"


def _graph(run_dir: Path, ctx: SearchContext) -> tuple[Any, sqlite3.Connection]:
    """The sequential graph, or the parallel one when the run works more than one cycle at a time."""
    conn = sqlite3.connect(run_dir / "checkpoints.sqlite", check_same_thread=False)
    if (ctx.parallel or 1) > 1:
        from ksearch_agent.graphs.parallel_search import build_parallel_search_graph

        return build_parallel_search_graph(checkpointer=SqliteSaver(conn)), conn
    return build_kernel_search_graph(checkpointer=SqliteSaver(conn)), conn


def _drive(
    graph: Any,
    payload: dict[str, Any] | None,
    config: dict[str, Any],
    ctx: SearchContext,
    on_event: EventSink | None,
) -> dict[str, Any]:
    # durability="sync": each step's checkpoint is on disk before the next step starts, so a kill -9 at any
    # moment leaves a checkpoint to resume from (the default, "async", can lose the steps still being written).
    # subgraphs=True: the parallel graph's cycles are subgraphs, whose progress events come namespaced.
    for _namespace, chunk in graph.stream(
        payload, config, context=ctx, stream_mode="custom", durability="sync", subgraphs=True
    ):
        if on_event is not None and isinstance(chunk, dict):
            on_event(chunk)
    return dict(graph.get_state(config).values)


def run_search(
    task: str,
    ctx: SearchContext,
    *,
    seed_code: dict[str, str] | str | None = None,
    run_id: str | None = None,
    on_event: EventSink | None = None,
) -> dict[str, Any]:
    """Start a search; everything lands in ``<runs_root>/<run_id>/`` (SQLite record + checkpoints).

    ``ctx.parallel`` left None is settled here (one cycle per GPU of the backend) and saved with the
    context, so a resumed run has the same graph. Raises
    :class:`~ksearch_agent.backends.BackendUnavailable` when the backend cannot start."""
    from ksearch_agent.backends import settle_parallel

    ctx = settle_parallel(ctx)
    run_id = run_id or new_run_id(Path(task).name)
    run_dir = Path(ctx.runs_root).resolve() / run_id
    run_dir.mkdir(parents=True, exist_ok=True)
    store = store_for(run_dir)
    store.set_meta("context", dataclasses.asdict(ctx))
    store.set_meta("run_id", run_id)
    graph, conn = _graph(run_dir, ctx)
    try:
        config = {"configurable": {"thread_id": run_id}, "recursion_limit": recursion_limit(ctx)}
        return _drive(graph, {"task": task, "seed_code": seed_code, "run_id": run_id}, config, ctx, on_event)
    finally:
        conn.close()


def resolve_run_dir(run: str, runs_root: str = "runs") -> Path:
    path = Path(run)
    if path.is_dir():
        return path.resolve()
    candidate = Path(runs_root) / run
    if candidate.is_dir():
        return candidate.resolve()
    raise FileNotFoundError(f"no run directory {run!r} (looked in . and {runs_root}/)")


def load_context(run_dir: Path, **overrides: Any) -> SearchContext:
    saved = store_for(run_dir).get_meta("context") or {}
    fields = {f.name for f in dataclasses.fields(SearchContext)}
    values = {k: v for k, v in saved.items() if k in fields}
    values.update({k: v for k, v in overrides.items() if v is not None})
    values["runs_root"] = str(run_dir.parent)
    return SearchContext(**values)


def resume_search(run: str | Path, *, on_event: EventSink | None = None, **overrides: Any) -> dict[str, Any]:
    """Continue a run from its last checkpoint (after a crash, kill -9, Ctrl-C or an endpoint error);
    ``overrides`` replace saved context fields (``base_url``, ``model``: continue on another endpoint)."""
    from ksearch_agent.backends import settle_parallel

    run_dir = resolve_run_dir(str(run))
    ctx = load_context(run_dir, **overrides)
    store = store_for(run_dir)
    saved = store.get_meta("context") or {}
    if any(v is not None and saved.get(k) != v for k, v in overrides.items()):
        # Continuing elsewhere (another endpoint or model): later resumes use it too, and what the old
        # endpoint refused says nothing about the new one.
        store.set_meta("context", dataclasses.asdict(ctx))
        if saved.get("base_url") != ctx.base_url or saved.get("model") != ctx.model:
            store.set_meta("endpoint_refused", [])
    if saved.get("parallel") is None:
        ctx = dataclasses.replace(ctx, parallel=1)  # a run from before --parallel: the sequential graph
    ctx = settle_parallel(ctx)
    run_id = store.get_meta("run_id") or run_dir.name
    graph, conn = _graph(run_dir, ctx)
    try:
        config = {"configurable": {"thread_id": run_id}, "recursion_limit": recursion_limit(ctx)}
        snapshot = graph.get_state(config)
        if snapshot.metadata is None:
            raise RunNotResumable(
                f"{run_dir} holds no checkpoint of run {run_id!r}: it stopped before its first step "
                "was saved; start it again with `ksearch run`"
            )
        if not snapshot.next and not snapshot.tasks:
            return dict(snapshot.values)  # already finished: nothing to do
        # Otherwise continue. A kill between a step's last task saving its writes and the step's checkpoint
        # leaves ``next`` empty with that task listed as done: streaming from the checkpoint applies the
        # saved writes and goes on to the next node, so the finished task is not run again.
        return _drive(graph, None, config, ctx, on_event)
    finally:
        conn.close()
