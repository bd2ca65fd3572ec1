"""The planner's decisions as plain functions: the initial tree, keeping the frontier stocked, and choosing
the next cycle's action and the kernel it builds on."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ksearch_agent.llm.usage import UsageLedger
from ksearch_agent.policy import Policy
from ksearch_agent.store import RunStore
from ksearch_agent.task import Task
from ksearch_agent.world_model import EditReport, InsertNode, Node, WorldModel

MIN_OPEN_ACTIONS = 3
"""Below this many eligible actions, the policy is asked for new steps under solved nodes."""


def initial_tree(
    policy: Policy, task: Task, language: str, ledger: UsageLedger, store: RunStore
) -> WorldModel:
    """The policy's first world model, snapshotted as round 0 so a crash right after loses nothing."""
    wm = policy.initial_world_model(task, language, ledger)
    store.save_snapshot(0, wm.snapshot(), "initial")
    return wm


def stock_frontier(
    policy: Policy,
    task: Task,
    language: str,
    wm: WorldModel,
    ledger: UsageLedger,
    *,
    round_no: int,
    max_difficulty: int,
) -> EditReport | None:
    """After the first cycle, when fewer than ``MIN_OPEN_ACTIONS`` actions are eligible and something is
    solved, ask the policy for next steps; only inserts under solved nodes are applied (at most 3).
    Returns the edit report, or None when the frontier needed nothing."""
    if round_no == 0 or len(wm.frontier(max_difficulty)) >= MIN_OPEN_ACTIONS or not wm.solved():
        return None
    solved = {n.id for n in wm.solved()}
    ops = [
        op
        for op in policy.propose_actions(task, language, wm, 3, ledger)
        if isinstance(op, InsertNode) and op.parent in solved
    ]
    return wm.apply(list(ops), max_inserts=3)


@dataclass(frozen=True)
class NextCycle:
    """The action a cycle works on and the kernel it starts from (its nearest solution, else the seed)."""

    action: Node
    parent_candidate: str | None
    parent_speedup: float | None


def choose_next(wm: WorldModel, max_difficulty: int, seed_candidate: str | None) -> NextCycle | None:
    """The head of the frontier with its parent's kernel, or None when nothing is eligible."""
    node = wm.select(max_difficulty)
    if node is None:
        return None
    parent = wm.node(node.parent or "root")
    sol = parent.solution
    return NextCycle(
        action=node,
        parent_candidate=sol.candidate_id if sol else seed_candidate,
        parent_speedup=sol.geomean_speedup if sol else None,
    )


def cycle_start(choice: NextCycle, round_no: int) -> dict[str, Any]:
    """The state keys a new cycle starts with: its action and parent, and every per-cycle counter reset."""
    return {
        "round": round_no,
        "action_id": choice.action.id,
        "parent_candidate": choice.parent_candidate,
        "parent_speedup": choice.parent_speedup,
        "attempts": [],
        "no_improve": 0,
        "pending": None,
        "pending_repeat": False,
        "tools_for": None,
        "coder_transcript": [],
        "tool_calls_used": 0,
    }
