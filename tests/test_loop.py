"""The K-Search loop's evidence and bookkeeping, end to end on rmsnorm with the CPU engine and a scripted model:
what repair and the world-model update are shown, repair's tools, repeats, UNVERIFIED CUDA, and errors that
must stop a run instead of being filed as failed attempts."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from graph_script import BROKEN, GOOD, WRONG, code_answer, edit_answer, initial_answer
from langchain_core.messages import AIMessage, ToolMessage
from scripted_model import ScriptedChatModel

from ksearch_agent.context import SearchContext
from ksearch_agent.engine import Engine
from ksearch_agent.graphs.kernel_search import build_kernel_search_graph, recursion_limit
from ksearch_agent.llm.chat import register_model, unregister_model
from ksearch_agent.report.history import attempts
from ksearch_agent.resources import register_engine, store_for
from ksearch_agent.results import ProfileResult, WorkloadTiming
from ksearch_agent.task import BUNDLED_TASKS_DIR
from ksearch_agent.world_model import WorldModel

SEEDS = BUNDLED_TASKS_DIR / "rmsnorm" / "seeds"


@pytest.fixture(autouse=True)
def _cpu_engine(cpu_engine: Engine) -> None:
    register_engine("cpu", cpu_engine)


@pytest.fixture
def model() -> Iterator[Any]:
    def make(script: list[Any]) -> ScriptedChatModel:
        m = ScriptedChatModel(script)
        register_model("scripted", m)
        return m

    yield make
    unregister_model("scripted")


def _ctx(tmp_path: Path, **kw: Any) -> SearchContext:
    base: dict[str, Any] = {
        "model": "scripted",
        "device": "cpu",
        "runs_root": str(tmp_path / "runs"),
        "max_rounds": 1,
        "max_attempts": 3,
        "max_tool_calls": 2,
        "trials": 1,
    }
    return SearchContext(**{**base, **kw})


def _run(ctx: SearchContext) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    graph = build_kernel_search_graph()
    config = {"configurable": {"thread_id": "t"}, "recursion_limit": recursion_limit(ctx)}
    events: list[dict[str, Any]] = []
    final: dict[str, Any] = {}
    for mode, chunk in graph.stream(
        {"task": "rmsnorm", "run_id": "r1"}, config, context=ctx, stream_mode=["custom", "values"]
    ):
        if mode == "custom":
            events.append(chunk)
        else:
            final = chunk
    return final, events


def _text(message: Any) -> str:
    return str(message.content)


# -- what repair sees and may do ----------------------------------------------------------------------


def test_repair_sees_the_task_the_actions_plan_and_what_was_measured(tmp_path: Path, model: Any) -> None:
    m = model([initial_answer(), code_answer(WRONG), code_answer(GOOD), edit_answer([])])
    _run(_ctx(tmp_path))
    prompt = _text(m.calls[2][1])
    assert "PyTorch reference (reference.py)" in prompt and "tolerance: rtol=" in prompt  # the task brief
    assert "row-per-program kernel: load, reduce, scale, store" in prompt  # the action's plan
    assert "workload | status | max abs error" in prompt and "INCORRECT_NUMERICAL" in prompt  # per workload
    assert "kernel | registers | spill stores" in prompt and "_no_weight | " in prompt  # compile statistics


def test_repair_may_call_the_tools_and_continues_from_their_results(tmp_path: Path, model: Any) -> None:
    check = AIMessage(
        content="Let me check a fix first.",
        tool_calls=[
            {"name": "run_correctness", "args": {"files": {"run.py": GOOD}, "workloads": ["b1"]}, "id": "r1"}
        ],
    )
    m = model([initial_answer(), code_answer(WRONG), check, code_answer(GOOD), edit_answer([])])
    final, events = _run(_ctx(tmp_path))
    assert [e["tool"] for e in events if e["event"] == "tool_result"] == ["run_correctness"]
    tool_replies = [msg for msg in m.calls[3] if isinstance(msg, ToolMessage)]
    assert len(tool_replies) == 1 and '"status": "PASSED"' in _text(tool_replies[0])
    assert "PyTorch reference" in _text(m.calls[3][1])  # the same repair conversation, continued
    rows = store_for(final["run_dir"]).candidates()
    assert [(r["origin"], r["status"]) for r in rows] == [
        ("coder", "INCORRECT_NUMERICAL"),
        ("repair", "PASSED"),
    ]


# -- what the world-model update sees -----------------------------------------------------------------


class _TimedEngine(Engine):
    """Real correctness and compile on the CPU; the profile a GPU would measure is stood in for with fixed
    per-workload figures, so the update's evidence can be checked without a GPU."""

    def profile(self, task: Any, candidate: Any, workload_ids: Any = None, **kw: Any) -> ProfileResult:
        timing = WorkloadTiming(
            workload="b64",
            status="PASSED",
            latency_ms=0.0123,
            reference_latency_ms=0.0308,
            speedup=2.5,
            roofline_fraction=0.42,
        )
        return ProfileResult(
            measured=True,
            device="stand-in",
            workloads=[timing],
            geomean_speedup=2.5,
            geomean_latency_ms=0.0123,
        )

    @property
    def mode(self) -> str:
        return "cpu"


