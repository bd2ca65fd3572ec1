"""The coder's tools as the LLM sees them, built from the pydantic inputs, and the running of its calls.

One surface: each LangChain tool's schema is its pydantic input model (name, description and fields as
written there), and calling the tool runs the same typed function a library user calls. A call whose
arguments do not validate, name an unknown tool or could not even be parsed comes back to the model as an
error message naming the problem, never as an exception in the graph.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from langchain_core.tools import StructuredTool
from pydantic import BaseModel, ValidationError

from ksearch_agent.tools.compile import CompileInput, compile_candidate, compile_reply
from ksearch_agent.tools.correctness import CorrectnessInput, correctness_reply, run_correctness
from ksearch_agent.tools.profile import ProfileInput, profile_h100, profile_reply
from ksearch_agent.tools.session import CandidateFiles, ToolSession

_SPECS: list[tuple[str, type[BaseModel], Callable[[Any, ToolSession], str]]] = [
    ("compile", CompileInput, lambda inp, s: compile_reply(compile_candidate(inp, s))),
    ("run_correctness", CorrectnessInput, lambda inp, s: correctness_reply(run_correctness(inp, s))),
    ("profile_h100", ProfileInput, lambda inp, s: profile_reply(profile_h100(inp, s))),
]
TOOL_NAMES = [name for name, _, _ in _SPECS]
ENGINE_CHECK = "engine_check"
"""Not a tool the model sees: the check the engine runs on a code answer when the endpoint has no tool
calling (:func:`check_as_text`); it uses the same budget as tool calls."""


def _runner(
    model: type[BaseModel], run: Callable[[Any, ToolSession], str], session: ToolSession | None
) -> Callable[..., str]:
    def call(**kwargs: Any) -> str:
        if session is None:
            raise RuntimeError("these tools were built to be offered to a model, not run (no session)")
        return run(model(**kwargs), session)

    return call


def coder_tools(session: ToolSession | None = None) -> list[StructuredTool]:
    """The LangChain tools for the coder; ``session`` None gives tools that can be offered but not run."""
    return [
        StructuredTool.from_function(
            func=_runner(model, run, session),
            name=name,
            description=" ".join((model.__doc__ or name).split()),
            args_schema=model,
        )
        for name, model, run in _SPECS
    ]


def _validation_text(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or '(root)'}: {e['msg']}" for e in exc.errors())


def run_tool_call(call: dict[str, Any], session: ToolSession) -> str:
    """Run one tool call of the model (``{"name", "args", "id"}``, plus ``"invalid"`` holding the parse
    problem when its arguments were not JSON); the result is the text of the tool message."""
    name = call.get("name")
    if call.get("invalid") is not None:
        return (
            f"error: your call to {name} could not be read: {call['invalid']}. "
            "Call it again with the arguments as one valid JSON object."
        )
    tool = {t.name: t for t in coder_tools(session)}.get(str(name))
    if tool is None:
        return f"error: unknown tool {name!r}; available: {', '.join(TOOL_NAMES)}"
    try:
        return str(tool.invoke(call.get("args") or {}))
    except ValidationError as exc:
        return f"error: invalid arguments for {name}: {_validation_text(exc)}"
    except (ValueError, KeyError) as exc:
        return f"error: invalid arguments for {name}: {exc}"


def check_as_text(files: dict[str, str], session: ToolSession) -> str:
    """For an endpoint without tool calling: compile the files and check them on every workload, and say
    the outcome in words the model can act on."""
    try:
        inp = CandidateFiles(files=files)
        compiled = compile_candidate(CompileInput(files=inp.files), session)
    except (ValidationError, ValueError) as exc:
        return f"The engine could not take these files: {exc}"
    if not compiled.ok:
        return f"The engine compiled your files and compilation failed:\n{compile_reply(compiled)}"
    checked = run_correctness(CorrectnessInput(files=files), session)
    verdict = "every workload passed" if checked.status == "PASSED" else f"status {checked.status}"
    return (
        f"The engine compiled your files (ok) and checked them against the reference: {verdict}.\n"
        f"compile: {compile_reply(compiled)}\ncorrectness: {correctness_reply(checked)}"
    )


def parse_problem(raw_args: Any) -> str:
    """Why a tool call's raw argument text is not a JSON object, in one line."""
    if not isinstance(raw_args, str):
        return "the arguments were not a JSON object"
    try:
        value = json.loads(raw_args)
    except json.JSONDecodeError as exc:
        return f"the arguments are not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"
    return "the arguments are not a JSON object" if not isinstance(value, dict) else "unreadable arguments"
