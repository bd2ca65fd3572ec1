"""The planner's pieces as plain functions: run setup, continuation, the initial tree, stocking the frontier
and choosing the next cycle; the LLM steps driven by a scripted chat model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from graph_script import GOOD, INITIAL, edit_answer, initial_answer
from scripted_model import ScriptedChatModel

from ksearch_agent.context import SearchContext
from ksearch_agent.llm.usage import UsageLedger
from ksearch_agent.llm_policy import LLMPolicy
from ksearch_agent.planning import choose_next, cycle_start, initial_tree, stock_frontier
from ksearch_agent.resources import store_for
from ksearch_agent.run_setup import RunSetupError, continue_run, new_run
from ksearch_agent.task import load_task
from ksearch_agent.world_model import Solution, WorldModel

TASK = load_task("rmsnorm")


def _ctx(tmp_path: Path, **kw: Any) -> SearchContext:
    return SearchContext(model="scripted", runs_root=str(tmp_path / "runs"), **kw)


def _solved_tree() -> WorldModel:
    wm = WorldModel.from_initial(INITIAL)
    wm.attach_solution("n1", Solution(candidate_id="cand-n1", geomean_speedup=2.0))
    return wm


def test_a_new_run_records_its_task_and_settings_and_stores_the_seed(tmp_path: Path) -> None:
    setup = new_run({"task": "rmsnorm", "run_id": "r", "seed_code": GOOD}, _ctx(tmp_path), TASK)
    store = store_for(setup["run_dir"])
    assert setup["run_dir"] == str((tmp_path / "runs" / "r").resolve()) and setup["round"] == 0
    assert store.get_meta("task") == "rmsnorm" and store.get_meta("context")["model"] == "scripted"
    row = store.candidate_row(setup["seed_candidate"])
    assert row is not None and row["origin"] == "seed"


def test_an_unusable_seed_stops_the_setup_naming_the_seed(tmp_path: Path) -> None:
    with pytest.raises(RunSetupError, match="seed code"):
        new_run({"task": "rmsnorm", "seed_code": {"notes.txt": "hi"}}, _ctx(tmp_path), TASK)


def test_continuing_a_run_takes_its_last_tree_best_kernel_and_round(tmp_path: Path) -> None:
    setup = new_run({"task": "rmsnorm", "run_id": "r", "seed_code": GOOD}, _ctx(tmp_path), TASK)
    store = store_for(setup["run_dir"])
    store.save_snapshot(0, WorldModel.from_initial(INITIAL).snapshot(), "initial")
    store.save_snapshot(2, _solved_tree().snapshot(), "after action n1")
    cont = continue_run(setup["run_dir"])
    assert cont["round"] == 2 and cont["attempts"] == [] and cont["best"] is None  # the seed was never judged
    assert WorldModel.model_validate(cont["world_model"]).node("n1").solution is not None


def test_a_run_without_a_snapshot_cannot_be_continued(tmp_path: Path) -> None:
    with pytest.raises(RunSetupError, match="no world-model snapshot"):
        continue_run(str(tmp_path / "empty"))


def test_the_initial_tree_is_snapshotted_as_round_zero(tmp_path: Path) -> None:
    store = store_for(tmp_path / "run")
    policy = LLMPolicy(ScriptedChatModel([initial_answer()]), "scripted")
    wm = initial_tree(policy, TASK, "triton", UsageLedger(), store)
    assert [(s["round"], s["note"]) for s in store.snapshots()] == [(0, "initial")]
    assert store.snapshots()[0]["world_model"] == wm.snapshot()


def test_the_frontier_is_left_alone_in_the_first_round_and_while_stocked() -> None:
    policy = LLMPolicy(ScriptedChatModel([]), "scripted")  # any model call would run the script dry
    wm = _solved_tree()
    assert stock_frontier(policy, TASK, "triton", wm, UsageLedger(), round_no=0, max_difficulty=4) is None
    assert len(wm.frontier(4)) >= 3
    assert stock_frontier(policy, TASK, "triton", wm, UsageLedger(), round_no=3, max_difficulty=4) is None


def test_a_thin_frontier_is_stocked_with_steps_under_solved_nodes_only() -> None:
    step = {
        "decision": "two rows per program",
        "action": {"title": "pack", "difficulty": 1, "score": 0.6, "expected_speedup": 1.1},
    }
    answer = edit_answer(
        [
            {"op": "insert_node", "parent": "n1", **step},
            {"op": "insert_node", "parent": "n2", **step},  # n2 is not solved: dropped
        ]
    )
    model = ScriptedChatModel([answer])
    wm = _solved_tree()
    report = stock_frontier(
        LLMPolicy(model, "scripted"), TASK, "cuda", wm, UsageLedger(), round_no=1, max_difficulty=1
    )
    assert report is not None and len(report.inserted_ids) == 1
    assert wm.node(report.inserted_ids[0]).parent == "n1"
    assert "CUDA kernels" in str(model.calls[0][0].content)  # the system prompt follows the run's language


def test_the_next_cycle_takes_the_frontier_head_and_its_parents_kernel() -> None:
    wm = _solved_tree()
    wm.node("n1").action.score = 0.1  # type: ignore[union-attr]
    wm.node("n3").action.score = 0.95  # type: ignore[union-attr]  # n3 refines n1
    choice = choose_next(wm, 4, "seed-id")
    assert choice is not None and choice.action.id == "n3"
    assert (choice.parent_candidate, choice.parent_speedup) == ("cand-n1", 2.0)


def test_a_root_action_starts_from_the_seed() -> None:
    choice = choose_next(WorldModel.from_initial(INITIAL), 4, "seed-id")
    assert choice is not None and choice.action.id == "n1"
    assert (choice.parent_candidate, choice.parent_speedup) == ("seed-id", None)


def test_nothing_is_chosen_when_no_action_is_eligible() -> None:
    assert choose_next(WorldModel.from_initial(INITIAL), 0, None) is None


def test_a_new_cycle_resets_every_per_cycle_counter() -> None:
    choice = choose_next(WorldModel.from_initial(INITIAL), 4, None)
    assert choice is not None
    update = cycle_start(choice, 4)
    assert update["round"] == 4 and update["action_id"] == "n1"
    assert update["attempts"] == [] and update["no_improve"] == 0 and update["tool_calls_used"] == 0
    assert update["coder_transcript"] == [] and update["tools_for"] is None and not update["pending_repeat"]
