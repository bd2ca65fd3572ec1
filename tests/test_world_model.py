"""Behaviour of the world-model decision tree: building, selection, direct mutation, edit scripts, views."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ksearch_agent.world_model import (
    Action,
    DeleteNode,
    EditOp,
    InsertNode,
    NodeSpec,
    Solution,
    SplitNode,
    UpdateNode,
    WorldModel,
    WorldModelError,
    parse_edit_script,
)


def action(
    title: str = "try it", difficulty: int = 2, score: float = 0.5, expected: float = 1.2
) -> dict[str, Any]:
    return {"title": title, "difficulty": difficulty, "score": score, "expected_speedup": expected}


def act(**kw: Any) -> Action:
    return Action.model_validate(action(**kw))


def spec(decision: str, **kw: Any) -> NodeSpec:
    return NodeSpec(decision=decision, action=act(**kw))


def family_model() -> WorldModel:
    """root -> n1 (family A, action), n2 (family B, action); n3 refines n1 (action)."""
    wm = WorldModel.new("gemm")
    wm.add_node("root", "family A", action=action("baseline A", score=0.9))
    wm.add_node("root", "family B", action=action("baseline B", score=0.6))
    wm.add_node("n1", "A: double buffer", action=action("cp.async pipeline", score=0.8))
    return wm


def solve(wm: WorldModel, node_id: str, speedup: float | None = 1.5) -> None:
    wm.attach_solution(node_id, Solution(candidate_id=f"c-{node_id}", geomean_speedup=speedup))


# ---- construction -----------------------------------------------------------------------------------


def test_new_model_has_only_the_root() -> None:
    wm = WorldModel.new("summary", ["q1"])
    assert list(wm.nodes) == ["root"]
    assert wm.nodes["root"].parent is None and wm.nodes["root"].decision == "root"
    assert wm.kernel_summary == "summary" and wm.open_questions == ["q1"]


def test_from_initial_maps_refs_to_ids_in_listing_order_and_resolves_forward_parents() -> None:
    payload = {
        "kernel_summary": "softmax",
        "open_questions": ["is it memory bound?"],
        "analysis": {"bound": "memory"},
        "nodes": [
            {"ref": "child", "parent": "fam_a", "decision": "vectorise loads", "action": action()},
            {"ref": "fam_a", "parent": "root", "decision": "one row per warp", "rating": 7},
            {"ref": "fam_b", "parent": "root", "decision": "one row per block", "action": action()},
        ],
    }
    wm, report = WorldModel.from_initial_with_report(payload)
    assert wm.node("n1").parent == "n2"
    assert wm.node("n2").parent == "root" and wm.node("n2").rating == 7
    assert wm.node("n3").decision == "one row per block"
    assert wm.next_id == 4
    assert json.loads(wm.node("root").notes) == {"bound": "memory"}
    assert wm.open_questions == ["is it memory bound?"]
    assert report.inserted_ids == ["n1", "n2", "n3"] and report.dropped == []


def test_from_initial_skips_node_with_unknown_parent_and_reports_it() -> None:
    payload = {
        "nodes": [
            {"ref": "fam_a", "parent": "root", "decision": "A", "action": action()},
            {"ref": "orphan", "parent": "nowhere", "decision": "lost"},
            {"ref": "bad", "parent": "root", "decision": "B", "rating": 42},
        ]
    }
    wm, report = WorldModel.from_initial_with_report(payload)
    assert [n.decision for n in wm.children("root")] == ["A"]
    assert len(report.dropped) == 2
    assert any("node #1 (orphan)" in d and "nowhere" in d for d in report.dropped)
    assert any("node #2 (bad)" in d and "rating" in d for d in report.dropped)
    assert WorldModel.from_initial(payload).nodes.keys() == wm.nodes.keys()


def test_from_initial_raises_listing_all_problems_when_no_node_is_valid() -> None:
    payload = {"nodes": [{"ref": "x", "parent": "y", "decision": "d"}, {"ref": "z", "parent": "root"}]}
    with pytest.raises(WorldModelError) as info:
        WorldModel.from_initial(payload)
    assert "node #0 (x)" in str(info.value) and "node #1 (z)" in str(info.value)


def test_from_initial_reports_children_of_skipped_nodes() -> None:
    payload = {
        "nodes": [
            {"ref": "ok", "parent": "root", "decision": "A"},
            {"ref": "bad", "parent": "root", "decision": ""},
            {"ref": "kid", "parent": "bad", "decision": "refine"},
        ]
    }
    wm, report = WorldModel.from_initial_with_report(payload)
    assert len(wm.nodes) == 2
    assert any("node #2 (kid)" in d and "skipped" in d for d in report.dropped)


# ---- queries ------------------------------------------------------------------------------------


def test_children_are_sorted_by_numeric_id() -> None:
    wm = WorldModel.new()
    for i in range(11):
        wm.add_node("root", f"family {i}")
    assert [n.id for n in wm.children("root")][-3:] == ["n9", "n10", "n11"]


def test_unknown_node_id_raises() -> None:
    with pytest.raises(WorldModelError):
        WorldModel.new().node("n99")


def test_depth_and_lineage_follow_the_path_from_root() -> None:
    wm = family_model()
    assert wm.depth("root") == 0 and wm.depth("n1") == 1 and wm.depth("n3") == 2
    assert [n.id for n in wm.lineage("n3")] == ["root", "n1", "n3"]


def test_frontier_includes_actions_directly_under_root() -> None:
    assert {n.id for n in family_model().frontier()} == {"n1", "n2"}


def test_frontier_excludes_children_of_unsolved_nodes() -> None:
    assert "n3" not in {n.id for n in family_model().frontier()}


def test_child_becomes_eligible_after_parent_solution_is_attached() -> None:
    wm = family_model()
    solve(wm, "n1")
    ids = [n.id for n in wm.frontier()]
    assert "n3" in ids and "n1" not in ids


def test_children_of_an_action_less_family_are_eligible() -> None:
    wm = WorldModel.new()
    wm.add_node("root", "plain family")
    wm.add_node("n1", "first step", action=action())
    assert [n.id for n in wm.frontier()] == ["n2"]


def test_frontier_gates_out_actions_above_max_difficulty() -> None:
    wm = WorldModel.new()
    wm.add_node("root", "easy", action=action(difficulty=4))
    wm.add_node("root", "hard", action=action(difficulty=5, score=1.0))
    assert [n.id for n in wm.frontier()] == ["n1"]
    assert [n.id for n in wm.frontier(max_difficulty=3)] == []
    assert [n.id for n in wm.frontier(max_difficulty=5)] == ["n2", "n1"]


def test_selection_orders_by_score_then_difficulty_then_rating_then_numeric_id() -> None:
    wm = WorldModel.new()
    for i in range(1, 11):
        wm.add_node("root", f"filler {i}", action=action(score=0.1))
    wm.nodes["n2"].action = act(score=0.1, difficulty=2)  # same as n10 in every key but the id
    wm.add_node("root", "low rating", rating=3, action=action(score=0.7, difficulty=1))  # n11
    wm.add_node("root", "high rating", rating=8, action=action(score=0.7, difficulty=1))  # n12
    wm.add_node("root", "harder", rating=10, action=action(score=0.7, difficulty=3))  # n13
    wm.add_node("root", "best score", action=action(score=0.9, difficulty=4))  # n14
    order = [n.id for n in wm.frontier()]
    assert order[:4] == ["n14", "n12", "n11", "n13"]
    assert order.index("n2") < order.index("n10")
    assert wm.select() is not None and wm.select().id == "n14"  # type: ignore[union-attr]


def test_select_returns_none_when_nothing_is_eligible() -> None:
    wm = WorldModel.new()
    wm.add_node("root", "no action")
    assert wm.select() is None


def test_open_actions_include_ineligible_ones_and_solved_lists_solutions() -> None:
    wm = family_model()
    assert [n.id for n in wm.open_actions()] == ["n1", "n2", "n3"]
    solve(wm, "n2")
    assert [n.id for n in wm.open_actions()] == ["n1", "n3"]
    assert [n.id for n in wm.solved()] == ["n2"]


def test_best_solution_is_highest_speedup_with_unknown_speedups_last() -> None:
    wm = family_model()
    assert wm.best_solution() is None
    solve(wm, "n1", speedup=None)
    assert wm.best_solution() is not None and wm.best_solution().id == "n1"  # type: ignore[union-attr]
    solve(wm, "n2", speedup=1.3)
    solve(wm, "n3", speedup=2.1)
    assert wm.best_solution().id == "n3"  # type: ignore[union-attr]


# ---- direct mutation --------------------------------------------------------------------------------


def test_add_node_returns_fresh_ids_and_validates_fields() -> None:
    wm = WorldModel.new()
    assert wm.add_node("root", "a") == "n1"
    assert wm.add_node("n1", "b", rating=9) == "n2"
    with pytest.raises(WorldModelError):
        wm.add_node("n99", "orphan")
    with pytest.raises(WorldModelError):
        wm.add_node("root", "bad", rating=11)
    with pytest.raises(WorldModelError):
        wm.add_node("root", "typo", ratin=3)
    assert wm.next_id == 3


def test_attach_solution_requires_an_action_and_a_passing_status() -> None:
    wm = family_model()
    wm.add_node("root", "plain")
    with pytest.raises(WorldModelError):
        solve(wm, "n4")
    with pytest.raises(WorldModelError):
        wm.attach_solution("n1", Solution(candidate_id="c", status="INCORRECT_NUMERICAL"))
    solve(wm, "n1")
    assert wm.node("n1").solution is not None and wm.node("n1").attempts == 1


def test_mark_too_hard_lowers_priority_and_records_the_reason() -> None:
    wm = family_model()
    assert wm.select().id == "n1"  # type: ignore[union-attr]
    wm.mark_too_hard("n1", "register spills")
    n1 = wm.node("n1")
    assert n1.action is not None and n1.action.difficulty == 3 and n1.action.score == pytest.approx(0.45)
    assert n1.attempts == 1 and "too hard: register spills" in n1.notes
    assert wm.select().id == "n2"  # type: ignore[union-attr]


def test_mark_too_hard_repeatedly_gates_the_action_out_at_difficulty_five() -> None:
    wm = family_model()
    wm.mark_too_hard("n1", "one")
    assert "n1" in {n.id for n in wm.frontier()}
    wm.mark_too_hard("n1", "two")
    wm.mark_too_hard("n1", "three")
    assert wm.node("n1").action.difficulty == 5  # type: ignore[union-attr]
    assert "n1" not in {n.id for n in wm.frontier()}
    assert wm.node("n1").notes.count("too hard:") == 3


# ---- edit ops -----------------------------------------------------------------------------------


def test_update_node_merges_an_action_patch_and_sets_fields() -> None:
    wm = family_model()
    ops, dropped = parse_edit_script(
        {"ops": [{"op": "update_node", "id": "n2", "rating": 8.5, "action": {"score": 0.95}}]}
    )
    report = wm.apply(ops)
    assert dropped == [] and report.dropped == [] and len(report.applied) == 1
    n2 = wm.node("n2")
    assert n2.rating == 8.5 and n2.action is not None
    assert n2.action.score == 0.95 and n2.action.title == "baseline B"


def test_update_of_unknown_id_is_dropped() -> None:
    report = family_model().apply([UpdateNode(op="update_node", id="n42", rating=1)])
    assert report.applied == [] and report.dropped[0].startswith("op #0 (update_node): unknown node id")


def test_update_adding_an_incomplete_action_is_dropped() -> None:
    wm = WorldModel.new()
    wm.add_node("root", "plain")
    ops, _ = parse_edit_script([{"op": "update_node", "id": "n1", "action": {"score": 0.5}}])
    report = wm.apply(ops)
    assert "title" in report.dropped[0] and wm.node("n1").action is None


def test_update_of_root_is_dropped() -> None:
    report = family_model().apply([UpdateNode(op="update_node", id="root", notes="x")])
    assert report.dropped and "root" in report.dropped[0]


def test_insert_node_adds_a_new_family_under_root() -> None:
    wm = family_model()
    report = wm.apply(
        [InsertNode(op="insert_node", parent="root", decision="family C", action=act())], current_round=2
    )
    assert report.inserted_ids == ["n4"]
    assert wm.node("n4").parent == "root" and wm.node("n4").created_round == 2


def test_insert_under_unknown_parent_is_dropped() -> None:
    report = family_model().apply([InsertNode(op="insert_node", parent="n77", decision="x")])
    assert report.inserted_ids == [] and "unknown parent" in report.dropped[0]


def test_insert_over_the_limit_is_dropped() -> None:
    wm = family_model()
    ops: list[EditOp] = [InsertNode(op="insert_node", parent="root", decision=f"f{i}") for i in range(4)]
    report = wm.apply(ops)
    assert report.inserted_ids == ["n4", "n5", "n6"]
    assert report.dropped == ["op #3 (insert_node): insert limit (3) reached"]


def test_split_node_turns_the_action_into_alternative_children() -> None:
    wm = family_model()
    report = wm.apply([SplitNode(op="split_node", id="n2", into=[spec("B1"), spec("B2")])])
    assert report.inserted_ids == ["n4", "n5"] and report.dropped == []
    assert wm.node("n2").action is None
    assert [n.decision for n in wm.children("n2")] == ["B1", "B2"]
    assert {"n4", "n5"} <= {n.id for n in wm.frontier()}  # the split parent is transparent


def test_split_of_a_solved_node_is_dropped() -> None:
    wm = family_model()
    solve(wm, "n2")
    report = wm.apply([SplitNode(op="split_node", id="n2", into=[spec("B1"), spec("B2")])])
    assert report.inserted_ids == [] and "solved" in report.dropped[0]


def test_split_that_does_not_fit_the_insert_limit_is_dropped_whole() -> None:
    wm = family_model()
    ops: list[EditOp] = [
        InsertNode(op="insert_node", parent="root", decision="C"),
        SplitNode(op="split_node", id="n2", into=[spec("B1"), spec("B2"), spec("B3")]),
    ]
    report = wm.apply(ops)
    assert report.inserted_ids == ["n4"]
    assert report.dropped[0].startswith("op #1 (split_node): insert limit (3) reached")
    assert wm.node("n2").action is not None and wm.children("n2") == []


def test_delete_node_removes_an_open_leaf_action_and_never_reuses_its_id() -> None:
    wm = family_model()
    report = wm.apply(
        [DeleteNode(op="delete_node", id="n2"), InsertNode(op="insert_node", parent="root", decision="new")]
    )
    assert report.applied[0] == "delete n2" and "n2" not in wm.nodes
    assert report.inserted_ids == ["n4"]


def test_delete_of_a_solved_node_is_dropped() -> None:
    wm = family_model()
    solve(wm, "n2")
    report = wm.apply([DeleteNode(op="delete_node", id="n2")])
    assert "only open leaf actions can be deleted" in report.dropped[0] and "n2" in wm.nodes


def test_delete_of_a_node_with_children_is_dropped() -> None:
    wm = family_model()
    report = wm.apply([DeleteNode(op="delete_node", id="n1")])
    assert "only open leaf actions can be deleted" in report.dropped[0] and "n1" in wm.nodes


def test_ops_are_checked_against_the_tree_as_edited_so_far() -> None:
    wm = family_model()
    report = wm.apply(
        [
            DeleteNode(op="delete_node", id="n3"),
            DeleteNode(op="delete_node", id="n1"),
            UpdateNode(op="update_node", id="n3", rating=1),
        ]
    )
    assert report.applied == ["delete n3", "delete n1"]
    assert report.dropped[0].startswith("op #2 (update_node)")


# ---- parsing ----------------------------------------------------------------------------------------


def test_out_of_range_rating_is_dropped_at_parse_time_with_its_index() -> None:
    ops, dropped = parse_edit_script(
        {
            "ops": [
                {"op": "update_node", "id": "n1", "rating": 3},
                {"op": "update_node", "id": "n1", "rating": 12},
            ]
        }
    )
    assert len(ops) == 1
    assert len(dropped) == 1 and dropped[0].startswith("op #1 (update_node): rating")


def test_parse_edit_script_keeps_good_ops_among_garbage() -> None:
    payload = [
        "delete everything",
        {"op": "explode", "id": "n1"},
        {"op": "insert_node", "decision": "no parent"},
        {"op": "split_node", "id": "n2", "into": [{"decision": "only one", "action": action()}]},
        {"op": "insert_node", "parent": "root", "decision": "good", "action": action(), "why": "extra key"},
        {"op": "delete_node", "id": "n3"},
        42,
    ]
    ops, dropped = parse_edit_script(payload)
    assert [type(o) for o in ops] == [InsertNode, DeleteNode]
    assert [d.split(":")[0] for d in dropped] == [
        "op #0 (?)",
        "op #1 (explode)",
        "op #2 (insert_node)",
        "op #3 (split_node)",
        "op #6 (?)",
    ]


def test_parse_edit_script_rejects_non_container_payloads() -> None:
    with pytest.raises(WorldModelError):
        parse_edit_script("ops")
    assert parse_edit_script({"no_ops": []}) == ([], ["payload has no 'ops' list"])


# ---- views ------------------------------------------------------------------------------------------


def test_snapshot_round_trips_through_json() -> None:
    wm = family_model()
    solve(wm, "n1", speedup=1.7)
    wm.mark_too_hard("n2", "spills")
    wm.apply([InsertNode(op="insert_node", parent="n1", decision="refine", action=act())])
    restored = WorldModel.model_validate(json.loads(json.dumps(wm.snapshot())))
    assert restored == wm
    assert restored.next_id == wm.next_id


def test_restoring_a_snapshot_with_a_dangling_parent_fails() -> None:
    snap = family_model().snapshot()
    snap["nodes"]["n3"]["parent"] = "n99"
    with pytest.raises(ValueError):
        WorldModel.model_validate(snap)


def test_outline_shows_ids_with_indentation_actions_and_solutions() -> None:
    wm = family_model()
    solve(wm, "n1", speedup=1.5)
    lines = wm.outline().splitlines()
    assert lines[0].startswith("root")
    assert lines[1].startswith("  n1: family A") and "[solution: c-n1, 1.500x]" in lines[1]
    assert lines[2].startswith("    n3: A: double buffer")
    assert "[action: cp.async pipeline (d=2, s=0.80, x=1.20)]" in lines[2]
    assert lines[3].startswith("  n2: family B")


def test_prompt_view_is_compact_json_without_the_root() -> None:
    wm = family_model()
    solve(wm, "n1", speedup=1.5)
    view = json.loads(json.dumps(wm.prompt_view()))
    assert view["kernel_summary"] == "gemm"
    assert [n["id"] for n in view["nodes"]] == ["n1", "n2", "n3"]
    assert view["nodes"][0]["solution"] == {"speedup": 1.5}
    assert view["nodes"][1]["action"]["title"] == "baseline B" and view["nodes"][1]["solution"] is None
