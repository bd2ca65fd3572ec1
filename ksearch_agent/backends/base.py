"""The interface every evaluation backend offers, and what one evaluation comes back as.

A backend runs full evaluations (correctness, then the profile) of candidates on *slots*: a GPU of this
machine (``local``) or an actor of a Ray cluster (``ray``). The search calls :meth:`EvaluationBackend.evaluate`
from several threads at once, one call per open cycle; a backend is safe for that. Whatever goes wrong
with a slot (a judge or a Ray worker that dies, a node that is lost, a hang past the backend's limit)
comes back as a status on that evaluation, never as an exception: the run goes on. Only a broken task
(:class:`~ksearch_agent.task.TaskFileError`) is raised, since no candidate is at fault for it.
"""

from __future__ import annotations

import queue
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from ksearch_agent.candidate import Candidate
from ksearch_agent.results import CorrectnessResult, EvalReport, OverallStatus
from ksearch_agent.task import Task


class Evaluator(Protocol):
    """What a slot needs from an engine: the real :class:`~ksearch_agent.engine.Engine`, or a test's fake."""

    def evaluate(self, task: Task, candidate: Candidate, *, trials: int = 2) -> EvalReport: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class Placed:
    """One finished evaluation and where it ran: ``slot`` names the backend's slot (``gpu0/1``,
    ``ray-actor-3``), ``device`` the GPU model (or CPU) that judged it, ``node`` the host."""

    report: EvalReport
    slot: str
    device: str
    node: str


class EvaluationBackend(Protocol):
    """Runs evaluations on ``slots`` places at once; thread-safe."""

    name: str

    @property
    def slots(self) -> int: ...

    def evaluate(self, task: Task, candidate: Candidate, *, trials: int = 2) -> Placed: ...

    def close(self) -> None: ...


def device_of(report: EvalReport) -> str:
    """The device that judged ``report``: the profile's GPU when it was timed, else correctness's."""
    if report.profile is not None and report.profile.device:
        return report.profile.device
    return report.correctness.device


def lost_report(
    task: Task, candidate: Candidate, why: str, *, status: OverallStatus = "RUNTIME_ERROR", device: str = ""
) -> EvalReport:
    """The record of an evaluation that did not finish because its slot failed (not the candidate's verdict,
    which is unknown): the status, and a note saying what was lost."""
    return EvalReport(
        task=task.name,
        candidate_id=candidate.id,
        language=candidate.language,
        status=status,
        correctness=CorrectnessResult(
            status=status,
            checked="gpu" if device and "cpu" not in device.lower() else "interpreter",
            device=device or "unknown",
            note=f"evaluation lost, not judged: {why}"[:4000],
        ),
    )


S = TypeVar("S")


class SlotPool(Generic[S]):
    """A fixed set of slots handed out one caller at a time, first come first served."""

    def __init__(self, slots: list[S]) -> None:
        if not slots:
            raise ValueError("a backend needs at least one evaluation slot")
        self._all = list(slots)
        self._idle: queue.Queue[S] = queue.Queue()
        for s in slots:
            self._idle.put(s)

    def __len__(self) -> int:
        return len(self._all)

    @property
    def all(self) -> list[S]:
        return list(self._all)

    @contextmanager
    def take(self) -> Iterator[S]:
        """Wait for an idle slot, hold it for the block, give it back even when the block raises."""
        slot = self._idle.get()
        try:
            yield slot
        finally:
            self._idle.put(slot)
