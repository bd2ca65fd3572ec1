"""The ``ray`` backend: each evaluation is a call on a Ray actor that owns one GPU of the cluster.

``pip install "ksearch-agent[ray]"``. The driver connects with ``ray.init(address=...)`` (``--ray-address``,
else ``RAY_ADDRESS``, else a Ray started on this machine). Each slot is an actor holding a long-lived
:class:`~ksearch_agent.engine.Engine` (its judge stays warm between evaluations) with ``num_gpus=1``: Ray
gives it a whole GPU, so a profile never shares its GPU with another slot, and the candidate and its
reference are timed there in the same call. Correctness-only work (``device="cpu"``, or a cluster without
GPUs) asks for ``correctness_gpus`` of a GPU (0 by default) and one CPU.

The task's files and the candidate's sources travel as data; the report comes back to the driver, which
stores it in the run directory. An actor that dies mid-evaluation (a worker killed, a node lost) gives that
evaluation ``RUNTIME_ERROR`` with a note saying the evaluation was lost; Ray restarts the actor and the
next evaluation uses it. Calls are never retried: a candidate that took its worker down is not run again.
"""

from __future__ import annotations

import functools
import os
import platform
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from ksearch_agent.backends.base import Evaluator, Placed, SlotPool, device_of, lost_report
from ksearch_agent.backends.task_blob import TaskBlob, TaskCache
from ksearch_agent.candidate import Candidate
from ksearch_agent.results import EvalReport
from ksearch_agent.task import Task, TaskFileError

log = structlog.get_logger("ksearch.backend")

RAY_MISSING = 'the ray backend needs Ray on this machine: pip install "ksearch-agent[ray]"'


class BackendUnavailable(RuntimeError):
    """The backend cannot start here (Ray missing, cluster unreachable): the message says what to do."""


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise BackendUnavailable(RAY_MISSING) from None
    return ray


def engine_evaluator(device: str) -> Evaluator:
    """The evaluator a slot actor owns by default: a real engine on the GPU Ray gave it (or the CPU)."""
    from ksearch_agent.engine import Engine

    return Engine(device=device)  # type: ignore[arg-type]


class EvaluationActor:
    """Runs inside a Ray worker process: one evaluator, kept between calls; tasks cached by content."""

    def __init__(self, factory: Callable[[], Evaluator]) -> None:
        self._factory = factory
        self._evaluator: Evaluator | None = None
        self._tasks = TaskCache(Path(tempfile.mkdtemp(prefix="ksearch-ray-tasks-")))

    def evaluate(self, blob: dict[str, Any], candidate: dict[str, Any], trials: int) -> dict[str, Any]:
        try:
            task = self._tasks.load(TaskBlob.model_validate(blob))
            if self._evaluator is None:
                self._evaluator = self._factory()
            report = self._evaluator.evaluate(task, Candidate.model_validate(candidate), trials=trials)
        except TaskFileError as exc:
            return {"task_error": [exc.file, exc.field, str(exc)], "node": platform.node()}
        return {"report": report.model_dump(mode="json"), "node": platform.node()}

    def pid(self) -> int:
        return os.getpid()

    def close(self) -> None:
        """Stop the evaluator's worker processes before the actor goes (they live in their own sessions)."""
        if self._evaluator is not None:
            self._evaluator.close()
            self._evaluator = None


@dataclass
class RaySlot:
    """A slot's current actor (replaced in place when Ray gives up restarting it)."""

    name: str
    actor: Any


