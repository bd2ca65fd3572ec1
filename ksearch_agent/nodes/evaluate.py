"""evaluate: full correctness and profile through the engine; the record is stored before routing on.

Idempotent: a candidate already evaluated in this run (say, before a crash) is not evaluated again. The
stored report carries the compile statistics (registers, spills, shared memory) that repair and the
world-model update read. A repeated candidate keeps its earlier verdict and is recorded as a repeat;
an UNVERIFIED one (compiled, nothing measurable here) is listed in ``unverified``.
"""

from __future__ import annotations

from typing import Any, Literal

from langgraph.runtime import Runtime
from langgraph.types import Command

from ksearch_agent.backends import backend_for, record_placement
from ksearch_agent.context import SearchContext
from ksearch_agent.nodes.attempts import route_after_attempt
from ksearch_agent.nodes.common import emit, store_of, task_of
from ksearch_agent.resources import engine_for
from ksearch_agent.search_logic import attempt_from_report, beats, is_improvement, repeat_attempt
from ksearch_agent.state import SearchState


def evaluate(
    state: SearchState, runtime: Runtime[SearchContext]
) -> Command[Literal["repair", "world_model_update"]]:
    ctx = runtime.context or SearchContext()
    store, task = store_of(state), task_of(state)
    cand_id = state["pending"] or ""
    origin = state.get("pending_origin", "coder")
    report = store.get_evaluation(cand_id)
    if report is None:
        cand = store.load_candidate(cand_id)
        placed = backend_for(ctx).evaluate(task, cand, trials=ctx.trials)
        report = placed.report
        if report.compile is None:  # compile statistics for repair and the update: sm_90a, no GPU needed
            report.compile = engine_for(ctx.device).compile(task, cand)
        store.save_evaluation(report)
        emit(state, "placed", candidate_id=cand_id, slot=placed.slot, device=placed.device, node=placed.node)
        if (models := record_placement(store, placed)) is not None:
            emit(state, "mixed_gpu_models", models=models)
    if state.get("pending_repeat"):
        attempt = repeat_attempt(report, origin, store.candidate_row(cand_id) or {})
    else:
        attempt = attempt_from_report(report, origin)
    attempts = state.get("attempts", [])
    improved = is_improvement(attempts, attempt)
    emit(
        state,
        "evaluated",
        candidate_id=cand_id,
        status=attempt["status"],
        geomean_speedup=attempt["geomean_speedup"],
        checked=report.correctness.checked,
    )
    update: dict[str, Any] = {
        "attempts": [*attempts, attempt],
        "no_improve": 0 if improved else state.get("no_improve", 0) + 1,
        "pending": None,
        "pending_repeat": False,
    }
    if attempt["status"] == "UNVERIFIED":
        update["unverified"] = [*state.get("unverified", []), cand_id]
    if beats(state.get("best"), attempt):
        update["best"] = {
            "candidate_id": cand_id,
            "node_id": state.get("action_id"),
            "round": state.get("round", 0),
            "geomean_speedup": attempt["geomean_speedup"],
            "geomean_latency_ms": attempt["geomean_latency_ms"],
            "language": ctx.language,
            "files_dir": str(store.run_dir / "candidates" / cand_id),
        }
        emit(state, "new_best", **update["best"])
    return Command(goto=route_after_attempt({**state, **update}, ctx), update=update)  # type: ignore[typeddict-item]
