"""A run at a glance: status and stop reason, policy and model, counts, the best kernel, the side-by-side
duels that confirmed it, its lineage in the world model, and LLM tokens and cost.

This is what ``ksearch show`` adds to its tables, what ``ksearch show --json`` prints (together with the
candidates, the best kernel's workloads and the final tree) and one line of ``ksearch runs``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ksearch_agent.llm.usage import UsageLedger
from ksearch_agent.report.checkpoints import latest_state
from ksearch_agent.report.rundb import is_run_dir, open_run, time_span
from ksearch_agent.report.workloads import workload_rows
from ksearch_agent.search_logic import lineage
from ksearch_agent.store import RunStore
from ksearch_agent.world_model import WorldModel


@dataclass(frozen=True)
class BestKernel:
    """The run's best passing candidate (the confirmed winner when duels were run)."""

    candidate_id: str
    action_id: str | None
    round: int
    speedup: float | None
    latency_ms: float | None
    protocol: str | None
    files_dir: str


@dataclass(frozen=True)
class UsageTotals:
    """LLM calls, tokens and USD over the whole run, and per graph node."""

    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0
    cost_usd: float = 0.0
    cost_complete: bool = True
    cost_label: str = "$0.0000"
    by_node: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class RunSummary:
    """Everything one line of ``ksearch runs`` or the head of ``ksearch show`` needs.

    ``status`` is ``finished``, ``error`` or ``incomplete`` (running, or stopped before it finished:
    ``ksearch resume`` continues it); ``stop_reason`` is the search's own word (``max_rounds``,
    ``frontier_exhausted``, ``wall_time``, ``budget: ...``) or the error message (without its ``error:``).
    """

    run_dir: str
    run_id: str
    task: str | None
    policy: str | None
    model: str | None
    language: str | None
    device: str | None
    status: str
    stop_reason: str | None
    started: float | None
    ended: float | None
    rounds: int
    candidates: int
    evaluated: int
    passed: int
    best: BestKernel | None
    usage: UsageTotals
    duels: list[dict[str, Any]] = field(default_factory=list)
    contenders: list[str] = field(default_factory=list)
    confirmation_error: str | None = None
    lineage: list[dict[str, Any]] = field(default_factory=list)
    endpoint_refused: list[str] = field(default_factory=list)


def run_status(events: list[dict[str, Any]], final_state: dict[str, Any]) -> tuple[str, str | None]:
    """``(status, stop_reason)`` from the last ``finished`` event; a run continued after it (new cycles
    logged later) or one with no such event is ``incomplete`` unless its final graph state names an error
    (a run that failed while setting up ends without the event)."""
    last = max((i for i, e in enumerate(events) if e.get("kind") == "finished"), default=None)
    if last is not None and not any(e.get("kind") == "cycle_start" for e in events[last + 1 :]):
        reason = str(events[last].get("status") or "")
        if reason.startswith("error"):
            return "error", reason.removeprefix("error:").strip() or None
        return "finished", reason or None
    state_status = str(final_state.get("status") or "")
    if state_status.startswith("error"):
        return "error", state_status.removeprefix("error:").strip() or None
    return "incomplete", None


def usage_totals(ledger: dict[str, Any] | None) -> UsageTotals:
    """Totals of a stored usage ledger (``None``: no LLM call was ever recorded)."""
    led = UsageLedger.model_validate(ledger or {})
    return UsageTotals(
        calls=led.calls,
        input_tokens=led.input_tokens,
        output_tokens=led.output_tokens,
        total_tokens=led.total_tokens,
        cost_usd=led.cost_usd,
        cost_complete=led.cost_complete,
        cost_label=led.cost_label,
        by_node={k: v.model_dump() for k, v in led.by_node.items()},
    )


def final_world_model(store: RunStore) -> WorldModel | None:
    """The last snapshot's tree, or ``None`` when the run never built one."""
    snaps = store.snapshots()
    return WorldModel.model_validate(snaps[-1]["world_model"]) if snaps else None


