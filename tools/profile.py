"""profile_h100: flushed, event-timed latency against the reference on the GPU."""

from __future__ import annotations

import json

from pydantic import Field

from ksearch_agent.results import ProfileResult
from ksearch_agent.tools.session import WORKLOADS_DESCRIPTION, CandidateFiles, ToolSession


class ProfileInput(CandidateFiles):
    """Time the candidate against the reference on the H100 (latency, speedup, % of roofline per
    workload)."""

    workloads: list[str] | None = Field(default=None, description=WORKLOADS_DESCRIPTION)


def profile_h100(inp: ProfileInput, session: ToolSession) -> ProfileResult:
    """Median/IQR latency, speedup vs the reference, TFLOP/s, GB/s and roofline fraction per workload.

    Without a GPU the result says ``measured=False`` rather than inventing numbers.
    """
    return session.engine.profile(
        session.task, session.candidate(inp.files), session.workloads(inp.workloads)
    )


def profile_reply(result: ProfileResult) -> str:
    """The result as the model reads it: compact JSON, logs clipped."""
    return json.dumps(
        {
            "measured": result.measured,
            "note": result.note,
            "geomean_speedup": result.geomean_speedup,
            "workloads": [
                {
                    "id": w.workload,
                    "status": w.status,
                    "latency_ms": w.latency_ms,
                    "speedup": w.speedup,
                    "roofline_fraction": w.roofline_fraction,
                    "log": w.log[-400:],
                }
                for w in result.workloads
            ],
        }
    )
