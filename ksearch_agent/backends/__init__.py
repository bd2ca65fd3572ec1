"""Evaluation backends: where a search's evaluations run (``local`` GPUs, or a ``ray`` cluster).

:func:`backend_for` gives the backend a search context asks for, made once per process and settings and
closed at exit; :func:`record_placement` notes where each evaluation ran and whether the run has now seen
more than one GPU model.
"""

from __future__ import annotations

import atexit
import dataclasses
import threading
from typing import Any

from ksearch_agent.backends.base import EvaluationBackend, Evaluator, Placed, device_of, lost_report
from ksearch_agent.backends.gpus import visible_gpus
from ksearch_agent.backends.local import LocalBackend, local_backend
from ksearch_agent.backends.placement import record_placement
from ksearch_agent.backends.ray_backend import BackendUnavailable
from ksearch_agent.candidate import Candidate
from ksearch_agent.context import SearchContext
from ksearch_agent.results import EvalReport
from ksearch_agent.task import Task

__all__ = [
    "BackendUnavailable",
    "EvaluationBackend",
    "Evaluator",
    "LocalBackend",
    "Placed",
    "backend_for",
    "device_of",
    "lost_report",
    "record_placement",
    "register_backend",
    "settle_parallel",
    "slots_wanted",
]

_lock = threading.Lock()
_backends: dict[tuple[Any, ...], EvaluationBackend] = {}


class ProcessEngine:
    """The process's engine for a device, looked up at each call (``resources.engine_for``), so an engine a
    caller registers later (tests, servers) is the one used, as it was before backends existed."""

    def __init__(self, device: Any) -> None:
        self.device = device

    def evaluate(self, task: Task, candidate: Candidate, *, trials: int = 2) -> EvalReport:
        from ksearch_agent.resources import engine_for

        return engine_for(self.device).evaluate(task, candidate, trials=trials)

    def close(self) -> None:
        """The process's engines are closed by ``resources`` at exit."""


def _key(ctx: SearchContext) -> tuple[Any, ...]:
    return (ctx.backend, ctx.device, ctx.parallel, ctx.ray_address if ctx.backend == "ray" else None)


def slots_wanted(ctx: SearchContext) -> int:
    """``ctx.parallel`` when given, else one per GPU this machine sees (1 without a GPU). A Ray backend
    with no ``parallel`` asks its cluster instead (see :class:`~ksearch_agent.backends.ray_backend.RayBackend`)."""
    if ctx.parallel is not None:
        return max(1, ctx.parallel)
    if ctx.device == "cpu":
        return 1
    return max(1, len(visible_gpus()))


def backend_for(ctx: SearchContext) -> EvaluationBackend:
    """The backend ``ctx`` names, made on first use. One local slot reuses the process's engine (the one
    the coder's tools use); several local GPU slots register slot 0's leased engine for the tools, so the
    tools' timing takes the same per-GPU leases as the search's."""
    from ksearch_agent.resources import register_engine

    key = _key(ctx)
    with _lock:
        if key in _backends:
            return _backends[key]
        backend: EvaluationBackend
        if ctx.backend == "ray":
            from ksearch_agent.backends.ray_backend import RayBackend

            backend = RayBackend(ctx.parallel, address=ctx.ray_address, device=ctx.device)
        else:
            slots = slots_wanted(ctx)
            if slots == 1:
                backend = LocalBackend([("local0", ProcessEngine(ctx.device))], owned=[])
            else:
                gpus = [] if ctx.device == "cpu" else visible_gpus()
                shared = ProcessEngine(ctx.device) if not gpus else None
                local = local_backend(slots, device=ctx.device, shared=shared, gpus=gpus)
                if gpus:
                    register_engine(ctx.device, local.engines[0])  # type: ignore[arg-type]
                backend = local
        _backends[key] = backend
        return backend


def settle_parallel(ctx: SearchContext) -> SearchContext:
    """``ctx`` with ``parallel`` decided (as given, else one cycle per GPU: locally the GPUs this machine
    sees, on Ray the cluster's) and its backend made now: a missing Ray or an unreachable cluster is
    reported (:class:`BackendUnavailable`) before the run starts, and local GPU slots register their leased
    engine for the coder's tools before any tool runs."""
    if ctx.parallel is None and ctx.backend == "ray":
        backend = backend_for(ctx)
        settled = dataclasses.replace(ctx, parallel=backend.slots)
        register_backend(settled, backend)
        return settled
    if ctx.parallel is None:
        ctx = dataclasses.replace(ctx, parallel=slots_wanted(ctx))
    backend_for(ctx)
    return ctx


def register_backend(ctx: SearchContext, backend: EvaluationBackend) -> None:
    """Use a caller-owned backend (tests, long-lived servers) for searches with ``ctx``'s settings."""
    with _lock:
        _backends[_key(ctx)] = backend


def unregister_backend(ctx: SearchContext) -> None:
    with _lock:
        _backends.pop(_key(ctx), None)


@atexit.register
def close_all() -> None:
    with _lock:
        for backend in _backends.values():
            try:
                backend.close()
            except Exception:  # noqa: BLE001,S110 - exiting anyway
                pass
        _backends.clear()
