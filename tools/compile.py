"""compile: Triton or CUDA sources to sm_90a binaries with resource statistics, no GPU needed."""

from __future__ import annotations

from pydantic import BaseModel

from ksearch_agent.candidate import Candidate
from ksearch_agent.engine import Engine
from ksearch_agent.results import CompileResult
from ksearch_agent.task import load_task
from ksearch_agent.tools.engine_handle import shared_engine


class CompileInput(BaseModel):
    task: str
    candidate: Candidate
    arch: str = "sm_90a"


def compile_candidate(inp: CompileInput, engine: Engine | None = None) -> CompileResult:
    """Compile every kernel the candidate launches; errors carry the source line (cached by content)."""
    return (engine or shared_engine()).compile(load_task(inp.task), inp.candidate, arch=inp.arch)
