"""The K-Search graph end to end on rmsnorm with the CPU engine, driven by a scripted chat model."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from graph_script import BROKEN, GOOD, MALFORMED_EDIT, WRONG, code_answer, edit_answer, initial_answer
from langchain_core.messages import AIMessage
from langgraph.checkpoint.sqlite import SqliteSaver
from scripted_model import ScriptedChatModel

from ksearch_agent.context import SearchContext
from ksearch_agent.engine import Engine
from ksearch_agent.graphs.kernel_search import build_kernel_search_graph, recursion_limit
from ksearch_agent.llm.chat import register_model, unregister_model
from ksearch_agent.llm.endpoint import EndpointError
from ksearch_agent.resources import register_engine, store_for
from ksearch_agent.world_model import WorldModel


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
    base.update(kw)
    return SearchContext(**base)


def _run(
    ctx: SearchContext, run_id: str = "r1", checkpointer: Any = None
) -> tuple[dict[str, Any], list[dict]]:
    graph = build_kernel_search_graph(checkpointer=checkpointer)
    config = {"configurable": {"thread_id": run_id}, "recursion_limit": recursion_limit(ctx)}
    events: list[dict] = []
    final: dict[str, Any] = {}
    for mode, chunk in graph.stream(
        {"task": "rmsnorm", "run_id": run_id}, config, context=ctx, stream_mode=["custom", "values"]
    ):
        if mode == "custom":
            events.append(chunk)
        else:
            final = chunk
    return final, events


def test_success_path_solves_the_best_scored_action_and_records_everything(
    tmp_path: Path, model: Any
) -> None:
    m = model(
        [
            initial_answer(),
            code_answer(GOOD),
            edit_answer(
                [
                    {"op": "update_node", "id": "n1", "rating": 8, "confidence": 0.8},
                    {
                        "op": "insert_node",
                        "parent": "n1",
                        "decision": "two rows per program",
                        "action": {
                            "title": "pack two rows",
                            "difficulty": 2,
                            "score": 0.6,
                            "expected_speedup": 1.1,
                        },
                    },
                ]
            ),
        ]
    )
    final, events = _run(_ctx(tmp_path))
    assert final["status"] == "max_rounds"
    wm = WorldModel.model_validate(final["world_model"])
    solved = wm.node("n1")
    assert solved.solution is not None and solved.solution.candidate_id == final["best"]["candidate_id"]
    assert solved.rating == 8 and len(wm.children("n1")) == 2  # row_vec from the start + the inserted step
    kinds = [e["event"] for e in events]
    for kind in (
        "world_model_initialised",
        "cycle_start",
        "candidate",
        "evaluated",
        "new_best",
        "world_model_updated",
        "finished",
    ):
        assert kind in kinds
    store = store_for(final["run_dir"])
    assert [r["status"] for r in store.candidates()] == ["PASSED"]
    assert [s["note"] for s in store.snapshots()] == ["initial", "after action n1"]
    assert final["lineage"][-1]["id"] == "n1" and m.remaining == 0


def test_compile_error_is_repaired_into_a_passing_kernel(tmp_path: Path, model: Any) -> None:
    m = model(
        [
            initial_answer(),
            code_answer(BROKEN),
            code_answer(GOOD, "Fixed the undefined name."),
            edit_answer([]),
        ]
    )
    final, _ = _run(_ctx(tmp_path))
    rows = store_for(final["run_dir"]).candidates()
    assert [(r["origin"], r["status"]) for r in rows] == [("coder", "COMPILE_ERROR"), ("repair", "PASSED")]
    repair_prompt = m.calls[2][-1].content
    assert "COMPILE_ERROR" in repair_prompt and "undefined_scale" in repair_prompt
    assert final["best"]["candidate_id"] == rows[1]["id"]


def test_persistent_failure_marks_the_action_too_hard_and_moves_on(tmp_path: Path, model: Any) -> None:
    model(
        [
            initial_answer(),
            code_answer(WRONG),
            code_answer(WRONG, "Trying again."),
            MALFORMED_EDIT,
            MALFORMED_EDIT,
            code_answer(GOOD),
            edit_answer([]),
        ]
    )
    final, events = _run(_ctx(tmp_path, max_rounds=2, max_attempts=2))
    wm = WorldModel.model_validate(final["world_model"])
    n1 = wm.node("n1")
    assert n1.solution is None and n1.action is not None
    assert n1.action.difficulty == 2 and n1.action.score == pytest.approx(0.45) and "too hard" in n1.notes
    starts = [e["action_id"] for e in events if e["event"] == "cycle_start"]
    assert starts == ["n1", "n2"]  # next best: n2 (0.5) now outranks n1 (0.45)
    assert wm.node("n2").solution is not None
    updated = [e for e in events if e["event"] == "world_model_updated"][0]
    assert updated["applied"] == [] and any(
        "rating" in d for d in updated["dropped"]
    )  # the invalid op, dropped


def test_unparseable_edit_script_leaves_the_tree_as_it_was(tmp_path: Path, model: Any) -> None:
    model([initial_answer(), code_answer(GOOD), "I think we should keep going.", "Still no JSON, sorry."])
    final, events = _run(_ctx(tmp_path))
    updated = [e for e in events if e["event"] == "world_model_updated"][0]
    assert updated["applied"] == [] and any("unparseable" in d for d in updated["dropped"])
    wm = WorldModel.model_validate(final["world_model"])
    assert sorted(wm.nodes) == ["n1", "n2", "n3", "n4", "root"] and wm.node("n1").solution is not None


def test_stagnation_window_ends_a_cycle_before_the_attempt_allowance(tmp_path: Path, model: Any) -> None:
    # Two failures in a row with a window of 2 end the cycle although 5 attempts are allowed; were the rule
    # off, repair would take the edit script as its answer and then run the scripted model dry.
    m = model([initial_answer(), code_answer(WRONG), code_answer(BROKEN), edit_answer([])])
    final, events = _run(_ctx(tmp_path, max_attempts=5, stagnation_window=2))
    ended = [e for e in events if e["event"] == "cycle_ended"]
    assert [e["reason"] for e in ended] == ["stagnation"]
    assert [r["status"] for r in store_for(final["run_dir"]).candidates()] == [
        "INCORRECT_NUMERICAL",
        "COMPILE_ERROR",
    ]
    assert final["status"] == "max_rounds" and m.remaining == 0


def test_tool_call_with_bad_arguments_gets_an_error_back_and_the_coder_goes_on(
    tmp_path: Path, model: Any
) -> None:
    bad_call = AIMessage(
        content="Let me compile first.",
        tool_calls=[{"name": "compile", "args": {"files": "run.py"}, "id": "call_1"}],
    )
    m = model([initial_answer(), bad_call, code_answer(GOOD), edit_answer([])])
    final, events = _run(_ctx(tmp_path))
    assert final["best"] is not None
    tool_events = [e for e in events if e["event"] == "tool_result"]
    assert tool_events and "invalid arguments for compile" in tool_events[0]["result"]
    assert "invalid arguments" in str(m.calls[2][-1].content)  # the ToolMessage reached the model


def test_coder_tool_calls_run_the_real_engine(tmp_path: Path, model: Any) -> None:
    call = AIMessage(
        content="",
        tool_calls=[
            {"name": "run_correctness", "args": {"files": {"run.py": GOOD}, "workloads": ["b1"]}, "id": "c1"}
        ],
    )
    model([initial_answer(), call, code_answer(GOOD), edit_answer([])])
    _, events = _run(_ctx(tmp_path))
    result = [e for e in events if e["event"] == "tool_result"][0]["result"]
    assert '"status": "PASSED"' in result


def test_budget_stop_ends_the_search_after_the_cycle(tmp_path: Path, model: Any) -> None:
    model([initial_answer(), code_answer(GOOD), edit_answer([])])
    final, events = _run(_ctx(tmp_path, max_rounds=5, max_tokens=2000))  # the first prompt is ~1.5k tokens
    assert final["status"].startswith("budget: token budget exhausted") and final["best"] is not None
    assert [e["event"] for e in events].count("cycle_start") == 1


def test_budget_spent_by_the_initial_analysis_stops_before_any_cycle(tmp_path: Path, model: Any) -> None:
    model([initial_answer()])
    final, events = _run(_ctx(tmp_path, max_rounds=5, max_tokens=10))
    assert final["status"].startswith("budget") and final["best"] is None
    assert "cycle_start" not in [e["event"] for e in events]


def test_missing_model_ends_with_a_message_pointing_at_the_playbook(tmp_path: Path) -> None:
    final, _ = _run(_ctx(tmp_path, model=None))
    assert final["status"].startswith("error") and "playbook" in final["status"]


def test_rate_limit_is_retried_by_the_node_retry_policy(tmp_path: Path, model: Any) -> None:
    m = model(
        [TimeoutError("simulated upstream timeout"), initial_answer(), code_answer(GOOD), edit_answer([])]
    )
    final, _ = _run(_ctx(tmp_path))
    assert final["best"] is not None and m.remaining == 0


class _Interrupt(BaseException):
    """Stands in for Ctrl-C / a crash: not an Exception, so nothing in the graph swallows it."""


def test_resume_after_an_interrupted_run_loses_nothing(tmp_path: Path, model: Any) -> None:
    ctx = _ctx(tmp_path, max_rounds=2)
    conn = sqlite3.connect(tmp_path / "ck.sqlite", check_same_thread=False)
    model([initial_answer(), code_answer(GOOD), edit_answer([]), _Interrupt()])
    with pytest.raises(_Interrupt):
        _run(ctx, "resume-me", SqliteSaver(conn))
    store = store_for(tmp_path / "runs" / "resume-me")
    before = store.candidates()
    assert [r["status"] for r in before] == ["PASSED"]
    m2 = model([code_answer(GOOD.replace("NUM_WARPS = 8", "NUM_WARPS = 4")), edit_answer([])])
    graph = build_kernel_search_graph(checkpointer=SqliteSaver(conn))
    config = {"configurable": {"thread_id": "resume-me"}, "recursion_limit": recursion_limit(ctx)}
    graph.invoke(None, config, context=ctx)
    final = graph.get_state(config).values
    after = store.candidates()
    assert after[0] == before[0] and len(after) == 2 and m2.remaining == 0
    assert (
        final["status"] == "max_rounds"
        and WorldModel.model_validate(final["world_model"]).node("n1").solution
    )


class _SpeedMarkedEngine(Engine):
    """Real correctness on the CPU; the speed a GPU would measure is read from a '# speed: X' line, since this
    machine has no GPU. Only the timing is stood in for, so the graph's routing on speed can be tested."""

    def profile(self, task: Any, candidate: Any, workload_ids: Any = None, **kw: Any) -> Any:
        from ksearch_agent.results import ProfileResult

        speed = float(candidate.files[candidate.entry].rsplit("# speed:", 1)[1].split()[0])
        return ProfileResult(
            measured=True, device="stand-in", geomean_speedup=speed, geomean_latency_ms=1.0 / speed
        )

    @property
    def mode(self) -> str:
        return "cpu"