class RayBackend:
    """Thread-safe: each :meth:`evaluate` waits for an idle actor and calls it."""

    name = "ray"

    def __init__(
        self,
        slots: int | None = None,
        *,
        address: str | None = None,
        device: str = "auto",
        evaluator_factory: Callable[[], Evaluator] | None = None,
        timeout_s: float = 3600.0,
        start_timeout_s: float = 300.0,
        correctness_gpus: float = 0.0,
        init_kwargs: dict[str, Any] | None = None,
    ) -> None:
        ray = import_ray()
        self._ray = ray
        if not ray.is_initialized():
            address = address or os.environ.get("RAY_ADDRESS") or None
            try:
                ray.init(
                    address=address, ignore_reinit_error=True, log_to_driver=False, **(init_kwargs or {})
                )
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise BackendUnavailable(
                    f"could not connect to Ray at {address or 'a new local Ray'}: {exc}"
                ) from exc
        gpus = int(ray.cluster_resources().get("GPU", 0))
        timed = device != "cpu" and gpus > 0
        count = slots if slots is not None else max(gpus, 1)
        if timed and count > gpus:
            log.warning("fewer GPUs than slots: extra cycles wait for a GPU", slots=count, gpus=gpus)
            count = gpus
        # A timing slot asks for a whole GPU (nothing else may run on it while it times) and no CPU, so the
        # cluster's CPUs stay free for correctness-only slots and Ray's own work.
        options: dict[str, Any] = (
            {"num_gpus": 1, "num_cpus": 0} if timed else {"num_gpus": correctness_gpus, "num_cpus": 1}
        )
        factory = evaluator_factory or functools.partial(engine_evaluator, "gpu" if timed else "cpu")
        self._remote = ray.remote(max_restarts=-1, max_task_retries=0, **options)(EvaluationActor)
        self._factory = factory
        self.timeout_s = timeout_s
        self.start_timeout_s = start_timeout_s
        self.timed = timed
        self._pool = SlotPool([RaySlot(f"ray{i}", self._remote.remote(factory)) for i in range(count)])
        self._closed = threading.Event()
        ready, waiting = ray.wait(
            [a.pid.remote() for a in self.actors], num_returns=count, timeout=start_timeout_s
        )
        if waiting:
            self.close()
            raise BackendUnavailable(
                f"Ray placed {len(ready)} of {count} evaluation slots ({options} each) within "
                f"{start_timeout_s:.0f}s; the cluster has {ray.available_resources()} free"
            )

    @property
    def slots(self) -> int:
        return len(self._pool)

    @property
    def actors(self) -> list[Any]:
        return [s.actor for s in self._pool.all]

    def evaluate(self, task: Task, candidate: Candidate, *, trials: int = 2) -> Placed:
        ray = self._ray
        blob = TaskBlob.from_task(task).model_dump()
        with self._pool.take() as slot:
            ref = slot.actor.evaluate.remote(blob, candidate.model_dump(), trials)
            try:
                out = ray.get(ref, timeout=self.timeout_s)
            except ray.exceptions.GetTimeoutError:
                ray.cancel(ref, force=True)
                ray.kill(slot.actor, no_restart=True)
                slot.actor = self._remote.remote(self._factory)
                report = lost_report(
                    task,
                    candidate,
                    f"no result from {slot.name} within {self.timeout_s:.0f}s",
                    status="TIMEOUT",
                )
                return Placed(report=report, slot=slot.name, device=device_of(report), node="unknown")
            except (
                ray.exceptions.RayActorError,
                ray.exceptions.RayTaskError,
                ray.exceptions.RayError,
            ) as exc:
                log.warning("ray slot lost mid-evaluation", slot=slot.name, error=str(exc)[:500])
                report = lost_report(
                    task,
                    candidate,
                    f"the Ray worker of {slot.name} died or its node was lost "
                    f"({type(exc).__name__}: {str(exc).splitlines()[0][:300]})",
                )
                self._recover(slot)
                return Placed(report=report, slot=slot.name, device=device_of(report), node="unknown")
        if "task_error" in out:
            file, field, message = out["task_error"]
            prefix = f"{file}: field '{field}': "
            raise TaskFileError(file, field, message.removeprefix(prefix))
        report = EvalReport.model_validate(out["report"])
        return Placed(report=report, slot=slot.name, device=device_of(report), node=str(out.get("node")))

    def _recover(self, slot: RaySlot) -> None:
        """Hold ``slot`` until its actor answers again (Ray restarts it); a fresh actor if it does not."""
        ray = self._ray
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            try:
                ray.get(slot.actor.pid.remote(), timeout=max(1.0, deadline - time.monotonic()))
                return
            except ray.exceptions.GetTimeoutError:
                break
            except ray.exceptions.RayError:
                time.sleep(0.5)  # still restarting
        log.warning("ray slot did not come back; starting a fresh actor", slot=slot.name)
        try:
            ray.kill(slot.actor, no_restart=True)
        except Exception:  # noqa: BLE001,S110 - already gone
            pass
        slot.actor = self._remote.remote(self._factory)

    def close(self) -> None:
        if self._closed.is_set():
            return
        self._closed.set()
        ray = self._ray
        actors = self.actors
        try:
            ray.get([a.close.remote() for a in actors], timeout=60)
        except Exception:  # noqa: BLE001 - an actor or the cluster is already gone; kill what is left
            log.warning("some ray slots did not close cleanly")
        for actor in actors:
            try:
                ray.kill(actor, no_restart=True)
            except Exception:  # noqa: BLE001,S110 - already gone
                pass
