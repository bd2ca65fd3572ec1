"""`ksearch run` against OpenAI-compatible endpoints that behave the way real ones do, over real HTTP
(ChatOpenAI → loopback server in the test): one test per server behaviour, each with the exit code and the
message the user sees. The CLI runs in-process (Typer's runner) with the session's CPU engine."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from graph_script import GOOD, code_answer, edit_answer, initial_answer
from openai_endpoint import (
    FAST_RETRY,
    NO_JSON_MODE,
    REASONING_MODEL,
    VLLM_WITHOUT_TOOL_PARSER,
    Endpoint,
    Error,
    Reply,
    closed_port_url,
    tool_call,
)
from typer.testing import CliRunner

from ksearch_agent.cli import app
from ksearch_agent.engine import Engine
from ksearch_agent.llm.usage import PriceTable, budget_problem
from ksearch_agent.resources import register_engine, store_for

pytestmark = pytest.mark.enable_socket

KEY = "sk-test-SECRET-4242"


@pytest.fixture(autouse=True)
def _cpu_engine(cpu_engine: Engine) -> None:
    register_engine("cpu", cpu_engine)


def ksearch(*args: str) -> Any:
    """Run the CLI in-process; stdout, stderr and the exit code come back separately."""
    env = {"OPENAI_API_KEY": KEY, "KSEARCH_MODEL": "", "KSEARCH_BASE_URL": ""}
    return CliRunner().invoke(app, list(args), env=env, catch_exceptions=False)


def search(url: str, runs: Path, *extra: str, model: str = "m") -> Any:
    """One round on rmsnorm on the CPU, with short client retries."""
    return ksearch(
        "run", "rmsnorm", "--model", model, "--base-url", url, "--rounds", "1", "--device", "cpu",
        "--runs-root", str(runs), "--confirm-top", "0", "--llm-retries", "1", "--request-timeout", "20",
        *extra,
    )  # fmt: skip


def run_dir(runs: Path) -> Path:
    (only,) = list(runs.iterdir())
    return only


def user_texts(body: dict[str, Any]) -> list[str]:
    return [str(m.get("content")) for m in body["messages"] if m["role"] == "user"]


GOOD_RUN = [initial_answer(), code_answer(GOOD), edit_answer([])]


# ---------------------------------------------------------------------------------- the server's limits


def test_reasoning_model_refusing_temperature_is_asked_again_without_it_and_never_again(
    tmp_path: Path,
) -> None:
    with Endpoint(GOOD_RUN, refuse=REASONING_MODEL) as server:
        out = search(server.url, tmp_path / "runs", "--temperature", "0.2")
    assert out.exit_code == 0, out.stdout + out.stderr
    assert [("temperature" in b) for b in server.requests] == [True, False, False, False]
    assert "refused a temperature setting" in out.stdout and "Traceback" not in out.stderr


def test_server_without_tool_calling_gets_code_answers_checked_by_the_engine(tmp_path: Path) -> None:
    # vLLM started without --enable-auto-tool-choice answers 400 to any request that carries tools.
    script = [initial_answer(), code_answer(GOOD), code_answer(GOOD), edit_answer([])]
    with Endpoint(script, refuse=VLLM_WITHOUT_TOOL_PARSER) as server:
        out = search(server.url, tmp_path / "runs")
    assert out.exit_code == 0, out.stdout + out.stderr
    assert sum("tools" in b for b in server.requests) == 1  # refused once, remembered for the run
    second_coder_prompt = user_texts(server.requests[3])
    assert "cannot call tools" in second_coder_prompt[0]
    assert "The engine compiled your files (ok)" in second_coder_prompt[-1]
    assert "every workload passed" in second_coder_prompt[-1]
    assert "no tool calling" in out.stdout and "best candidate" in out.stdout
    assert sum('"endpoint_refused_parameter"' in line for line in out.stderr.splitlines()) == 1


def test_server_without_json_mode_is_asked_plainly_from_then_on(tmp_path: Path) -> None:
    with Endpoint(GOOD_RUN, refuse=NO_JSON_MODE) as server:
        out = search(server.url, tmp_path / "runs")
    assert out.exit_code == 0, out.stdout + out.stderr
    assert sum("response_format" in b for b in server.requests) == 1
    assert "no JSON mode" in out.stdout


def test_answer_cut_at_the_output_limit_is_asked_for_again_shorter(tmp_path: Path) -> None:
    cut = Reply(initial_answer()[:300], finish_reason="length")
    with Endpoint([cut, *GOOD_RUN]) as server:
        out = search(server.url, tmp_path / "runs", "--max-output-tokens", "64")
    assert out.exit_code == 0, out.stdout + out.stderr
    assert server.requests[0]["max_completion_tokens"] == 64
    assert "cut off at the output-token limit" in user_texts(server.requests[1])[-1]
    assert "best candidate" in out.stdout and "Traceback" not in out.stderr
    assert "model: 1 answer(s) cut off at the output-token limit were asked for again" in out.stdout


def test_malformed_tool_arguments_are_answered_with_the_parse_problem(tmp_path: Path) -> None:
    broken = Reply(tool_calls=[tool_call("compile", '{"files": {"run.py": "import torch')])
    with Endpoint([initial_answer(), broken, code_answer(GOOD), edit_answer([])]) as server:
        out = search(server.url, tmp_path / "runs")
    assert out.exit_code == 0, out.stdout + out.stderr
    answer = [m for m in server.requests[2]["messages"] if m["role"] == "tool"]
    assert len(answer) == 1 and answer[0]["tool_call_id"] == "call_1"
    assert "could not be read: the arguments are not valid JSON" in answer[0]["content"]
    assert (
        "model: 1 tool call(s) with unreadable arguments were answered with the parse problem" in out.stdout
    )
    events = store_for(run_dir(tmp_path / "runs")).events()
    assert any(e["kind"] == "tool_result" for e in events)


# -------------------------------------------------------------------------------------------- failures


def test_rate_limit_then_success_is_retried_by_the_client(tmp_path: Path) -> None:
    with Endpoint([Error(429, "Rate limit reached", headers=FAST_RETRY), *GOOD_RUN]) as server:
        out = search(server.url, tmp_path / "runs")
    assert out.exit_code == 0, out.stdout + out.stderr
    assert len(server.requests) == 4


def test_server_error_that_persists_exits_three_keeps_the_run_and_resume_continues_elsewhere(
    tmp_path: Path,
) -> None:
    runs = tmp_path / "runs"
    failing = Error(500, "upstream model crashed", headers=FAST_RETRY, repeat=True)
    with Endpoint([initial_answer(), code_answer(GOOD), failing]) as broken:
        out = search(broken.url, runs)
    assert out.exit_code == 3
    assert f"LLM endpoint {broken.url} (model m) answered HTTP 500" in out.stderr
    assert "upstream model crashed" in out.stderr and "Traceback" not in out.stderr
    assert f"ksearch resume {run_dir(runs)} --base-url URL --model NAME" in out.stderr
    assert len(broken.requests) == 4  # the world-model update, tried once and retried once by the client
    assert [r["status"] for r in store_for(run_dir(runs)).candidates()] == ["PASSED"]  # nothing measured lost

    with Endpoint([edit_answer([])]) as other:
        again = ksearch("resume", str(run_dir(runs)), "--base-url", other.url, "--model", "m2")
    assert again.exit_code == 0, again.stdout + again.stderr
    assert [b["model"] for b in other.requests] == ["m2"]
    assert "best candidate" in again.stdout


def test_nothing_listening_exits_three_naming_the_url(tmp_path: Path) -> None:
    url = closed_port_url()
    out = search(url, tmp_path / "runs", "--llm-retries", "0")
    assert out.exit_code == 3
    assert f"LLM endpoint {url} (model m): connection refused" in out.stderr
    assert "Traceback" not in out.stderr


def test_refused_api_key_exits_three_without_printing_or_recording_the_key(tmp_path: Path) -> None:
    refusal = Error(401, f"Incorrect API key provided: {KEY}", code="invalid_api_key", repeat=True)
    with Endpoint([], refuse=lambda body: refusal) as server:
        out = search(server.url, tmp_path / "runs")
    assert out.exit_code == 3
    assert "answered HTTP 401: refused the API key" in out.stderr
    assert server.headers[0]["authorization"] == f"Bearer {KEY}"  # it was sent...
    directory = run_dir(tmp_path / "runs")
    assert "HTTP 401" in (directory / "llm_transcript.jsonl").read_text()
    assert KEY not in out.stderr + out.stdout  # ...and is written nowhere: not in the output,
    written = sorted(p for p in directory.rglob("*") if p.is_file())
    assert directory / "checkpoints.sqlite" in written  # (where LangGraph keeps the error the run stopped on)
    assert [p.name for p in written if KEY.encode() in p.read_bytes()] == []  # nor in any file of the run


def test_budget_in_usd_for_an_unpriced_model_is_refused_before_the_run(tmp_path: Path) -> None:
    with Endpoint([]) as server:
        out = search(server.url, tmp_path / "runs", "--budget-usd", "1", model="local-qwen")
    assert out.exit_code == 2
    assert "--budget-usd 1 cannot be enforced: no price is known for model 'local-qwen'" in out.stderr
    assert server.requests == [] and not (tmp_path / "runs").exists()


def test_a_price_table_that_covers_the_model_lets_the_budget_stand(tmp_path: Path) -> None:
    table = tmp_path / "prices.json"
    table.write_text(json.dumps({"local-qwen": [0.1, 0.2]}))
    assert budget_problem("local-qwen", 1.0, PriceTable.from_file(table)) is None
    assert budget_problem("local-qwen", 1.0, PriceTable()) is not None
    assert budget_problem("local-qwen", None, PriceTable()) is None


# ------------------------------------------------------------------------ what a good run leaves behind


@pytest.fixture
def good_run(tmp_path: Path) -> Iterator[tuple[Any, Path]]:
    with Endpoint(GOOD_RUN) as server:
        out = search(server.url, tmp_path / "runs")
    assert out.exit_code == 0, out.stdout + out.stderr
    yield out, run_dir(tmp_path / "runs")


def test_transcript_records_every_exchange_and_show_llm_prints_it(good_run: tuple[Any, Path]) -> None:
    _, directory = good_run
    records = [json.loads(line) for line in (directory / "llm_transcript.jsonl").read_text().splitlines()]
    assert [r["node"] for r in records] == ["planner", "coder", "world_model_update"]
    coder = records[1]
    assert coder["params"]["tools"] == ["compile", "run_correctness", "profile_h100"]
    assert coder["finish_reason"] == "stop" and coder["usage"]["output_tokens"] > 0
    assert coder["action"] and coder["reply"]["content"].startswith(code_answer(GOOD)[:20])
    assert KEY not in (directory / "llm_transcript.jsonl").read_text()
    shown = ksearch("show", str(directory), "--llm")
    assert shown.exit_code == 0 and "#2 coder · round 1" in shown.stdout and "def run(" in shown.stdout


def test_show_prints_tokens_and_cost_per_node_and_never_a_false_zero(good_run: tuple[Any, Path]) -> None:
    _, directory = good_run
    shown = ksearch("show", str(directory))
    assert shown.exit_code == 0
    assert "cost unknown" in shown.stdout and "$0.0000" not in shown.stdout
    assert "  coder: 1 calls" in shown.stdout and "  planner: 1 calls" in shown.stdout


def test_progress_without_a_terminal_is_one_json_line_per_event(good_run: tuple[Any, Path]) -> None:
    out, _ = good_run
    lines = [json.loads(x) for x in out.stderr.splitlines() if x.startswith("{") and '"attempt"' in x]
    assert {"round", "action", "attempt", "status", "best"} <= set(lines[0])
    best = [x for x in lines if x["event"] == "new_best"]
    assert best and best[0]["best_candidate"] and best[0]["round"] == 1