def test_slower_intermediate_step_is_kept_and_its_child_becomes_the_best(tmp_path: Path, model: Any) -> None:
    engine = _SpeedMarkedEngine(device="cpu", workdir=tmp_path / "w", cache_dir=tmp_path / "c")
    register_engine("cpu", engine)

    def speed(x: float) -> str:
        return code_answer(GOOD + f"\n# speed: {x}\n")

    step3 = {
        "op": "insert_node",
        "parent": "n3",
        "decision": "vector loads plus two rows per program",
        "action": {"title": "pack rows", "difficulty": 2, "score": 0.95, "expected_speedup": 1.5},
    }
    model(
        [
            initial_answer(),
            speed(2.0),
            speed(1.9),  # a repair that does not improve: the second of two attempts ends the cycle
            edit_answer([]),
            speed(1.5),
            speed(1.4),
            edit_answer([step3]),
            speed(3.0),
            speed(2.9),
            edit_answer([]),
        ]
    )
    try:
        final, events = _run(_ctx(tmp_path, max_rounds=3, max_attempts=2))
    finally:
        engine.close()
    wm = WorldModel.model_validate(final["world_model"])
    assert [e["action_id"] for e in events if e["event"] == "cycle_start"] == ["n1", "n3", "n5"]
    assert wm.node("n3").solution.geomean_speedup == 1.5 < wm.node("n1").solution.geomean_speedup  # type: ignore[union-attr]
    assert final["best"]["geomean_speedup"] == 3.0 and final["best"]["node_id"] == "n5"
    assert [n["id"] for n in final["lineage"]] == ["n1", "n3", "n5"]


