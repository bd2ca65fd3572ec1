"""confirm_best: before the run ends, re-time its top candidates side by side and name the real winner.

The search scores each candidate once, at its own moment; the duels here (``confirmation.run_duels``)
time the contenders in alternation on the same inputs, so the kernel the run reports and exports is the
one that was faster in a single measurement, not the one with the luckiest score.  Without a GPU, or
with fewer than two contenders, nothing is timed and the top score stands.
"""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from ksearch_agent.confirmation import contenders, run_duels
from ksearch_agent.context import SearchContext
from ksearch_agent.nodes.common import emit, store_of, task_of
from ksearch_agent.resources import engine_for
from ksearch_agent.search_logic import best_from_row, lineage
from ksearch_agent.state import SearchState
from ksearch_agent.world_model import WorldModel


def _confirm(state: SearchState, ctx: SearchContext) -> dict[str, Any] | None:
    best = state.get("best")
    if not best:
        return None
    store = store_of(state)
    ids = contenders(store.candidates(), top=ctx.confirm_top, margin=ctx.confirm_margin)
    if len(ids) < 2 or best.get("geomean_speedup") is None:
        result: dict[str, Any] = {"candidate_id": best["candidate_id"], "contenders": ids, "duels": []}
    else:
        emit(state, "confirming", contenders=ids)
        try:
            result = run_duels(engine_for(ctx.device), task_of(state), store.load_candidate, ids)
        except Exception as exc:  # noqa: BLE001 - a failing re-timing must not cost the run its answer
            result = {
                "candidate_id": ids[0],
                "contenders": ids,
                "duels": [],
                "error": f"side-by-side re-timing failed, the top score stands: {type(exc).__name__}: {exc}",
            }
    store.set_meta("confirmed_best", result)  # always: a continued run must not keep an older verdict
    return result


def confirm_best(state: SearchState, runtime: Runtime[SearchContext]) -> dict[str, Any]:
    ctx = runtime.context or SearchContext()
    best = state.get("best")
    result = _confirm(state, ctx) if state.get("run_dir") else None
    if best and result is not None:
        if result["candidate_id"] != best["candidate_id"]:
            row = store_of(state).best_candidate()
            best = best_from_row(row, state["run_dir"]) if row else best
        best = {**best, "confirmation": {k: result[k] for k in ("contenders", "duels") if k in result}}
        if result.get("error"):
            best["confirmation"]["error"] = result["error"]
        if result["duels"]:
            emit(
                state,
                "best_confirmed",
                **{k: best[k] for k in ("candidate_id", "geomean_speedup")},
                duels=[
                    {k: d[k] for k in ("challenger", "champion", "ratio", "winner")} for d in result["duels"]
                ],
            )
    wm = WorldModel.model_validate(state["world_model"]) if state.get("world_model") else WorldModel.new()
    summary = None
    if best:
        report = store_of(state).get_evaluation(best["candidate_id"])
        if report is not None:
            summary = {
                "status": report.status,
                "correctness": report.correctness.model_dump(),
                "profile": report.profile.model_dump() if report.profile else None,
            }
    emit(state, "finished", status=state.get("status", ""), best=best)
    return {
        "best": best,
        "eval_summary": summary,
        "lineage": lineage(wm, best.get("node_id")) if best else [],
    }
