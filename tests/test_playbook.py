"""The playbook policy: deterministic, offline, evidence-driven, through the same graph and engine."""

from __future__ import annotations

from pathlib import Path

import pytest

from ksearch_agent.context import SearchContext
from ksearch_agent.engine import Engine
from ksearch_agent.knobs import KnobError, read_knobs, render
from ksearch_agent.llm.usage import UsageLedger
from ksearch_agent.playbook import files_for, load_playbook, playbook_seed_files, ref_of
from ksearch_agent.playbook_policy import PlaybookPolicy, classify_failure
from ksearch_agent.policy import CycleOutcome, RepairRequest
from ksearch_agent.resources import register_engine, store_for
from ksearch_agent.runner import run_search
from ksearch_agent.state import Attempt
from ksearch_agent.task import load_task
from ksearch_agent.world_model import Solution, WorldModel


def test_knobs_are_read_and_rendered_without_touching_the_rest() -> None:
    src = "import x\nBLOCK = 64\nNUM_WARPS = 8\n\ndef run():\n    return BLOCK\n"
    assert read_knobs(src) == {"BLOCK": 64, "NUM_WARPS": 8}
    out = render(src, {"BLOCK": 128})
    assert "BLOCK = 128" in out and "NUM_WARPS = 8" in out and out.endswith("return BLOCK\n")
    with pytest.raises(KnobError):
        render(src, {"MISSING": 1})


@pytest.mark.parametrize("task", ["rmsnorm", "softmax", "trimul"])
def test_every_playbook_node_builds_a_candidate_from_its_seed(task: str) -> None:
    t = load_task(task)
    book = load_playbook(t)
    for node in book.nodes:
        files = files_for(t, book, node.ref)
        knobs = read_knobs(files["run.py"])
        for chain_node in book.chain(node.ref):
            for k, v in chain_node.knobs.items():
                if k in node.knobs or chain_node is node:
                    assert knobs[k] == (node.knobs.get(k, v))
    assert "def run(" in playbook_seed_files(t)["run.py"]


def test_failures_are_classified_from_status_and_log() -> None:
    assert (
        classify_failure(
            "RUNTIME_ERROR", "triton OutOfResources: shared memory, Required: 262144", None, None
        )
        == "shared_memory"
    )
    assert classify_failure("INCORRECT_NUMERICAL", "3 elements out of tolerance", None, None) == "numerical"
    assert classify_failure("PASSED", "", 1.1, 1.3) == "slower"
    assert classify_failure("TIMEOUT", "", None, None) == "timeout"


def _attempt(status: str, log: str = "", speed: float | None = None) -> Attempt:
    return Attempt(
        candidate_id="c",
        origin="coder",
        status=status,
        geomean_speedup=speed,
        geomean_latency_ms=None,
        log=log,
    )


def test_repair_of_a_shared_memory_failure_takes_the_next_unapplied_variant() -> None:
    t = load_task("trimul")
    book = load_playbook(t)
    policy = PlaybookPolicy()
    wm = policy.initial_world_model(t, "triton", UsageLedger())
    files = files_for(t, book, "k1_wide")
    req = RepairRequest(
        task=t,
        language="triton",
        action=wm.node("n2"),
        files=files,
        attempt=_attempt("RUNTIME_ERROR", "OutOfResources: out of resource: shared memory"),
        parent_speedup=5.0,
    )
    first = policy.repair(req, UsageLedger())
    assert first.files is not None and read_knobs(first.files["run.py"])["K1_NUM_STAGES"] == 1
    req.files = first.files
    second = policy.repair(req, UsageLedger())
    assert second.files is not None and read_knobs(second.files["run.py"])["K1_BLOCK_M"] == 32


def test_repair_without_a_rule_for_the_failure_says_it_is_exhausted() -> None:
    t = load_task("softmax")
    policy = PlaybookPolicy()
    wm = policy.initial_world_model(t, "triton", UsageLedger())
    req = RepairRequest(
        task=t,
        language="triton",
        action=wm.node("n1"),
        files=files_for(t, load_playbook(t), "row"),
        attempt=_attempt("INCORRECT_NUMERICAL", "mismatch"),
        parent_speedup=None,
    )
    turn = policy.repair(req, UsageLedger())
    assert turn.files is None and "no further repair for a numerical failure" in (turn.error or "")
    assert turn.exhausted  # the cycle ends rather than recording an empty attempt


