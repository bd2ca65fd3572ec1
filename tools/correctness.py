"""run_correctness: every workload, several trials, unpredictable inputs, in an isolated worker."""

from __future__ import annotations

from pydantic import BaseModel, Field

from ksearch_agent.candidate import Candidate
from ksearch_agent.engine import Engine
from ksearch_agent.results import CorrectnessResult
from ksearch_agent.task import load_task
from ksearch_agent.tools.engine_handle import shared_engine


class CorrectnessInput(BaseModel):
    task: str
    candidate: Candidate
    workloads: list[str] | None = None
    trials: int = Field(default=2, ge=1, le=20)


def run_correctness(inp: CorrectnessInput, engine: Engine | None = None) -> CorrectnessResult:
    """Per-workload PASSED / COMPILE_ERROR / RUNTIME_ERROR / INCORRECT_* / TIMEOUT with errors and a log."""
    return (engine or shared_engine()).run_correctness(
        load_task(inp.task), inp.candidate, inp.workloads, trials=inp.trials
    )