def _openai_error(kind: str, status: int, message: str) -> Exception:
    import httpx
    import openai

    response = httpx.Response(status, request=httpx.Request("POST", "http://127.0.0.1/v1/chat/completions"))
    return getattr(openai, kind)(message, response=response, body=None)


def test_rate_limit_that_outlasts_the_clients_retries_stops_the_run_with_an_endpoint_error(
    tmp_path: Path, model: Any
) -> None:
    # The openai client has already retried with backoff (tested over HTTP in test_endpoints.py); the graph
    # does not retry on top of it, so the run stops at once with one message naming the model and status.
    m = model([_openai_error("RateLimitError", 429, "Rate limit reached"), initial_answer()])
    with pytest.raises(EndpointError, match=r"model scripted\) answered HTTP 429"):
        _run(_ctx(tmp_path))
    assert m.remaining == 1


def test_context_length_error_becomes_a_failed_attempt_and_repair_goes_on(tmp_path: Path, model: Any) -> None:
    too_long = _openai_error("BadRequestError", 400, "This model's maximum context length is 8192 tokens")
    m = model([initial_answer(), too_long, code_answer(GOOD), edit_answer([])])
    final, events = _run(_ctx(tmp_path))
    failed = [e for e in events if e["event"] == "attempt_failed"]
    assert failed and "context length" in failed[0]["log"]
    assert final["best"] is not None and m.remaining == 0


def test_empty_answer_is_asked_for_again_with_the_reason(tmp_path: Path, model: Any) -> None:
    m = model(["", initial_answer(), code_answer(GOOD), edit_answer([])])
    final, _ = _run(_ctx(tmp_path))
    assert final["best"] is not None
    assert "could not be used" in str(m.calls[1][-1].content)
