"""planner: set the run up, keep the frontier stocked, pick the next action deterministically, or stop."""

from __future__ import annotations

import secrets
import time
from pathlib import Path
from typing import Any, Literal

from langgraph.runtime import Runtime
from langgraph.types import Command

from ksearch_agent.candidate import Candidate
from ksearch_agent.context import SearchContext
from ksearch_agent.llm.chat import ModelNotConfigured
from ksearch_agent.llm.usage import UsageLedger
from ksearch_agent.llm_policy import PolicyError
from ksearch_agent.nodes.common import emit, policy_for, store_of, task_of
from ksearch_agent.resources import store_for
from ksearch_agent.search_logic import best_from_row, stop_reason
from ksearch_agent.state import SearchState
from ksearch_agent.task import BUNDLED_TASKS_DIR, TaskFileError
from ksearch_agent.world_model import InsertNode, WorldModel

MIN_OPEN_ACTIONS = 3


def _continue(run_dir: str) -> dict[str, Any]:
    """Pick up a finished or stopped run where it left off: its tree, its best kernel, its round count."""
    store = store_for(run_dir)
    snaps = store.snapshots()
    if not snaps:
        raise ValueError(f"run {run_dir} has no world-model snapshot to continue from")
    top = store.best_candidate()
    best = None if top is None else best_from_row(top, run_dir)
    return {
        "run_id": Path(run_dir).name,
        "run_dir": str(Path(run_dir).resolve()),
        "task_name": store.get_meta("task"),
        "task_ref": store.get_meta("task_ref") or store.get_meta("task"),
        "started_at": time.time(),
        "round": max(s["round"] for s in snaps),
        "attempts": [],
        "best": best,
        "usage": store.latest_usage() or UsageLedger().model_dump(),
        "status": "running",
        "world_model": snaps[-1]["world_model"],
    }


def _setup(state: SearchState, ctx: SearchContext) -> dict[str, Any]:
    if state.get("continue_run"):
        return _continue(str(state["continue_run"]))
    task = task_of(state)
    run_id = state.get("run_id") or f"{task.name}-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"
    run_dir = str(Path(ctx.runs_root).resolve() / run_id)
    bundled = task.directory.resolve() == (BUNDLED_TASKS_DIR / task.name).resolve()
    update: dict[str, Any] = {
        "run_id": run_id,
        "run_dir": run_dir,
        "task_name": task.name,
        "task_ref": task.name if bundled else str(task.directory.resolve()),
        "started_at": time.time(),
        "round": 0,
        "attempts": [],
        "best": None,
        "usage": UsageLedger().model_dump(),
        "status": "running",
    }
    seed = state.get("seed_code")
    if seed:
        update["seed_code"] = {"run.py": seed} if isinstance(seed, str) else dict(seed)
    return update


def _finish(
    state: SearchState, status: str, extra: dict[str, Any]
) -> Command[Literal["coder", "confirm_best", "__end__"]]:
    """End the search through ``confirm_best``; ``extra`` (setup keys, usage) goes in first so the final
    fields win."""
    wm = WorldModel.model_validate(state["world_model"]) if state.get("world_model") else WorldModel.new()
    return Command(
        goto="confirm_best",
        update={**extra, "best": state.get("best"), "status": status, "world_model": wm.snapshot()},
    )


def planner(
    state: SearchState, runtime: Runtime[SearchContext]
) -> Command[Literal["coder", "confirm_best", "__end__"]]:
    ctx = runtime.context or SearchContext()
    if not state.get("run_dir"):
        try:
            setup = _setup(state, ctx)
        except (TaskFileError, ValueError) as exc:
            return Command(
                goto="__end__",
                update={
                    "status": f"error: {exc}",
                    "world_model": WorldModel.new().snapshot(),
                    "best": None,
                    "eval_summary": None,
                    "lineage": [],
                    "run_dir": "",
                },
            )
        state = {**state, **setup}  # type: ignore[typeddict-item]
        store = store_of(state)
        if not state.get("continue_run"):
            store.set_meta("task", setup["task_name"])
            store.set_meta("task_ref", setup["task_ref"])
            store.set_meta("context", {k: v for k, v in vars(ctx).items()})
        if setup.get("seed_code"):
            from ksearch_agent.coder_tools import candidate_from_files

            seed_cand: Candidate = candidate_from_files(setup["seed_code"], ctx.language)
            setup["seed_candidate"] = store.save_candidate(
                seed_cand, round=0, action_node=None, parent_id=None, origin="seed", attempt=0
            )
            state = {**state, "seed_candidate": setup["seed_candidate"]}  # type: ignore[typeddict-item]
    else:
        setup = {}
    task = task_of(state)
    ledger = UsageLedger.model_validate(state.get("usage") or {})
    if state.get("world_model") and (early := stop_reason(state, ctx)) is not None:
        return _finish(state, early, setup)
    try:
        policy = policy_for(ctx, state)
        if not state.get("world_model"):
            wm = policy.initial_world_model(task, ctx.language, ledger)
            store_of(state).save_snapshot(0, wm.snapshot(), "initial")
            emit(
                state, "world_model_initialised", nodes=len(wm.nodes) - 1, open_actions=len(wm.open_actions())
            )
        else:
            wm = WorldModel.model_validate(state["world_model"])
        if (
            state.get("round", 0) > 0
            and len(wm.frontier(ctx.max_difficulty)) < MIN_OPEN_ACTIONS
            and wm.solved()
        ):
            ops = policy.propose_actions(task, wm, 3, ledger)
            solved = {n.id for n in wm.solved()}
            ops = [op for op in ops if isinstance(op, InsertNode) and op.parent in solved]
            report = wm.apply(list(ops), max_inserts=3)
            emit(state, "actions_proposed", inserted=report.inserted_ids, dropped=report.dropped)
    except (ModelNotConfigured, PolicyError) as exc:
        partial = {**state, "usage": ledger.model_dump()}
        return _finish(partial, f"error: {exc}", {**setup, "usage": ledger.model_dump()})  # type: ignore[arg-type]
    state = {**state, "world_model": wm.snapshot(), "usage": ledger.model_dump()}  # type: ignore[typeddict-item]
    reason = stop_reason(state, ctx)
    node = wm.select(ctx.max_difficulty) if reason is None else None
    if reason is None and node is None:
        reason = "frontier_exhausted"
    if reason is not None or node is None:
        return _finish(state, reason or "frontier_exhausted", {**setup, "usage": ledger.model_dump()})
    parent = wm.node(node.parent or "root")
    parent_candidate = parent.solution.candidate_id if parent.solution else state.get("seed_candidate")
    parent_speedup = parent.solution.geomean_speedup if parent.solution else None
    round_no = state.get("round", 0) + 1
    assert node.action is not None
    emit(
        {**state, "round": round_no},
        "cycle_start",
        action_id=node.id,
        title=node.action.title,  # type: ignore[typeddict-item]
        parent_candidate=parent_candidate,
        score=node.action.score,
        difficulty=node.action.difficulty,
    )
    return Command(
        goto="coder",
        update={
            **setup,
            "world_model": wm.snapshot(),
            "usage": ledger.model_dump(),
            "round": round_no,
            "action_id": node.id,
            "parent_candidate": parent_candidate,
            "parent_speedup": parent_speedup,
            "attempts": [],
            "no_improve": 0,
            "pending": None,
            "coder_transcript": [],
            "tool_calls_used": 0,
        },
    )
