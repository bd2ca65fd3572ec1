"""The run summary as terminal text: the lines ``ksearch show`` prints above its tables and the rows of
``ksearch runs``.  Plain strings, so the CLI only hands them to rich."""

from __future__ import annotations

import time

from ksearch_agent.llm.caller import REFUSAL_NOTES
from ksearch_agent.llm.usage import cost_text
from ksearch_agent.report.summary import RunSummary

RUNS_COLUMNS = ("run", "task", "policy", "status", "best", "candidates", "started")


def _when(t: float | None) -> str:
    return "—" if t is None else time.strftime("%Y-%m-%d %H:%M", time.localtime(t))


def status_text(s: RunSummary) -> str:
    """``finished (max_rounds)``, ``error (error: ...)`` or ``incomplete (resume with ...)``."""
    if s.status == "incomplete":
        return "incomplete (running, or stopped early: `ksearch resume` continues it)"
    return f"{s.status} ({s.stop_reason})" if s.stop_reason else s.status


def summary_lines(s: RunSummary) -> list[str]:
    """Status and stop reason, policy and model, counts, tokens and cost, the duels and the lineage."""
    u = s.usage
    cost = u.cost_label
    lines = [
        f"run {s.run_id} · task {s.task} · status: {status_text(s)}",
        f"policy {s.policy}" + (f" · model {s.model}" if s.model else "") + f" · language {s.language} · "
        f"device {s.device} · {_when(s.started)} → {_when(s.ended)}",
        f"{s.rounds} rounds · {s.candidates} candidates ({s.evaluated} evaluated, {s.passed} passed) · "
        f"LLM: {u.calls} calls, {u.input_tokens:,} input + {u.output_tokens:,} output tokens, {cost}",
    ]
    for node, n in sorted(u.by_node.items()):
        lines.append(
            f"  {node}: {n.get('calls', 0)} calls, {n.get('input_tokens', 0):,} input + "
            f"{n.get('output_tokens', 0):,} output tokens, "
            + cost_text(n.get("cost_usd"), int(n.get("unpriced_calls") or 0), int(n.get("calls") or 0))
        )
    lines.extend(f"endpoint: {REFUSAL_NOTES.get(p, p)}" for p in s.endpoint_refused)
    for d in s.duels:
        ratio = d.get("ratio")
        lines.append(
            f"side by side: {d.get('challenger')} vs {d.get('champion')}: "
            + ("challenger not timed" if ratio is None else f"challenger {ratio:.3f}x as fast")
            + f" → {d.get('winner')}"
        )
    if s.confirmation_error:
        lines.append(s.confirmation_error)
    if s.lineage:
        lines.append(
            "lineage: "
            + " → ".join(
                f"{n['id']} {n['decision']}"
                + (
                    f" ({n['candidate_id']}"
                    + (f", {n['geomean_speedup']:.3f}x)" if n.get("geomean_speedup") is not None else ")")
                    if n.get("candidate_id")
                    else ""
                )
                for n in s.lineage
            )
        )
    return lines


def runs_row(s: RunSummary) -> tuple[str, ...]:
    """One row of ``ksearch runs`` in :data:`RUNS_COLUMNS` order."""
    speed = s.best.speedup if s.best else None
    best = "—" if s.best is None else ("not timed" if speed is None else f"{speed:.3f}x")
    status = s.status + (f" ({s.stop_reason})" if s.stop_reason else "")
    policy = f"{s.policy} {s.model}" if s.model else str(s.policy)
    return (s.run_id, str(s.task), policy, status, best, str(s.candidates), _when(s.started))