def test_update_moves_open_actions_with_the_evidence() -> None:
    t = load_task("rmsnorm")
    policy = PlaybookPolicy()
    wm = policy.initial_world_model(t, "triton", UsageLedger())
    before = [n.id for n in wm.frontier()]
    assert before == ["n1", "n2"]
    wm.attach_solution(
        "n1", Solution(candidate_id="a", geomean_speedup=1.2)
    )  # predicted 3.0: a disappointment
    outcome = CycleOutcome(
        action=wm.node("n1"),
        parent_speedup=None,
        attempts=[_attempt("PASSED", speed=1.2)],
        best=_attempt("PASSED", speed=1.2),
    )
    ops, problems = policy.update_world_model(t, wm, outcome, UsageLedger())
    report = wm.apply(ops)
    assert not problems and not report.dropped
    n3 = wm.node("n3")
    assert n3.action is not None and n3.action.score < 0.5 and n3.action.expected_speedup < 1.05
    assert wm.node("n1").rating < 7  # rating fell with the shortfall


def test_a_first_kernel_far_above_its_prediction_keeps_the_playbooks_order() -> None:
    """A root kernel measured 141x its prediction (as the GQA seed did on an H100 when its root still predicted
    1x the reference): every open action moves up, no two that differed tie, and the best-rated next step is
    still chosen first."""
    t = load_task("gqa_paged_decode_h32_kv4_d128_ps1")
    policy = PlaybookPolicy()
    wm = policy.initial_world_model(t, "triton", UsageLedger())
    scores_before = {n.id: n.action.score for n in wm.open_actions() if n.action}
    root = wm.select()
    assert root is not None and root.action is not None and ref_of(root.notes) == "split"
    speed = 141.0 * root.action.expected_speedup
    wm.attach_solution(root.id, Solution(candidate_id="a", geomean_speedup=speed))
    outcome = CycleOutcome(
        action=wm.node(root.id),
        parent_speedup=None,
        attempts=[_attempt("PASSED", speed=speed)],
        best=_attempt("PASSED", speed=speed),
    )
    ops, problems = policy.update_world_model(t, wm, outcome, UsageLedger())
    assert not problems and not wm.apply(ops).dropped
    after = {n.id: n.action.score for n in wm.open_actions() if n.action and n.id in scores_before}
    assert all(after[i] > scores_before[i] for i in after)
    assert len(set(after.values())) == len(set(scores_before.values()))  # none saturated into a tie
    head = wm.select()
    assert head is not None and ref_of(head.notes) == "balanced"


@pytest.fixture
def playbook_run(tmp_path: Path, cpu_engine: Engine):  # type: ignore[no-untyped-def]
    register_engine("cpu", cpu_engine)

    def run(task: str, rounds: int) -> dict:  # type: ignore[type-arg]
        ctx = SearchContext(
            policy="playbook", device="cpu", runs_root=str(tmp_path / "runs"), max_rounds=rounds, trials=1
        )
        return run_search(task, ctx)

    return run


def test_full_playbook_run_on_rmsnorm_completes_with_interpreter_correctness(playbook_run) -> None:  # type: ignore[no-untyped-def]
    final = playbook_run("rmsnorm", 4)
    assert final["status"] == "max_rounds" and final["best"] is not None
    rows = store_for(final["run_dir"]).candidates()
    assert len(rows) == 4 and all(r["status"] == "PASSED" for r in rows)
    assert final["eval_summary"]["correctness"]["checked"] == "interpreter"
    wm = WorldModel.model_validate(final["world_model"])
    assert len(wm.solved()) == 4 and any(n.notes.endswith("[playbook:multi2]") for n in wm.nodes.values())


def test_full_playbook_run_on_softmax_completes(playbook_run) -> None:  # type: ignore[no-untyped-def]
    final = playbook_run("softmax", 3)
    assert final["status"] == "max_rounds" and final["best"] is not None
    assert all(r["status"] == "PASSED" for r in store_for(final["run_dir"]).candidates())
