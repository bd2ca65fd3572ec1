"""run_correctness: every workload, several trials, unpredictable inputs, in an isolated worker."""

from __future__ import annotations

import json

from pydantic import Field

from ksearch_agent.results import CorrectnessResult
from ksearch_agent.tools.session import WORKLOADS_DESCRIPTION, CandidateFiles, ToolSession


class CorrectnessInput(CandidateFiles):
    """Check the candidate against the reference on the task's workloads; per-workload status, errors and
    a log."""

    workloads: list[str] | None = Field(default=None, description=WORKLOADS_DESCRIPTION)


def run_correctness(inp: CorrectnessInput, session: ToolSession, *, trials: int = 2) -> CorrectnessResult:
    """Per-workload PASSED / COMPILE_ERROR / RUNTIME_ERROR / INCORRECT_* / TIMEOUT with errors and a log."""
    return session.engine.run_correctness(
        session.task, session.candidate(inp.files), session.workloads(inp.workloads), trials=trials
    )


def correctness_reply(result: CorrectnessResult) -> str:
    """The result as the model reads it: compact JSON, logs clipped."""
    return json.dumps(
        {
            "status": result.status,
            "checked": result.checked,
            "note": result.note,
            "workloads": [
                {"id": w.workload, "status": w.status, "max_abs_error": w.max_abs_error, "log": w.log[-800:]}
                for w in result.workloads
            ],
        }
    )
