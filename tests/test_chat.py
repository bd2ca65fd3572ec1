"""kernel_chat: plain-words requests, the approve / edit / reject interrupt, follow-ups, and new tasks."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from graph_script import edit_answer
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command
from scripted_model import ScriptedChatModel

from ksearch_agent.chat import follow_up, match_bundled
from ksearch_agent.context import SearchContext
from ksearch_agent.engine import Engine
from ksearch_agent.graphs.kernel_chat import build_kernel_chat_graph
from ksearch_agent.llm.chat import register_model, unregister_model
from ksearch_agent.resources import register_engine, store_for


def test_requests_in_plain_words_map_to_bundled_tasks_only_when_they_fit() -> None:
    assert match_bundled("a fast fused RMSNorm for hidden 4096 in bf16") == "rmsnorm"
    assert match_bundled("optimise trimul") == "trimul"
    assert match_bundled("make softmax faster for 8192-wide rows") == "softmax"
    assert match_bundled("softmax for 1024-wide rows") is None
    assert match_bundled("rmsnorm for hidden 2048") is None
    assert match_bundled("a fused bias add and relu") is None


def test_follow_ups_refer_to_the_last_run() -> None:
    last = {"task": "rmsnorm", "language": "triton", "rounds": 2, "run_dir": "/runs/r1"}
    assert follow_up("10 more rounds", last) == {
        "task": "rmsnorm",
        "language": "triton",
        "continue_run": "/runs/r1",
        "rounds": 12,
    }
    assert follow_up("try CUDA instead", last) == {"task": "rmsnorm", "language": "cuda", "rounds": 2}
    assert follow_up("try CUDA instead", None) is None


@pytest.fixture
def chat(tmp_path: Path, cpu_engine: Engine) -> Iterator[Any]:
    register_engine("cpu", cpu_engine)
    graph = build_kernel_chat_graph(checkpointer=InMemorySaver())

    def say(text: str | Command, thread: str = "t1", **ctx_kw: Any) -> tuple[dict[str, Any], Any]:
        ctx = SearchContext(
            **{
                "device": "cpu",
                "runs_root": str(tmp_path / "runs"),
                "max_rounds": 2,
                "trials": 1,
                "model": None,
                **ctx_kw,
            }
        )
        config = {"configurable": {"thread_id": thread}, "recursion_limit": 200}
        payload = text if isinstance(text, Command) else {"messages": [("user", text)]}
        graph.invoke(payload, config, context=ctx)
        snap = graph.get_state(config)
        pending = [i.value for t in snap.tasks for i in t.interrupts]
        return snap.values, pending[0] if pending else None

    yield say


def test_bundled_request_is_approved_then_searched_with_the_playbook(chat: Any) -> None:
    _, question = chat("a fast fused RMSNorm for hidden 4096 in bf16")
    assert question["action_requests"][0]["name"] == "run_kernel_search"
    assert question["action_requests"][0]["args"]["task"] == "rmsnorm"
    assert question["review_configs"][0]["allowed_decisions"] == ["approve", "edit", "reject"]
    state, pending = chat(Command(resume={"decisions": [{"type": "approve"}]}))
    reply = state["messages"][-1].content
    assert pending is None and "rmsnorm" in reply and "Run directory" in reply and "def run(" in reply
    assert "not measured" in reply and "playbook" in reply
    assert state["last_run"]["rounds"] == 2


def test_edited_task_runs_with_the_edits(chat: Any) -> None:
    chat("make softmax faster for 8192-wide rows")
    edit = {
        "type": "edit",
        "edited_action": {
            "name": "run_kernel_search",
            "args": {"task": "softmax", "language": "triton", "rounds": 1},
        },
    }
    state, _ = chat(Command(resume={"decisions": [edit]}))
    assert "1 rounds" in state["messages"][-1].content
    assert len(store_for(state["last_run"]["run_dir"]).candidates()) == 1


def test_rejected_task_runs_nothing(chat: Any) -> None:
    chat("optimise trimul")
    state, _ = chat(Command(resume={"decisions": [{"type": "reject", "message": "not now"}]}))
    assert "no search was run (not now)" in state["messages"][-1].content and not state.get("last_run")


def test_more_rounds_continue_the_stored_run(chat: Any) -> None:
    chat("a fast fused RMSNorm for hidden 4096 in bf16")
    first, _ = chat(Command(resume={"decisions": [{"type": "approve"}]}))
    run_dir = first["last_run"]["run_dir"]
    _, question = chat("2 more rounds")
    assert question["action_requests"][0]["args"]["continue_run"] == run_dir
    second, _ = chat(Command(resume={"decisions": [{"type": "approve"}]}))
    assert second["last_run"]["run_dir"] == run_dir and len(store_for(run_dir).candidates()) == 4


def test_new_task_without_a_model_gets_a_clear_answer(chat: Any) -> None:
    state, pending = chat("a fused bias add and relu for 4096-wide fp32 rows")
    assert pending is None and "needs an LLM" in state["messages"][-1].content


BIAS_RELU_KERNEL = """import torch
import triton
import triton.language as tl


