"""compile: Triton or CUDA sources to sm_90a binaries with resource statistics, no GPU needed."""

from __future__ import annotations

import json

from ksearch_agent.results import CompileResult
from ksearch_agent.tools.session import CandidateFiles, ToolSession


class CompileInput(CandidateFiles):
    """Compile every kernel for sm_90a; returns errors with source lines, registers, spills, shared memory
    and whether tensor cores are used."""


def compile_candidate(inp: CompileInput, session: ToolSession) -> CompileResult:
    """Compile every kernel the candidate launches; errors carry the source line (cached by content)."""
    return session.engine.compile(session.task, session.candidate(inp.files))


def compile_reply(result: CompileResult) -> str:
    """The result as the model reads it: compact JSON, long error texts clipped."""
    return json.dumps(
        {
            "ok": result.ok,
            "errors": [e[-1500:] for e in result.errors],
            "trace_error": result.trace_error,
            "kernels": [k.model_dump(exclude_none=True) for k in result.kernels],
        }
    )
