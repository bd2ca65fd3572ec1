"""The ``local`` backend: evaluation slots on the GPUs this machine sees (nothing extra to install).

Each slot owns an :class:`~ksearch_agent.engine.Engine` (its own judge process) pinned to one GPU. With more
slots than GPUs, slots share a GPU: their correctness checks run side by side, but a profile takes the
GPU's :class:`~ksearch_agent.backends.lease.GpuLease` alone, so a candidate and its reference are timed
with nothing else on that GPU. Without a GPU the slots judge on the CPU (Triton's interpreter).
"""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass
from typing import Any

import structlog

from ksearch_agent.backends.base import Evaluator, Placed, SlotPool, device_of, lost_report
from ksearch_agent.backends.gpus import GpuInfo
from ksearch_agent.backends.lease import GpuLease
from ksearch_agent.candidate import Candidate
from ksearch_agent.engine import Engine
from ksearch_agent.reference_times import ReferenceTimes
from ksearch_agent.results import CorrectnessResult, ProfileResult
from ksearch_agent.task import Task, TaskFileError

log = structlog.get_logger("ksearch.backend")


class LeasedEngine(Engine):
    """An engine whose correctness checks hold its GPU's lease shared and whose profiles hold it alone."""

    def __init__(self, lease: GpuLease, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.lease = lease

    def run_correctness(self, *args: Any, **kwargs: Any) -> CorrectnessResult:
        with self.lease.shared():
            return super().run_correctness(*args, **kwargs)

    def profile(self, *args: Any, **kwargs: Any) -> ProfileResult:
        with self.lease.exclusive():
            return super().profile(*args, **kwargs)


@dataclass
class LocalSlot:
    name: str
    evaluator: Evaluator


class LocalBackend:
    """Thread-safe: each :meth:`evaluate` waits for an idle slot and runs there."""

    name = "local"

    def __init__(
        self, evaluators: list[tuple[str, Evaluator]], *, owned: list[Evaluator] | None = None
    ) -> None:
        self._pool = SlotPool([LocalSlot(n, e) for n, e in evaluators])
        self._owned = owned if owned is not None else [e for _, e in evaluators]
        self._node = platform.node()

    @property
    def slots(self) -> int:
        return len(self._pool)

    @property
    def engines(self) -> list[Evaluator]:
        return [s.evaluator for s in self._pool.all]

    def evaluate(self, task: Task, candidate: Candidate, *, trials: int = 2) -> Placed:
        with self._pool.take() as slot:
            try:
                report = slot.evaluator.evaluate(task, candidate, trials=trials)
            except TaskFileError:
                raise  # the task is broken: no candidate is to blame, the run must say so
            except Exception as exc:  # noqa: BLE001 - a slot's failure is this evaluation's status
                log.warning("evaluation slot failed", slot=slot.name, error=f"{type(exc).__name__}: {exc}")
                report = lost_report(
                    task, candidate, f"slot {slot.name} failed mid-evaluation: {type(exc).__name__}: {exc}"
                )
            return Placed(report=report, slot=slot.name, device=device_of(report), node=self._node)

    def close(self) -> None:
        for e in self._owned:
            e.close()


def local_backend(
    slots: int,
    *,
    device: str,
    shared: Evaluator | None = None,
    gpus: list[GpuInfo] | None = None,
) -> LocalBackend:
    """``slots`` evaluation slots spread round-robin over ``gpus`` (``visible_gpus()`` entries; none: CPU).

    ``shared`` (the process's engine for ``device``, which the coder's tools also use) becomes slot 0 when
    there is no GPU to lease; on GPUs every slot is a :class:`LeasedEngine`, and slot 0's engine is the one
    to register for the tools, so their timing takes the same leases.
    """
    if not gpus or device == "cpu":
        engines: list[tuple[str, Evaluator]] = []
        owned: list[Evaluator] = []
        for i in range(slots):
            if i == 0 and shared is not None:
                engines.append(("cpu0", shared))
                continue
            e = Engine(device="cpu")
            engines.append((f"cpu{i}", e))
            owned.append(e)
        return LocalBackend(engines, owned=owned)
    # nvidia-smi numbers GPUs in PCI bus order; make CUDA_VISIBLE_DEVICES in the judges mean the same order
    # (CUDA's default puts the fastest first). This process never initialises CUDA, so setting it is safe.
    os.environ.setdefault("CUDA_DEVICE_ORDER", "PCI_BUS_ID")
    leases = {g.index: GpuLease(f"gpu{g.index}") for g in gpus}
    times = ReferenceTimes()  # one cached reference time per workload for every slot
    per_gpu: dict[int, int] = {}
    engines = []
    for i in range(slots):
        g = gpus[i % len(gpus)]
        n = per_gpu[g.index] = per_gpu.get(g.index, -1) + 1
        e = LeasedEngine(
            leases[g.index], device=device, gpu_index=None if g.index < 0 else g.index, reference_times=times
        )
        engines.append((f"gpu{max(g.index, 0)}/{n}", e))
    return LocalBackend(engines)
