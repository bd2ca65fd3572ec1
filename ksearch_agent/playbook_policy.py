"""The playbook policy: every LLM-facing step of the search, deterministic and offline.

It runs through the same graph and engine as the LLM policy. Its world model comes from the task's
playbook; code for an action is the seed with the action's knobs; repair reacts to the failure it sees
(out of shared memory → the next smaller-tile/fewer-stage variant, a numerical mismatch → the safer
precision, a pass → the next launch variant) and says it is exhausted when no variant is left, which ends
the cycle (the cycle's attempt and stagnation limits apply as for the LLM); the world-model update
revises every open action's expected speedup and score from how the measured speedup compared with the
prediction, so the search order follows the evidence.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from ksearch_agent.knobs import KnobError, read_knobs, render
from ksearch_agent.llm.usage import UsageLedger
from ksearch_agent.llm_policy import PolicyError
from ksearch_agent.playbook import FailureClass, Playbook, files_for, load_playbook, mark, ref_of
from ksearch_agent.policy import CodeRequest, CoderTurn, CycleOutcome, RepairRequest
from ksearch_agent.task import Task
from ksearch_agent.world_model import ActionPatch, EditOp, InsertNode, UpdateNode, WorldModel

_SHARED_MEMORY_MARKERS = ("out of resource", "outofresources", "shared memory", "shared_memory", "smem")


def _moved_score(score: float, factor: float) -> float:
    """``score`` moved toward 1 by a factor above 1 and toward 0 by one below, as a power: actions moved by
    the same factor keep their order. (Multiplying and clipping at 1 did not: a family's first kernel, at
    141x the reference where its root predicted 1x, put every open action at 1.0 and the search fell back to
    id order on the H100, away from the playbook's measured best.)"""
    return min(1.0, max(0.0, score ** (1.0 / factor)))


def classify_failure(
    status: str, log: str, speedup: float | None, parent_speedup: float | None
) -> FailureClass:
    text = log.lower()
    if status == "PASSED":
        return "slower"
    if any(m in text for m in _SHARED_MEMORY_MARKERS):
        return "shared_memory"
    if status == "INCORRECT_NUMERICAL":
        return "numerical"
    if status == "TIMEOUT":
        return "timeout"
    if status == "COMPILE_ERROR":
        return "compile"
    return "runtime"


_PLAYBOOKS: dict[tuple[str, float], Playbook] = {}


def _playbook(path: Path, mtime: float, task: Task) -> Playbook:
    """One parse per playbook file version (a policy object is made per node call)."""
    key = (str(path), mtime)
    if key not in _PLAYBOOKS:
        _PLAYBOOKS[key] = load_playbook(task)
    return _PLAYBOOKS[key]


class PlaybookPolicy:
    name = "playbook"

    def _book(self, task: Task) -> Playbook:
        path = task.directory / "playbook.json"
        return _playbook(path, path.stat().st_mtime, task)

    # -- planner ------------------------------------------------------------------------------------

    def initial_world_model(self, task: Task, language: str, ledger: UsageLedger) -> WorldModel:
        book = self._book(task)
        chosen: list[Any] = []
        for n in book.nodes:  # playbook order keeps parents before children
            family = book.chain(n.ref)[0]
            if (
                n.initial
                and family.language == language
                and (n.parent == "root" or n.parent in {c.ref for c in chosen})
            ):
                chosen.append(n)
        if not chosen:
            raise PolicyError(f"the {task.name} playbook has no {language} kernel family")
        payload: dict[str, Any] = {
            "kernel_summary": book.kernel_summary,
            "open_questions": book.open_questions,
            "nodes": [
                {
                    "ref": n.ref,
                    "parent": n.parent,
                    "decision": n.decision,
                    "rating": n.rating,
                    "confidence": n.confidence,
                    "notes": mark(n.ref),
                    "action": n.action.model_dump(),
                }
                for n in chosen
            ],
        }
        return WorldModel.from_initial(payload)

    def _refinements(self, task: Task, wm: WorldModel, solved_id: str, limit: int) -> list[EditOp]:
        book = self._book(task)
        ref = ref_of(wm.node(solved_id).notes)
        present = {ref_of(n.notes) for n in wm.nodes.values()}
        if ref is None:
            return []
        ops: list[EditOp] = [
            InsertNode(
                op="insert_node",
                parent=solved_id,
                decision=c.decision,
                rating=c.rating,
                confidence=c.confidence,
                notes=mark(c.ref),
                action=c.action,
            )
            for c in book.children_of(ref)
            if c.ref not in present
        ]
        return ops[:limit]

    def propose_actions(
        self, task: Task, language: str, wm: WorldModel, max_new: int, ledger: UsageLedger
    ) -> list[EditOp]:
        ops: list[EditOp] = []
        for node in sorted(
            wm.solved(), key=lambda n: -(n.solution.geomean_speedup or 0) if n.solution else 0
        ):
            ops += self._refinements(task, wm, node.id, max_new - len(ops))
            if len(ops) >= max_new:
                break
        return ops

    # -- coder and repair ---------------------------------------------------------------------------

    def coder_turn(self, req: CodeRequest, ledger: UsageLedger) -> CoderTurn:
        ref = ref_of(req.action.notes)
        if ref is None:
            return CoderTurn(
                error=f"action {req.action.id} did not come from the playbook; nothing to implement"
            )
        try:
            return CoderTurn(files=files_for(req.task, self._book(req.task), ref))
        except (KeyError, KnobError, OSError) as exc:
            return CoderTurn(error=f"playbook node {ref!r} cannot be built: {exc}")

    def repair(self, req: RepairRequest, ledger: UsageLedger) -> CoderTurn:
        att = req.attempt
        kind = classify_failure(att["status"], att["log"], att["geomean_speedup"], req.parent_speedup)
        variants = self._book(req.task).repairs.get(kind, [])
        source = req.files.get("run.py", "")
        try:
            current = read_knobs(source)
        except SyntaxError:
            return CoderTurn(error="the attempt's run.py does not parse; the playbook cannot repair it")
        for variant in variants:
            if all(current.get(k) == v for k, v in variant.items()):
                continue  # already applied by an earlier repair
            try:
                return CoderTurn(files={**req.files, "run.py": render(source, variant)})
            except KnobError:
                continue  # this variant is for another seed
        return CoderTurn(
            error=f"the playbook has no further repair for a {kind} failure ({att['status']})", exhausted=True
        )

    # -- world model update -------------------------------------------------------------------------

    def update_world_model(
        self, task: Task, wm: WorldModel, outcome: CycleOutcome, ledger: UsageLedger
    ) -> tuple[list[EditOp], list[str]]:
        node, best = outcome.action, outcome.best
        ops: list[EditOp] = []
        expected = node.action.expected_speedup if node.action else 1.0
        observed = None
        if best is not None and best["geomean_speedup"] is not None:
            observed = best["geomean_speedup"] / (outcome.parent_speedup or 1.0)
        if observed is not None:
            surprise = observed / expected  # > 1: better than predicted
            ops.append(
                UpdateNode(
                    op="update_node",
                    id=node.id,
                    rating=min(10.0, max(0.0, node.rating + 2.0 * math.log2(surprise))),
                    confidence=min(1.0, node.confidence + 0.15),
                )
            )
            # Beliefs about the rest move part of the way toward the evidence: same-family actions fully,
            # others by half, so the next selection reflects what was just measured.
            family = wm.lineage(node.id)[1].id if len(wm.lineage(node.id)) > 1 else node.id
            for other in wm.open_actions():
                if other.id == node.id or other.action is None:
                    continue
                same = len(wm.lineage(other.id)) > 1 and wm.lineage(other.id)[1].id == family
                weight = 1.0 if same else 0.5
                factor = surprise ** (0.5 * weight)
                ops.append(
                    UpdateNode(
                        op="update_node",
                        id=other.id,
                        action=ActionPatch(
                            expected_speedup=max(0.05, other.action.expected_speedup * factor),
                            score=_moved_score(other.action.score, factor),
                        ),
                    )
                )
        elif best is not None:  # passed, speed unknown (no GPU): more confident, nothing to calibrate
            ops.append(UpdateNode(op="update_node", id=node.id, confidence=min(1.0, node.confidence + 0.1)))
        if best is not None:
            ops += self._refinements(task, wm, node.id, 3)
        return ops, []
