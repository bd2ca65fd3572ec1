"""Confirming the best kernel: the top candidates re-timed side by side before a run names its winner.

During a search every candidate is profiled once, at its own moment; on a shared machine the same kernel
measures 3-6% apart between two such moments, which is as large as the gaps between the best few
candidates.  Picking the top score therefore often picks the luckiest measurement, not the fastest
kernel.  Before the run ends, the contenders (passing candidates whose speedup is within a margin of the
best) meet in duels: the engine times a challenger and the current champion in alternation, call by
call on the same inputs, and the challenger takes over only if it is faster in that one measurement.
"""

from __future__ import annotations

from typing import Any, Protocol

from ksearch_agent.results import ProfileResult, geomean


class DuelEngine(Protocol):
    def profile(
        self, task: Any, candidate: Any, workload_ids: Any = None, *, baseline: Any = None
    ) -> ProfileResult: ...


def contenders(rows: list[dict[str, Any]], *, top: int, margin: float) -> list[str]:
    """Ids of the passing candidates with a measured speedup within ``margin`` (a fraction) of the best,
    best first, at most ``top``; fewer than two means there is nothing to confirm."""
    timed = [r for r in rows if r["status"] == "PASSED" and r.get("geomean_speedup")]
    timed.sort(key=lambda r: -r["geomean_speedup"])
    if not timed:
        return []
    floor = timed[0]["geomean_speedup"] * (1.0 - margin)
    return [r["id"] for r in timed if r["geomean_speedup"] >= floor][: max(top, 0)]


def duel_ratio(profile: ProfileResult) -> float | None:
    """How much faster the challenger was than the champion (geomean of per-workload ratios), or None when
    any workload has no side-by-side pair of numbers (the challenger failed, or nothing was measured)."""
    ratios = [w.speedup_vs_baseline for w in profile.workloads]
    if not profile.measured or not ratios or any(r is None or r <= 0 for r in ratios):
        return None
    return geomean([r for r in ratios if r is not None])


def run_duels(engine: DuelEngine, task: Any, load: Any, ids: list[str]) -> dict[str, Any]:
    """King of the hill over ``ids`` (best search score first); ``load(id)`` gives the candidate.

    Returns ``{"candidate_id": winner, "contenders": ids, "duels": [...]}``; each duel records both ids,
    the ratio (None: the challenger could not be timed, so it loses), the winner and the per-workload
    latencies.  A tie (ratio exactly 1) keeps the champion.
    """
    champion = ids[0]
    duels: list[dict[str, Any]] = []
    for challenger in ids[1:]:
        prof = engine.profile(task, load(challenger), baseline=load(champion))
        ratio = duel_ratio(prof)
        winner = challenger if ratio is not None and ratio > 1.0 else champion
        duels.append(
            {
                "challenger": challenger,
                "champion": champion,
                "ratio": ratio,
                "winner": winner,
                "protocol": prof.protocol,
                "device": prof.device,
                "note": prof.note,
                "workloads": [
                    {
                        "workload": w.workload,
                        "status": w.status,
                        "challenger_ms": w.latency_ms,
                        "champion_ms": w.baseline_latency_ms,
                    }
                    for w in prof.workloads
                ],
            }
        )
        champion = winner
    return {"candidate_id": champion, "contenders": list(ids), "duels": duels}
