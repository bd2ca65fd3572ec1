"""The coder's three tools as plain typed functions (shipped as ``ksearch_agent.tools``).

Each takes a pydantic input, the fields the LLM fills in, and a :class:`ToolSession` (task, language,
engine) and returns a pydantic result; :func:`coder_tools` builds the LangChain tools the model is offered
from the same input models and functions.
"""

from ksearch_agent.tools.compile import CompileInput, compile_candidate
from ksearch_agent.tools.correctness import CorrectnessInput, run_correctness
from ksearch_agent.tools.llm_tools import ENGINE_CHECK, TOOL_NAMES, check_as_text, coder_tools, run_tool_call
from ksearch_agent.tools.profile import ProfileInput, profile_h100
from ksearch_agent.tools.session import ToolSession

__all__ = [
    "ENGINE_CHECK",
    "TOOL_NAMES",
    "CompileInput",
    "CorrectnessInput",
    "ProfileInput",
    "ToolSession",
    "check_as_text",
    "coder_tools",
    "compile_candidate",
    "profile_h100",
    "run_correctness",
    "run_tool_call",
]