def test_the_update_sees_per_workload_figures_compile_stats_and_the_prediction(
    tmp_path: Path, model: Any
) -> None:
    engine = _TimedEngine(device="cpu", workdir=tmp_path / "w", cache_dir=tmp_path / "c")
    register_engine("cpu", engine)
    m = model([initial_answer(), code_answer(GOOD), edit_answer([])])
    try:
        _run(_ctx(tmp_path, max_attempts=1))
    finally:
        engine.close()
    prompt = _text(m.calls[2][1])
    assert "b64 | PASSED | 0.0123 | 0.0308 | 2.500 | 0.42" in prompt  # latency, reference, speedup, roofline
    assert "kernel | registers" in prompt and "_rmsnorm_row | 40" in prompt
    assert "Prediction: 2.0x over the reference" in prompt
    assert "at 2.500x the reference = 2.500x over its parent (predicted 2.0x: met)" in prompt


# -- repeats ------------------------------------------------------------------------------------------


def test_a_repair_that_reproduces_earlier_code_is_recorded_as_a_repeat(tmp_path: Path, model: Any) -> None:
    m = model(
        [
            initial_answer(),
            code_answer(WRONG),
            code_answer(WRONG, "Trying again."),
            code_answer(GOOD),
            edit_answer([]),
        ]
    )
    final, events = _run(_ctx(tmp_path))
    assert [e["status"] for e in events if e["event"] == "evaluated"] == [
        "INCORRECT_NUMERICAL",
        "REPEAT",
        "PASSED",
    ]
    wrong_id = [e for e in events if e["event"] == "candidate"][0]["candidate_id"]
    assert [e["candidate_id"] for e in events if e["event"] == "candidate_repeated"] == [wrong_id]
    assert "repeated earlier code" in _text(m.calls[3][1])  # the next repair is told so
    store = store_for(final["run_dir"])
    assert len(store.candidates()) == 2
    assert [(a.origin, a.status) for a in attempts(store)] == [
        ("coder", "INCORRECT_NUMERICAL"),
        ("repair", "REPEAT"),
        ("repair", "PASSED"),
    ]  # the run's attempt history lists the repeat in its place


def test_code_identical_to_the_parent_does_not_become_the_new_actions_solution(
    tmp_path: Path, model: Any
) -> None:
    model([initial_answer(), code_answer(GOOD), edit_answer([]), code_answer(GOOD), edit_answer([])])
    final, events = _run(_ctx(tmp_path, max_rounds=2, max_attempts=1))
    wm = WorldModel.model_validate(final["world_model"])
    assert [e["action_id"] for e in events if e["event"] == "cycle_start"] == ["n1", "n3"]
    n1, n3 = wm.node("n1"), wm.node("n3")
    assert n1.solution is not None and n3.solution is None and "identical" in n3.notes
    assert final["best"]["node_id"] == "n1"


# -- UNVERIFIED: CUDA checked on a machine without a GPU ---------------------------------------------


def _cuda_answer() -> str:
    host = (SEEDS / "cuda_rowwise.py").read_text()
    return f"`run.py`:\n```python\n{host}\n```\n\n`rmsnorm.cu`:\n```cuda\n{(SEEDS / 'rmsnorm.cu').read_text()}\n```"


