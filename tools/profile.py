"""profile_h100: flushed, event-timed latency against the reference (and a baseline) on the GPU."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from ksearch_agent.candidate import Candidate
from ksearch_agent.engine import Engine
from ksearch_agent.results import ProfileResult
from ksearch_agent.task import load_task
from ksearch_agent.tools.engine_handle import shared_engine


class ProfileInput(BaseModel):
    task: str
    candidate: Candidate
    workloads: list[str] | None = None
    baseline: Candidate | None = None
    protocol: Literal["flushed", "gpumode"] = "flushed"
    budget_ms: float = Field(default=500.0, gt=0, description="timing budget per function and workload")


def profile_h100(inp: ProfileInput, engine: Engine | None = None) -> ProfileResult:
    """Median/IQR latency, speedup vs the reference, TFLOP/s, GB/s and roofline fraction per workload.

    Without a GPU the result says ``measured=False`` rather than inventing numbers.
    """
    return (engine or shared_engine()).profile(
        load_task(inp.task),
        inp.candidate,
        inp.workloads,
        baseline=inp.baseline,
        protocol=inp.protocol,
        budget_ms=inp.budget_ms,
    )