def best_kernel(store: RunStore, run_dir: Path) -> BestKernel | None:
    """The store's best candidate with its timing protocol."""
    row = store.best_candidate()
    if row is None:
        return None
    report = store.get_evaluation(row["id"])
    prof = report.profile if report else None
    return BestKernel(
        candidate_id=row["id"],
        action_id=row["action_node"],
        round=int(row["round"] or 0),
        speedup=row["geomean_speedup"],
        latency_ms=row["geomean_latency_ms"],
        protocol=prof.protocol if prof is not None and prof.measured else None,
        files_dir=str(run_dir / "candidates" / row["id"]),
    )


def run_summary(run_dir: Path, final_state: dict[str, Any] | None = None) -> RunSummary:
    """Read the summary of one run directory (raises ``NotARunDirectory`` when it is none).

    The final graph state (``final_state``, else read from the checkpoints) is only consulted for a run
    without a ``finished`` event.
    """
    run_dir = run_dir.resolve()
    store = open_run(run_dir)
    ctx = store.get_meta("context") or {}
    run_id = str(store.get_meta("run_id") or run_dir.name)
    events = store.events()
    if final_state is None and not any(e.get("kind") == "finished" for e in events):
        final_state = latest_state(run_dir, run_id)
    status, reason = run_status(events, final_state or {})
    rows = store.candidates()
    best = best_kernel(store, run_dir)
    confirmed = store.get_meta("confirmed_best") or {}
    wm = final_world_model(store)
    started, ended = time_span(run_dir)
    return RunSummary(
        run_dir=str(run_dir),
        run_id=run_id,
        task=store.get_meta("task") or (final_state or {}).get("task_name"),
        policy=ctx.get("policy"),
        model=ctx.get("model") if ctx.get("policy") == "llm" else None,
        language=ctx.get("language"),
        device=ctx.get("device"),
        status=status,
        stop_reason=reason,
        started=started,
        ended=ended,
        rounds=max((int(e.get("round") or 0) for e in events), default=0),
        candidates=len(rows),
        evaluated=sum(1 for r in rows if r["status"] is not None),
        passed=sum(1 for r in rows if r["status"] == "PASSED"),
        best=best,
        usage=usage_totals(store.latest_usage()),
        duels=list(confirmed.get("duels") or []),
        contenders=list(confirmed.get("contenders") or []),
        confirmation_error=confirmed.get("error"),
        lineage=lineage(wm, best.action_id) if wm is not None and best and best.action_id in wm.nodes else [],
        endpoint_refused=list(store.get_meta("endpoint_refused") or []),
    )


def show_document(run_dir: Path) -> dict[str, Any]:
    """What ``ksearch show --json`` prints: ``summary`` (a :class:`RunSummary`), ``candidates`` (every row),
    ``best_workloads`` and ``best_source`` of the best kernel, and ``world_model``, the final tree (a
    snapshot that ``WorldModel.model_validate`` restores)."""
    run_dir = run_dir.resolve()
    summary = run_summary(run_dir)
    store = open_run(run_dir)
    doc: dict[str, Any] = {
        "summary": dataclasses.asdict(summary),
        "candidates": store.candidates(),
        "best_workloads": None,
        "best_source": None,
    }
    if summary.best is not None:
        report = store.get_evaluation(summary.best.candidate_id)
        if report is not None:
            doc["best_workloads"] = [dataclasses.asdict(r) for r in workload_rows(report)]
        cand = store.load_candidate(summary.best.candidate_id)
        doc["best_source"] = {"entry": cand.entry, "files": cand.files}
    wm = final_world_model(store)
    doc["world_model"] = wm.snapshot() if wm is not None else None
    return doc


def list_runs(root: Path) -> tuple[list[RunSummary], list[str]]:
    """Summaries of the run directories directly under ``root`` (or ``root`` itself if it is one), oldest
    first, and one line per directory that could not be read (a damaged run must not hide the others)."""
    dirs = [root] if is_run_dir(root) else sorted(p for p in root.iterdir() if p.is_dir() and is_run_dir(p))
    out: list[RunSummary] = []
    problems: list[str] = []
    for d in dirs:
        try:
            out.append(run_summary(d))
        except Exception as exc:  # noqa: BLE001 - reported to the caller, the listing goes on
            problems.append(f"{d}: {type(exc).__name__}: {exc}")
    return sorted(out, key=lambda s: (s.started or 0.0, s.run_id)), problems
