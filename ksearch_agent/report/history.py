"""How a run unfolded: every attempt in order, the best speedup so far, and the LLM usage of each round.

Built from the run's event log (which fixes the order and the round of every attempt, code-less failures
included) joined with the candidates and evaluations tables (which hold status and speed).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ksearch_agent.llm.usage import UsageLedger
from ksearch_agent.search_logic import attempt_from_report
from ksearch_agent.store import RunStore

NOT_EVALUATED = "NOT_EVALUATED"


@dataclass(frozen=True)
class AttemptRecord:
    """One attempt of the run: a seed, a coder answer or a repair, with what its evaluation said."""

    index: int
    round: int
    action_id: str | None
    action_title: str
    origin: str
    attempt: int
    candidate_id: str | None
    status: str
    speedup: float | None
    latency_ms: float | None
    protocol: str | None
    checked: str | None
    log: str
    transcript: str = ""


@dataclass(frozen=True)
class CurvePoint:
    """The best measured speedup of one timing protocol after an evaluation."""

    evaluation: int
    round: int
    best: float
    candidate_id: str


@dataclass(frozen=True)
class RoundUsage:
    """LLM calls, tokens and cost spent in one round (differences of the cumulative ledgers)."""

    round: int
    calls: int
    input_tokens: int
    output_tokens: int
    cost_usd: float


def _evaluated(store: RunStore, cand_id: str) -> dict[str, Any]:
    """Status, speed, protocol and failure log of a stored candidate (``NOT_EVALUATED`` when none yet)."""
    report = store.get_evaluation(cand_id)
    if report is None:
        return {
            "status": NOT_EVALUATED,
            "speedup": None,
            "latency_ms": None,
            "protocol": None,
            "checked": None,
            "log": "",
        }
    prof = report.profile
    measured = bool(prof and prof.measured and prof.geomean_speedup)
    log = attempt_from_report(report, "")["log"]
    if (
        prof is not None and report.status != "PASSED"
    ):  # a verdict of the timing stage (e.g. a rejected timer)
        failing = [w for w in prof.workloads if w.status != "PASSED" and w.log]
        log = "\n".join([log, *(f"{w.workload}: {w.status}: {w.log}" for w in failing[:3])]).strip()
    return {
        "status": report.status,
        "speedup": prof.geomean_speedup if prof else None,
        "latency_ms": prof.geomean_latency_ms if prof else None,
        "protocol": prof.protocol if prof is not None and measured else None,
        "checked": report.correctness.checked,
        "log": log[-4000:],
    }


def attempts(store: RunStore, transcripts: dict[int, str] | None = None) -> list[AttemptRecord]:
    """Every attempt in the order the run made them: seeds first, then as the events record them.

    ``transcripts`` maps a round to its coder transcript excerpt, shown on that round's coder attempt.
    A candidate the events do not mention (a run from an older version) is added at the end.
    """
    rows = {r["id"]: r for r in store.candidates()}
    titles: dict[str, str] = {}
    out: list[dict[str, Any]] = []
    seen: set[tuple[Any, ...]] = set()

    def add(
        round_no: int,
        action: str | None,
        origin: str,
        attempt: int,
        cand_id: str | None,
        failed: dict[str, Any] | None = None,
    ) -> None:
        key = (round_no, action, origin, None if failed else attempt, cand_id, (failed or {}).get("log"))
        if key in seen:
            return  # the same step logged again after a resume
        seen.add(key)
        info = failed if failed is not None else _evaluated(store, cand_id or "")
        text = (transcripts or {}).get(round_no, "") if origin == "coder" else ""
        out.append(
            {
                "round": round_no,
                "action_id": action,
                "action_title": titles.get(action or "", ""),
                "origin": origin,
                "attempt": attempt,
                "candidate_id": cand_id,
                "transcript": text,
                **info,
            }
        )

    for row in rows.values():
        if row["origin"] == "seed":
            add(int(row["round"] or 0), row["action_node"], "seed", 0, row["id"])
    action: str | None = None
    for ev in store.events():
        kind, rnd = ev.get("kind"), int(ev.get("round") or 0)
        if kind == "cycle_start":
            action = ev.get("action_id")
            titles[str(action)] = str(ev.get("title") or "")
        elif kind == "candidate" and ev.get("candidate_id") in rows:
            row = rows[ev["candidate_id"]]
            add(
                rnd,
                row["action_node"] or action,
                str(ev.get("origin") or row["origin"]),
                int(ev.get("attempt") or row["attempt"] or 0),
                row["id"],
            )
        elif kind == "candidate_repeated" and ev.get("candidate_id") in rows:
            add(
                rnd,
                ev.get("action_id") or action,
                str(ev.get("origin") or "repair"),
                int(ev.get("attempt") or 0),
                ev["candidate_id"],
                {
                    **_evaluated(store, ev["candidate_id"]),
                    "status": "REPEAT",
                    "log": f"the code is identical to candidate {ev['candidate_id']}; nothing new was tried",
                },
            )
        elif kind == "attempt_failed":
            number = 1 + sum(1 for a in out if a["round"] == rnd and a["origin"] != "seed")
            add(
                rnd,
                action,
                str(ev.get("origin") or "coder"),
                number,
                None,
                {
                    "status": "COMPILE_ERROR",
                    "speedup": None,
                    "latency_ms": None,
                    "protocol": None,
                    "checked": None,
                    "log": str(ev.get("log") or "no code"),
                },
            )
    listed = {a["candidate_id"] for a in out}
    for row in rows.values():
        if row["id"] not in listed:
            add(
                int(row["round"] or 0),
                row["action_node"],
                str(row["origin"]),
                int(row["attempt"] or 0),
                row["id"],
            )
    return [AttemptRecord(index=i + 1, **a) for i, a in enumerate(out)]


def best_curves(records: Iterable[AttemptRecord]) -> dict[str, list[CurvePoint]]:
    """Per timing protocol, the best speedup so far after each measured evaluation.

    ``evaluation`` counts every evaluated attempt of the run (whatever its protocol or status), so curves
    of different protocols share one x axis.
    """
    curves: dict[str, list[CurvePoint]] = {}
    best: dict[str, tuple[float, str]] = {}
    evaluation = 0
    for rec in records:
        if rec.candidate_id is None or rec.status == NOT_EVALUATED:
            continue
        evaluation += 1
        if rec.protocol is None or rec.speedup is None or rec.status != "PASSED":
            continue
        if rec.protocol not in best or rec.speedup > best[rec.protocol][0]:
            best[rec.protocol] = (rec.speedup, rec.candidate_id)
        value, cand = best[rec.protocol]
        curves.setdefault(rec.protocol, []).append(CurvePoint(evaluation, rec.round, value, cand))
    return curves


def best_by_round(points: list[CurvePoint], rounds: int) -> list[tuple[int, float | None]]:
    """``(round, best so far)`` for rounds 0..``rounds`` (``None`` before the first measured pass)."""
    out: list[tuple[int, float | None]] = []
    for r in range(rounds + 1):
        upto = [p.best for p in points if p.round <= r]
        out.append((r, max(upto) if upto else None))
    return out


def usage_per_round(history: list[tuple[int, dict[str, Any]]]) -> list[RoundUsage]:
    """Each round's share of the cumulative ledgers saved at the end of every round (later saves of the
    same round, e.g. after a resume, replace earlier ones)."""
    by_round: dict[int, UsageLedger] = {}
    for rnd, ledger in history:
        by_round[rnd] = UsageLedger.model_validate(ledger)
    out: list[RoundUsage] = []
    prev = UsageLedger()
    for rnd in sorted(by_round):
        cur = by_round[rnd]
        out.append(
            RoundUsage(
                round=rnd,
                calls=max(cur.calls - prev.calls, 0),
                input_tokens=max(cur.input_tokens - prev.input_tokens, 0),
                output_tokens=max(cur.output_tokens - prev.output_tokens, 0),
                cost_usd=max(cur.cost_usd - prev.cost_usd, 0.0),
            )
        )
        prev = cur
    return out
