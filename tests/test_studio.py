"""`langgraph dev` serves kernel_search and kernel_chat offline; driven here through langgraph_sdk."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    log = tmp_path_factory.mktemp("dev") / "server.log"
    env = {
        **os.environ,
        "LANGGRAPH_CLI_NO_ANALYTICS": "1",
        "LANGGRAPH_NO_VERSION_CHECK": "1",
        "LANGSMITH_TRACING": "false",
        "NO_COLOR": "1",
    }
    cli = Path(sys.executable).with_name("langgraph")
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [
                str(cli),
                "dev",
                "--port",
                str(_free_port()),
                "--host",
                "127.0.0.1",
                "--no-browser",
                "--no-reload",
                "--config",
                str(ROOT / "langgraph.json"),
            ],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        url = None
        for _ in range(300):
            text = re.sub(r"\x1b\[[0-9;]*m", "", log.read_text())
            m = re.search(
                r"API: (http://127\.0\.0\.1:\d+)", text
            )  # it moves to another port if ours was taken
            if m and "Application started up" in text:
                url = m.group(1)
                break
            if proc.poll() is not None:
                break
            time.sleep(0.2)
        assert url, f"langgraph dev did not start:\n{log.read_text()[-3000:]}"
        yield url
    finally:
        os.killpg(proc.pid, 9)
        proc.wait(timeout=30)


def _context(tmp_path: Path) -> dict[str, Any]:
    return {
        "policy": "playbook",
        "device": "cpu",
        "runs_root": str(tmp_path / "runs"),
        "max_rounds": 1,
        "trials": 1,
    }


@pytest.mark.enable_socket
def test_both_graphs_are_served_with_their_schemas(server: str) -> None:
    from langgraph_sdk import get_sync_client

    client = get_sync_client(url=server)
    found = {a["graph_id"]: a for a in client.assistants.search()}
    assert {"kernel_search", "kernel_chat"} <= set(found)
    graph = client.assistants.get_graph(found["kernel_search"]["assistant_id"])
    assert {"planner", "coder", "coder_tools", "evaluate", "repair", "world_model_update"} <= {
        n["id"] for n in graph["nodes"]
    }
    schemas = client.assistants.get_schemas(found["kernel_search"]["assistant_id"])
    assert (
        "task" in schemas["input_schema"]["properties"]
        and "world_model" in schemas["output_schema"]["properties"]
    )
    assert "max_rounds" in schemas["context_schema"]["properties"]  # Studio renders this as the settings form


@pytest.mark.enable_socket
def test_search_runs_wait_and_stream_with_progress_events(server: str, tmp_path: Path) -> None:
    from langgraph_sdk import get_sync_client

    client = get_sync_client(url=server)
    thread = client.threads.create()
    out = client.runs.wait(
        thread["thread_id"], "kernel_search", input={"task": "rmsnorm"}, context=_context(tmp_path)
    )
    assert out["status"] == "max_rounds" and out["best"] and out["world_model"]["nodes"]
    state = client.threads.get_state(thread["thread_id"])
    assert "n1" in state["values"]["world_model"]["nodes"]
    streamed = client.threads.create()
    kinds, updates = [], 0
    for part in client.runs.stream(
        streamed["thread_id"],
        "kernel_search",
        input={"task": "softmax"},
        context=_context(tmp_path),
        stream_mode=["updates", "custom"],
    ):
        if part.event.startswith("custom"):
            kinds.append(part.data.get("event"))
        elif part.event.startswith("updates"):
            updates += 1
    assert updates > 0 and {"cycle_start", "evaluated", "new_best", "finished"} <= set(kinds)


@pytest.mark.enable_socket
def test_chat_interrupt_is_resumed_through_the_server(server: str, tmp_path: Path) -> None:
    from langgraph_sdk import get_sync_client

    client = get_sync_client(url=server)
    thread = client.threads.create()
    client.runs.wait(
        thread["thread_id"],
        "kernel_chat",
        context=_context(tmp_path),
        input={"messages": [{"role": "user", "content": "make softmax faster for 8192-wide rows"}]},
    )
    state = client.threads.get_state(thread["thread_id"])
    question = state["tasks"][0]["interrupts"][0]["value"]
    assert question["action_requests"][0]["args"]["task"] == "softmax"
    out = client.runs.wait(
        thread["thread_id"],
        "kernel_chat",
        context=_context(tmp_path),
        command={"resume": {"decisions": [{"type": "approve"}]}},
    )
    assert "softmax" in out["messages"][-1]["content"] and "Run directory" in out["messages"][-1]["content"]


@pytest.mark.enable_socket
def test_two_searches_started_at_once_on_different_tasks_each_get_their_own_results(
    server: str, tmp_path: Path
) -> None:
    from langgraph_sdk import get_sync_client

    client = get_sync_client(url=server)
    started = {}
    for task in ("rmsnorm", "softmax"):
        thread = client.threads.create()
        run = client.runs.create(
            thread["thread_id"], "kernel_search", input={"task": task}, context=_context(tmp_path / task)
        )
        started[task] = (thread["thread_id"], run["run_id"])
    for task, (thread_id, run_id) in started.items():
        client.runs.join(thread_id, run_id)
        out = client.threads.get_state(thread_id)["values"]
        assert out["status"] == "max_rounds" and out["task_name"] == task
        assert out["best"] and out["eval_summary"]["status"] == "PASSED", out["eval_summary"]
        assert Path(out["run_dir"]).is_relative_to(tmp_path / task)
