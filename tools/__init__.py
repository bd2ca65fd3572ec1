"""The coder's three tools as plain typed functions (shipped as ``ksearch_agent.tools``).

Each takes a pydantic input and returns a pydantic result; LLM tool wrappers are built on these.
"""

from ksearch_agent.tools.compile import CompileInput, compile_candidate
from ksearch_agent.tools.correctness import CorrectnessInput, run_correctness
from ksearch_agent.tools.profile import ProfileInput, profile_h100

__all__ = [
    "CompileInput",
    "CorrectnessInput",
    "ProfileInput",
    "compile_candidate",
    "profile_h100",
    "run_correctness",
]