def test_cuda_without_a_gpu_is_neither_pass_nor_fail(
    tmp_path: Path, model: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    from ksearch_agent.cli import _search_finished

    m = model([initial_answer(), _cuda_answer(), edit_answer([])])
    final, events = _run(_ctx(tmp_path, language="cuda"))
    assert [e["status"] for e in events if e["event"] == "evaluated"] == ["UNVERIFIED"]
    assert m.remaining == 0  # no repair was asked for: there was nothing measured to repair from
    n1 = WorldModel.model_validate(final["world_model"]).node("n1")
    assert n1.action is not None and (n1.action.difficulty, n1.action.score) == (1, 0.9)  # not punished
    assert n1.solution is not None and n1.solution.status == "UNVERIFIED" and "too hard" not in n1.notes
    assert final["best"] is None and len(final["unverified"]) == 1
    _search_finished(final)
    assert "correctness and speed were not measured" in capsys.readouterr().out


def test_a_cuda_run_tells_the_planner_and_the_update_it_writes_cuda(tmp_path: Path, model: Any) -> None:
    m = model([initial_answer(), _cuda_answer(), edit_answer([])])
    _run(_ctx(tmp_path, language="cuda"))
    for call in (m.calls[0], m.calls[2]):  # the initial world model and the world-model update
        system = _text(call[0])
        assert "This search writes CUDA kernels" in system and 'extern "C" __global__' in system
        assert "@triton.jit" not in system


# -- errors that must stop a run --------------------------------------------------------------------


def test_a_scripted_model_that_runs_out_of_answers_fails_the_run(tmp_path: Path, model: Any) -> None:
    model([initial_answer(), code_answer(WRONG)])
    with pytest.raises(AssertionError, match="script exhausted"):
        _run(_ctx(tmp_path))


def test_an_unexpected_error_in_the_coder_propagates(tmp_path: Path, model: Any) -> None:
    model([initial_answer(), RuntimeError("a bug, not a model answer")])
    with pytest.raises(RuntimeError, match="a bug"):
        _run(_ctx(tmp_path))


def test_an_unexpected_error_in_repair_propagates(tmp_path: Path, model: Any) -> None:
    model([initial_answer(), code_answer(BROKEN), KeyError("a bug in repair")])
    with pytest.raises(KeyError, match="a bug in repair"):
        _run(_ctx(tmp_path))


def test_an_unexpected_error_in_the_update_propagates(tmp_path: Path, model: Any) -> None:
    model([initial_answer(), code_answer(GOOD), ValueError("a bug in the update")])
    with pytest.raises(ValueError, match="a bug in the update"):
        _run(_ctx(tmp_path))


def _bad_request(message: str) -> Exception:
    import httpx
    import openai

    response = httpx.Response(400, request=httpx.Request("POST", "http://127.0.0.1/v1/chat/completions"))
    return openai.BadRequestError(message, response=response, body=None)


def test_an_update_prompt_the_endpoint_refuses_leaves_the_tree_as_it_was(tmp_path: Path, model: Any) -> None:
    model([initial_answer(), code_answer(GOOD), _bad_request("maximum context length is 8192 tokens")])
    final, events = _run(_ctx(tmp_path))
    updated = [e for e in events if e["event"] == "world_model_updated"][0]
    assert updated["applied"] == [] and "BadRequestError" in updated["dropped"][0]
    assert final["status"] == "max_rounds" and final["best"] is not None


# -- the cycle's settings on the command line --------------------------------------------------------


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("KSEARCH_MODEL", "KSEARCH_BASE_URL")}
    env["KSEARCH_CACHE_DIR"] = str(cwd / "cache")
    return subprocess.run(
        [sys.executable, "-m", "ksearch_agent.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=300,
    )


def test_the_cycle_settings_are_cli_flags_stored_with_the_run(tmp_path: Path) -> None:
    out = _cli(
        *("run", "rmsnorm", "--policy", "playbook", "--rounds", "1", "--device", "cpu"),
        *("--max-attempts", "2", "--stagnation-window", "1", "--runs-root", str(tmp_path / "runs")),
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    (run_dir,) = (tmp_path / "runs").iterdir()
    saved = store_for(run_dir).get_meta("context")
    assert (saved["max_attempts"], saved["stagnation_window"]) == (2, 1)


def test_a_cycle_without_attempts_is_refused_on_the_cli(tmp_path: Path) -> None:
    out = _cli("run", "rmsnorm", "--policy", "playbook", "--max-attempts", "0", cwd=tmp_path)
    assert out.returncode == 2 and "--max-attempts" in out.stderr


def test_a_cuda_search_without_a_gpu_says_nothing_was_measured(tmp_path: Path) -> None:
    out = _cli(
        *("run", "rmsnorm", "--policy", "playbook", "--language", "cuda", "--device", "cpu", "--rounds", "1"),
        *("--runs-root", str(tmp_path / "runs")),
        cwd=tmp_path,
    )
    assert out.returncode == 1, out.stdout + out.stderr  # no passing candidate
    assert "correctness and speed were not measured" in " ".join(out.stdout.split())


def test_a_parallel_cuda_search_without_a_gpu_says_nothing_was_measured(tmp_path: Path) -> None:
    out = _cli(
        *("run", "rmsnorm", "--policy", "playbook", "--language", "cuda", "--device", "cpu", "--rounds", "2"),
        *("--parallel", "2", "--runs-root", str(tmp_path / "runs")),
        cwd=tmp_path,
    )
    assert out.returncode == 1, out.stdout + out.stderr
    assert "correctness and speed were not measured" in " ".join(out.stdout.split())


# -- the playbook policy follows the same cycle -------------------------------------------------------


def _playbook_cycle(tmp_path: Path, **kw: Any) -> list[dict[str, Any]]:
    engine = _TimedEngine(device="cpu", workdir=tmp_path / "w", cache_dir=tmp_path / "c")
    register_engine("cpu", engine)
    try:
        _, events = _run(_ctx(tmp_path, policy="playbook", model=None, **kw))
    finally:
        engine.close()
    return events


def test_the_playbook_pushes_a_measured_pass_until_the_stagnation_window(tmp_path: Path) -> None:
    events = _playbook_cycle(tmp_path, max_attempts=5, stagnation_window=2)
    assert [e["status"] for e in events if e["event"] == "evaluated"] == ["PASSED"] * 3  # 1 pass + 2 flat
    assert [e["reason"] for e in events if e["event"] == "cycle_ended"] == ["stagnation"]


def test_the_playbook_ends_the_cycle_when_it_has_no_further_variant(tmp_path: Path) -> None:
    events = _playbook_cycle(tmp_path, max_attempts=8, stagnation_window=8)
    (ended,) = [e for e in events if e["event"] == "cycle_ended"]
    assert ended["reason"].startswith("no further repair")
    assert not [e for e in events if e["event"] == "attempt_failed"]  # no empty attempt was recorded
