"""The opponent as the judge times it: fresh inputs per call, plan outside or inside the timed region.

Each timed call gets the same fresh inputs regime as the reference (new values written into the same
buffers), so the library meets the memory the candidate meets. ``library`` calls plan first, untimed, then
time the library's call alone (L2 flushed in between, as for every timed call); ``library_plan`` calls time
``plan`` and the call together. Before its first timed call on a workload the library's outputs are checked
against the reference on the same inputs, so a library that computes something else (another log base, a
layout mix-up) is reported instead of silently scored against.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from ksearch_agent.opponents import Opponent, OpponentUnavailable, load_opponent

NAMES = ("library", "library_plan")
"""How the judge's interleaving names the two ways of timing the opponent."""


def start_opponent(name: str | None, device: torch.device) -> tuple[Opponent | None, dict[str, Any]]:
    """The opponent, or None and the reason it is skipped (both reported in the profile's done message)."""
    if not name:
        return None, {}
    try:
        opponent = load_opponent(name, device)
    except OpponentUnavailable as exc:
        return None, {"name": name, "skipped": str(exc)}
    except Exception as exc:  # noqa: BLE001 - a library that fails to start must not stop the profile
        return None, {"name": name, "skipped": f"{type(exc).__name__}: {str(exc)[:500]}"}
    return opponent, {"name": name, "library": opponent.library}


class OpponentRunner:
    """One workload's opponent calls for :class:`~ksearch_agent.worker.profile_job.WorkloadTimer`."""

    def __init__(self, opponent: Opponent, wl: dict[str, Any], timer: Any, task: dict[str, Any]) -> None:
        self.opponent, self.wl, self.timer, self.task = opponent, wl, timer, task
        self.names = [s["name"] for s in wl["inputs"]]
        self.scalars = dict(wl.get("scalars") or {})
        self.bufs: list[torch.Tensor] | None = None
        self.written: list[torch.Tensor] | None = None
        self.check: dict[str, Any] | None = None

    def _named(self, inputs: list[torch.Tensor], protocol: str) -> dict[str, Any]:
        """The library's own buffers holding ``inputs``; the hot protocol's same inputs are written only once, so
        the L2 keeps what the previous call left there."""
        if self.bufs is None:
            self.bufs = [torch.empty_like(t) for t in inputs]
        if protocol != "hot" or self.written is not inputs:
            self.written = inputs
            for buf, t in zip(self.bufs, inputs, strict=True):
                buf.copy_(t)
        return {**dict(zip(self.names, self.bufs, strict=True)), **self.scalars}

    def call_ms(
        self,
        inputs: list[torch.Tensor],
        ref_fn: Callable[..., Any],
        with_plan: bool,
        protocol: str = "flushed",
    ) -> float:
        """One timed opponent call on ``inputs`` in the judge's protocol (flushed: the L2 is flushed after
        plan(), before the timed region; hot: no flush); failures raise the judge's ``CallFailed``."""
        from ksearch_agent.worker.profile_job import CallFailed

        named = self._named(inputs, protocol)
        try:
            if self.check is None:
                self.check = self._check(self.opponent.plan(named)(), ref_fn)
            if with_plan:
                opponent = self.opponent
                return float(
                    self.timer.call_ms(lambda: opponent.plan(named)(), [], protocol=protocol, gated=False)
                )
            return float(self.timer.call_ms(self.opponent.plan(named), [], protocol=protocol))
        except CallFailed:
            raise
        except Exception as exc:  # noqa: BLE001 - library errors become the opponent's status
            raise CallFailed(
                "RUNTIME_ERROR", f"the library failed: {type(exc).__name__}: {exc}"[:2000]
            ) from None

    def _check(self, outs: Any, ref_fn: Callable[..., Any]) -> dict[str, Any]:
        from ksearch_agent.worker.compare import check_output
        from ksearch_agent.worker.session import as_tuple

        assert self.bufs is not None
        got = as_tuple(outs)
        with torch.no_grad():
            expected = as_tuple(ref_fn(*[b.clone() for b in self.bufs]))
        names = self.task["output_names"]
        if len(got) < len(expected):
            return {"status": "INCORRECT_SHAPE", "log": f"the library returned {len(got)} outputs"}
        for name, o, r in zip(names, got, expected, strict=False):
            res = check_output(name, o, r, self.task["tolerance"])
            if res["status"] != "PASSED":
                return {"status": res["status"], "log": "the library: " + str(res.get("log", ""))}
        return {"status": "PASSED"}


def opponent_fields(
    stats: dict[str, dict[str, Any]], failures: dict[str, Any], runner: OpponentRunner | None
) -> dict[str, Any]:
    """The opponent's figures for one workload's profile record."""
    if runner is None:
        return {}
    out: dict[str, Any] = {}
    if "library" in stats:
        out["library_latency_ms"] = stats["library"]["latency_ms"]
        out["library_iqr_ms"] = stats["library"].get("iqr_ms")
    if "library_plan" in stats:
        out["library_plan_latency_ms"] = stats["library_plan"]["latency_ms"]
    check = runner.check or {}
    failed = failures.get("library") or failures.get("library_plan")
    if failed is not None:
        out["library_status"], out["library_log"] = failed.status, failed.log[:1000]
    else:
        out["library_status"] = check.get("status", "RUNTIME_ERROR")
        if check.get("log"):
            out["library_log"] = str(check["log"])[:1000]
    return out
