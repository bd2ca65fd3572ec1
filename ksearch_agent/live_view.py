"""The rich live view of a running search, fed by the graph's progress events."""

from __future__ import annotations

from typing import Any

from rich.table import Table


class LiveView:
    """Keeps the latest figures from the event stream and renders them as a small table."""

    def __init__(self, task: str) -> None:
        self.task = task
        self.round = 0
        self.action = "—"
        self.attempt = "—"
        self.status = "starting"
        self.best: float | None = None
        self.best_id = "—"
        self.tokens = 0
        self.cost = "—"
        self.last = ""

    def on_event(self, ev: dict[str, Any]) -> None:
        kind = ev.get("event")
        self.round = ev.get("round", self.round)
        if kind == "cycle_start":
            self.action = f"{ev.get('action_id')}: {ev.get('title')}"
            self.attempt, self.status = "coder", "implementing"
        elif kind == "candidate":
            self.attempt = f"{ev.get('origin')} #{ev.get('attempt')} ({ev.get('candidate_id')})"
            self.status = "evaluating"
        elif kind == "evaluated":
            speed = ev.get("geomean_speedup")
            self.status = f"{ev.get('status')}" + (f" {speed:.3f}x" if speed else "")
        elif kind == "attempt_failed":
            self.status = "no usable code"
        elif kind == "confirming":
            self.status = f"re-timing {len(ev.get('contenders') or [])} top candidates side by side"
        elif kind in ("new_best", "best_confirmed"):
            self.best, self.best_id = ev.get("geomean_speedup"), str(ev.get("candidate_id"))
        elif kind == "world_model_updated":
            self.tokens = ev.get("tokens") or self.tokens
            self.cost = str(ev.get("cost") or self.cost)
        elif kind == "finished":
            self.status = f"finished: {ev.get('status')}"
        self.last = str(kind)

    def render(self) -> Table:
        t = Table(title=f"ksearch run {self.task}", show_header=False)
        t.add_column("what", style="bold")
        t.add_column("value")
        best = (
            "—"
            if self.best_id == "—"
            else (
                f"{self.best:.3f}x ({self.best_id})"
                if self.best
                else f"passing, speed not measured ({self.best_id})"
            )
        )
        for k, v in (
            ("round", str(self.round)),
            ("action", self.action),
            ("attempt", self.attempt),
            ("status", self.status),
            ("best speedup", best),
            ("tokens", str(self.tokens)),
            ("cost", self.cost),
        ):
            t.add_row(k, v)
        return t
