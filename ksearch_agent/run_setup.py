"""Starting a search: a fresh run directory, or a finished run picked up where it stopped.

Plain functions over the graph's input, so the planner node only routes; both return the state keys a run
starts with and write what a later ``ksearch show`` or ``--continue`` needs into the run store.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ksearch_agent.coder_tools import candidate_from_files
from ksearch_agent.context import SearchContext
from ksearch_agent.llm.usage import UsageLedger
from ksearch_agent.resources import store_for
from ksearch_agent.search_logic import best_from_row
from ksearch_agent.state import SearchState
from ksearch_agent.task import BUNDLED_TASKS_DIR, Task


class RunSetupError(ValueError):
    """The run cannot start: a run to continue has nothing to continue from, or the seed code is unusable."""


def new_run(state: SearchState, ctx: SearchContext, task: Task) -> dict[str, Any]:
    """Create the run directory for ``task``, record its task and settings, and store the seed candidate."""
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
        "unverified": [],
    }
    seed = state.get("seed_code")
    seed_files = ({"run.py": seed} if isinstance(seed, str) else dict(seed)) if seed else None
    if seed_files:
        try:
            seed_cand = candidate_from_files(seed_files, ctx.language)
        except ValueError as exc:
            raise RunSetupError(f"the seed code cannot be used: {exc}") from None
    store = store_for(run_dir)
    store.set_meta("task", update["task_name"])
    store.set_meta("task_ref", update["task_ref"])
    store.set_meta("context", asdict(ctx))
    if seed_files:
        update["seed_code"] = seed_files
        update["seed_candidate"] = store.save_candidate(
            seed_cand, round=0, action_node=None, parent_id=None, origin="seed", attempt=0
        )
    return update


def continue_run(run_dir: str) -> dict[str, Any]:
    """Pick up a finished or stopped run where it left off: its tree, its best kernel, its round count."""
    store = store_for(run_dir)
    snaps = store.snapshots()
    if not snaps:
        raise RunSetupError(f"run {run_dir} has no world-model snapshot to continue from")
    top = store.best_candidate()
    return {
        "run_id": Path(run_dir).name,
        "run_dir": str(Path(run_dir).resolve()),
        "task_name": store.get_meta("task"),
        "task_ref": store.get_meta("task_ref") or store.get_meta("task"),
        "started_at": time.time(),
        "round": max(s["round"] for s in snaps),
        "attempts": [],
        "best": None if top is None else best_from_row(top, run_dir),
        "usage": store.latest_usage() or UsageLedger().model_dump(),
        "status": "running",
        "unverified": [],
        "world_model": snaps[-1]["world_model"],
    }
