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


def next_after_attempt(state: SearchState, ctx: SearchContext) -> Literal["repair", "world_model_update"]:
    """Repair a failed or slower attempt while the cycle's allowances last; otherwise end the cycle."""
    attempts = state.get("attempts", [])
    last = attempts[-1]
    if budget_reason(state, ctx) is not None:
        return "world_model_update"
    if len(attempts) > ctx.max_repairs or state.get("no_improve", 0) >= ctx.stagnation_window:
        return "world_model_update"
    if last["status"] != "PASSED":
        return "repair"
    parent = state.get("parent_speedup")
    if last["geomean_speedup"] is not None and parent is not None and last["geomean_speedup"] <= parent:
        return "repair"
    return "world_model_update"


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