@triton.jit
def _bias_relu(x_ptr, b_ptr, y_ptr, n, BLOCK: tl.constexpr):
    row = tl.program_id(0)
    offs = tl.arange(0, BLOCK)
    m = offs < n
    x = tl.load(x_ptr + row * n + offs, mask=m, other=0.0)
    b = tl.load(b_ptr + offs, mask=m, other=0.0)
    tl.store(y_ptr + row * n + offs, tl.maximum(x + b, 0.0), mask=m)


def run(x, bias):
    y = torch.empty_like(x)
    _bias_relu[(x.shape[0],)](x, bias, y, x.shape[1], BLOCK=triton.next_power_of_2(x.shape[1]))
    return y
"""


def _task_json(out_dtype: str) -> str:
    definition = {
        "name": "bias_relu",
        "op_type": "elementwise",
        "description": "y = relu(x + bias) per row",
        "axes": {"batch": {"type": "var"}, "width": {"type": "const", "value": 4096}},
        "inputs": {
            "x": {"shape": ["batch", "width"], "dtype": "float32"},
            "bias": {"shape": ["width"], "dtype": "float32"},
        },
        "outputs": {"y": {"shape": ["batch", "width"], "dtype": "float32"}},
        "tolerance": {"rtol": 1e-5, "atol": 1e-6},
        "flops": "2 * batch * width",
        "bytes": "4 * (2 * batch * width + width)",
        "compute_unit": "memory",
    }
    reference = (
        f"import torch\n\n\ndef run(x, bias):\n    return torch.relu(x + bias).to(torch.{out_dtype})\n"
    )
    workloads = [
        {"id": "b2", "axes": {"batch": 2}, "cpu": True},
        {"id": "b16", "axes": {"batch": 16}, "cpu": True},
        {"id": "b4096", "axes": {"batch": 4096}},
    ]
    return (
        "Here is the task:\n```json\n"
        + json.dumps({"definition": definition, "reference": reference, "workloads": workloads})
        + "\n```"
    )


def test_new_task_is_written_validated_fixed_once_and_searched(chat: Any) -> None:
    world = {
        "kernel_summary": "bias + relu, memory bound",
        "open_questions": [],
        "nodes": [
            {
                "ref": "row",
                "parent": "root",
                "decision": "one program per row",
                "action": {"title": "row kernel", "difficulty": 1, "score": 0.9, "expected_speedup": 1.5},
            },
            {
                "ref": "tile",
                "parent": "root",
                "decision": "2-D tiles over rows",
                "action": {"title": "tiled kernel", "difficulty": 2, "score": 0.5, "expected_speedup": 1.4},
            },
            {
                "ref": "vec",
                "parent": "row",
                "decision": "wider loads",
                "action": {"title": "vector loads", "difficulty": 1, "score": 0.6, "expected_speedup": 1.1},
            },
        ],
    }
    model = ScriptedChatModel(
        [
            _task_json("float16"),
            _task_json("float32"),
            "```json\n" + json.dumps(world) + "\n```",
            "```python\n" + BIAS_RELU_KERNEL + "```",
            edit_answer([]),
        ]
    )
    register_model("chat-scripted", model)
    try:
        _, question = chat(
            "a fused bias add and relu for 4096-wide fp32 rows",
            thread="t-new",
            model="chat-scripted",
            max_rounds=1,
        )
        fix_prompt = str(model.calls[1][-1].content)
        assert "float16" in fix_prompt and "did not validate" in fix_prompt  # the dtype error went back once
        assert question["action_requests"][0]["args"]["task"].endswith("bias_relu")
        state, _ = chat(
            Command(resume={"decisions": [{"type": "approve"}]}),
            thread="t-new",
            model="chat-scripted",
            max_rounds=1,
        )
    finally:
        unregister_model("chat-scripted")
    reply = state["messages"][-1].content
    assert "bias_relu" in reply and "passes correctness" in reply and model.remaining == 0
