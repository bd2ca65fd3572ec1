"""The world model as the report draws it: each snapshot becomes a tree of nodes labelled by kind
(family or refinement) and status (solved, open, failed), with the path to the best solution marked.

Status follows what the search did to a node: a solution attached means *solved*; an action tried without
a passing candidate (``attempts`` > 0, see ``WorldModel.mark_too_hard``) means *failed*; an action never
tried is *open*; a node with neither is a *plain* grouping decision.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ksearch_agent.world_model import ROOT_ID, Node, WorldModel


@dataclass(frozen=True)
class TreeNode:
    """One node of a drawn tree with the figures the report shows next to it."""

    id: str
    kind: str
    status: str
    decision: str
    rating: float
    confidence: float
    notes: str
    attempts: int
    action_title: str | None
    difficulty: int | None
    score: float | None
    expected_speedup: float | None
    candidate_id: str | None
    speedup: float | None
    solved_round: int | None
    on_best_path: bool
    children: list[TreeNode] = field(default_factory=list)


@dataclass(frozen=True)
class TreeFrame:
    """The tree as one snapshot left it (after round ``round``), and the node its best path leads to."""

    round: int
    note: str
    root: TreeNode
    best_node: str | None
    solved: int
    open: int
    failed: int


def node_status(node: Node) -> str:
    """``root``, ``solved``, ``failed``, ``open`` or ``plain`` (see the module docstring)."""
    if node.id == ROOT_ID:
        return "root"
    if node.solution is not None:
        return "solved"
    if node.action is not None:
        return "failed" if node.attempts > 0 else "open"
    return "plain"


def _build(wm: WorldModel, node: Node, depth: int, path: set[str]) -> TreeNode:
    act, sol = node.action, node.solution
    return TreeNode(
        id=node.id,
        kind="root" if depth == 0 else "family" if depth == 1 else "refinement",
        status=node_status(node),
        decision=node.decision,
        rating=node.rating,
        confidence=node.confidence,
        notes=node.notes,
        attempts=node.attempts,
        action_title=act.title if act else None,
        difficulty=act.difficulty if act else None,
        score=act.score if act else None,
        expected_speedup=act.expected_speedup if act else None,
        candidate_id=sol.candidate_id if sol else None,
        speedup=sol.geomean_speedup if sol else None,
        solved_round=sol.round if sol else None,
        on_best_path=node.id in path,
        children=[_build(wm, c, depth + 1, path) for c in wm.children(node.id)],
    )


def tree_frame(snapshot: dict[str, Any], best_node: str | None = None) -> TreeFrame:
    """One snapshot (``RunStore.snapshots()`` entry) as a drawn tree.

    The best path leads to ``best_node`` (the run's best action) when that node is solved in this
    snapshot, else to the snapshot's own best solution, so earlier frames show what was best then.
    """
    wm = WorldModel.model_validate(snapshot["world_model"])
    target = best_node if best_node in wm.nodes and wm.nodes[best_node].solution is not None else None
    if target is None:
        top = wm.best_solution()
        target = top.id if top is not None else None
    path = {n.id for n in wm.lineage(target)} if target else set()
    statuses = [node_status(n) for n in wm.nodes.values()]
    return TreeFrame(
        round=int(snapshot.get("round") or 0),
        note=str(snapshot.get("note") or ""),
        root=_build(wm, wm.nodes[ROOT_ID], 0, path),
        best_node=target,
        solved=statuses.count("solved"),
        open=statuses.count("open"),
        failed=statuses.count("failed"),
    )


def tree_frames(snapshots: list[dict[str, Any]], best_node: str | None = None) -> list[TreeFrame]:
    """Every snapshot as a frame, oldest first (one per round, plus the initial tree)."""
    return [tree_frame(s, best_node) for s in snapshots]
