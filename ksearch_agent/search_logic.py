"""The search's bookkeeping as plain functions: attempts, improvement, routing, stop conditions, output.

Kept apart from the nodes so each rule is testable on its own and the nodes stay thin.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Literal

from ksearch_agent.context import SearchContext
from ksearch_agent.llm.usage import UsageLedger
from ksearch_agent.results import EvalReport
from ksearch_agent.state import Attempt, SearchState
from ksearch_agent.world_model import WorldModel


def attempt_from_report(report: EvalReport, origin: str) -> Attempt:
    prof = report.profile
    failing = [w for w in report.correctness.workloads if w.status != "PASSED"]
    log = "\n".join(f"{w.workload}: {w.status}: {w.log}" for w in failing[:3])
    if report.correctness.note:
        log = (log + "\n" + report.correctness.note).strip()
    return Attempt(
        candidate_id=report.candidate_id,
        origin=origin,
        status=report.status,
        geomean_speedup=prof.geomean_speedup if prof else None,
        geomean_latency_ms=prof.geomean_latency_ms if prof else None,
        log=log[-4000:],
    )


def repeat_attempt(report: EvalReport, origin: str, earlier: dict[str, Any]) -> Attempt:
    """An attempt whose code is identical to an earlier candidate's: recorded as a repeat, never as a new pass.

    The earlier verdict goes in the log so the next repair knows it produced nothing new; the attempt itself
    neither improves the cycle nor becomes the action's solution.
    """
    prof = report.profile
    speed = f" at {prof.geomean_speedup:.3f}x the reference" if prof and prof.geomean_speedup else ""
    where = (
        f"round {earlier.get('round')}, attempt {earlier.get('attempt')} ({earlier.get('origin')})"
        if earlier.get("origin") != "seed"
        else "the seed"
    )
    return Attempt(
        candidate_id=report.candidate_id,
        origin=origin,
        status="REPEAT",
        geomean_speedup=None,
        geomean_latency_ms=None,
        log=(
            f"the code is identical to candidate {report.candidate_id} from {where}, "
            f"which was evaluated as {report.status}{speed}; nothing new was tried"
        ),
        repeat_of=report.candidate_id,
    )


def failed_attempt(candidate_id: str, origin: str, status: str, log: str) -> Attempt:
    return Attempt(
        candidate_id=candidate_id,
        origin=origin,
        status=status,
        geomean_speedup=None,
        geomean_latency_ms=None,
        log=log[-4000:],
    )


def _score(a: Attempt) -> float:
    """Order of merit among passing attempts; without a GPU (no speed) every pass ranks equal at 0."""
    return a["geomean_speedup"] if a["geomean_speedup"] is not None else 0.0


def best_attempt(attempts: list[Attempt]) -> Attempt | None:
    passed = [a for a in attempts if a["status"] == "PASSED"]
    return max(passed, key=_score) if passed else None


def is_improvement(attempts: list[Attempt], new: Attempt) -> bool:
    """A pass that beats every earlier pass of this cycle (the first pass always does)."""
    if new["status"] != "PASSED":
        return False
    before = best_attempt(attempts)
    return before is None or _score(new) > _score(before)


def beats(best: dict[str, Any] | None, attempt: Attempt) -> bool:
    if attempt["status"] != "PASSED":
        return False
    if best is None:
        return True
    return (attempt["geomean_speedup"] or 0.0) > (best.get("geomean_speedup") or 0.0)


def stop_reason(state: SearchState, ctx: SearchContext, *, now: float | None = None) -> str | None:
    """Why the whole search should stop before the next cycle, or None."""
    if state.get("round", 0) >= ctx.max_rounds:
        return "max_rounds"
    return budget_reason(state, ctx, now=now)


def budget_reason(state: SearchState, ctx: SearchContext, *, now: float | None = None) -> str | None:
    """Wall time or token/USD budget spent: this also ends a cycle early."""
    if (
        ctx.max_wall_s is not None
        and (now or time.time()) - state.get("started_at", time.time()) > ctx.max_wall_s
    ):
        return "wall_time"
    over = UsageLedger.model_validate(state.get("usage") or {}).over_budget(ctx.max_tokens, ctx.budget_usd)
    return f"budget: {over}" if over else None


def cycle_end_reason(state: SearchState, ctx: SearchContext, *, now: float | None = None) -> str | None:
    """Why the current cycle ends after its last attempt, or None to repair and try again.

    The cycle runs up to ``max_attempts`` attempts and ends early after ``stagnation_window`` attempts in a
    row that did not improve on its best. It also ends when the budget is spent, when the last attempt could
    not be measured (UNVERIFIED: a repair would be blind), and when a pass's speed cannot be measured on
    this machine (no later attempt could be shown to improve on it).
    """
    attempts = state.get("attempts", [])
    last = attempts[-1]
    if (spent := budget_reason(state, ctx, now=now)) is not None:
        return spent
    if last["status"] == "UNVERIFIED":
        return "unverified: correctness and speed cannot be measured here"
    if len(attempts) >= ctx.max_attempts:
        return "max_attempts"
    if state.get("no_improve", 0) >= ctx.stagnation_window:
        return "stagnation"
    if last["status"] == "PASSED" and last["geomean_speedup"] is None:
        return "passed; speed not measured on this machine"
    return None


def next_after_attempt(state: SearchState, ctx: SearchContext) -> Literal["repair", "world_model_update"]:
    """Repair (debug a failure, or speed up a pass) while the cycle lasts; otherwise update the world model."""
    return "world_model_update" if cycle_end_reason(state, ctx) is not None else "repair"


def best_from_row(row: dict[str, Any], run_dir: str) -> dict[str, Any]:
    """The state's ``best`` entry for a candidate row of the run store."""
    return {
        "candidate_id": row["id"],
        "node_id": row["action_node"],
        "round": row["round"],
        "geomean_speedup": row["geomean_speedup"],
        "geomean_latency_ms": row["geomean_latency_ms"],
        "language": row["language"],
        "files_dir": str(Path(run_dir) / "candidates" / row["id"]),
    }


def lineage(wm: WorldModel, node_id: str | None) -> list[dict[str, Any]]:
    if node_id is None:
        return []
    return [
        {
            "id": n.id,
            "decision": n.decision,
            "candidate_id": n.solution.candidate_id if n.solution else None,
            "geomean_speedup": n.solution.geomean_speedup if n.solution else None,
        }
        for n in wm.lineage(node_id)
        if n.id != "root"
    ]
