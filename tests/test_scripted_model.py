"""The scripted chat model used by agent and graph tests behaves like a real chat model."""

from __future__ import annotations

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
from langchain_core.tools import tool
from scripted_model import ScriptedChatModel


@tool
def compile_kernel(source: str) -> str:
    """Compile a kernel and report errors."""
    return source


def test_returns_scripted_answers_in_order() -> None:
    model = ScriptedChatModel(["first", AIMessage(content="second")])
    assert model.invoke([HumanMessage("a")]).content == "first"
    assert model.invoke([HumanMessage("b")]).content == "second"
    assert model.remaining == 0


def test_raises_scripted_exceptions_then_continues() -> None:
    model = ScriptedChatModel([TimeoutError("upstream timeout"), "recovered"])
    with pytest.raises(TimeoutError, match="upstream timeout"):
        model.invoke([HumanMessage("a")])
    assert model.invoke([HumanMessage("a")]).content == "recovered"


def test_records_every_prompt() -> None:
    model = ScriptedChatModel(["x", "y"])
    prompt = [SystemMessage("be brief"), HumanMessage("write a kernel")]
    model.invoke(prompt)
    model.invoke("plain string prompt")
    assert model.calls[0] == prompt
    assert model.calls[1][0].content == "plain string prompt"


def test_raises_assertion_error_when_script_is_exhausted() -> None:
    model = ScriptedChatModel(["only"])
    model.invoke([HumanMessage("a")])
    with pytest.raises(AssertionError, match="script exhausted"):
        model.invoke([HumanMessage("one too many")])
    assert len(model.calls) == 2


def test_answers_carry_rough_usage_metadata() -> None:
    model = ScriptedChatModel(["x" * 40])
    reply = model.invoke([HumanMessage("p" * 400)])
    assert reply.usage_metadata == {"input_tokens": 100, "output_tokens": 10, "total_tokens": 110}


def test_bind_tools_returns_self_and_records_tool_names() -> None:
    model = ScriptedChatModel([])
    bound = model.bind_tools(
        [compile_kernel, {"type": "function", "function": {"name": "run_bench", "parameters": {}}}]
    )
    assert bound is model
    assert model.bound_tools == ["compile_kernel", "run_bench"]


def test_tool_calls_on_scripted_messages_are_kept() -> None:
    call = {"name": "compile_kernel", "args": {"source": "__global__ void k() {}"}, "id": "call_1"}
    scripted = AIMessage(content="", tool_calls=[call])
    model = ScriptedChatModel([scripted])
    reply = model.bind_tools([compile_kernel]).invoke([HumanMessage("compile it")])
    assert isinstance(reply, AIMessage)
    assert [(c["name"], c["args"], c["id"]) for c in reply.tool_calls] == [
        ("compile_kernel", {"source": "__global__ void k() {}"}, "call_1")
    ]
    assert scripted.usage_metadata is None  # the script item itself is not modified
