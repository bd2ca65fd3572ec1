"""Before a run ends, its top candidates are re-timed side by side and the faster one is named the best."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from graph_script import GOOD, code_answer, edit_answer, initial_answer
from scripted_model import ScriptedChatModel

from ksearch_agent.confirmation import contenders, duel_ratio, run_duels
from ksearch_agent.context import SearchContext
from ksearch_agent.engine import Engine
from ksearch_agent.llm.chat import register_model, unregister_model
from ksearch_agent.resources import register_engine, store_for
from ksearch_agent.results import ProfileResult, WorkloadTiming
from ksearch_agent.runner import run_search


def _marked(candidate: Any, mark: str) -> float:
    return float(candidate.files[candidate.entry].rsplit(f"# {mark}:", 1)[1].split()[0])


class _SideBySideEngine(Engine):
    """Real correctness on the CPU; this machine has no GPU, so the timings a GPU would give are read from
    the source: '# speed: X' is the search's one-off score (noisy on a shared GPU), '# true: Y' is the
    kernel's real speed, which is what a side-by-side profile against a baseline sees."""

    duels: list[tuple[str, str]]

    def profile(
        self, task: Any, candidate: Any, workload_ids: Any = None, *, baseline: Any = None, **kw: Any
    ) -> ProfileResult:
        if baseline is None:
            speed = _marked(candidate, "speed")
            return ProfileResult(
                measured=True, device="stand-in", geomean_speedup=speed, geomean_latency_ms=1.0 / speed
            )
        self.duels.append((candidate.id, baseline.id))
        if "# untimeable" in candidate.files[candidate.entry]:
            rows = [
                WorkloadTiming(workload="w0", status="RUNTIME_ERROR", baseline_latency_ms=1.0, log="boom")
            ]
            return ProfileResult(measured=True, device="stand-in", workloads=rows)
        mine, theirs = 1.0 / _marked(candidate, "true"), 1.0 / _marked(baseline, "true")
        rows = [
            WorkloadTiming(
                workload=f"w{i}",
                status="PASSED",
                latency_ms=mine,
                baseline_latency_ms=theirs,
                speedup_vs_baseline=theirs / mine,
            )
            for i in range(3)
        ]
        return ProfileResult(measured=True, device="stand-in", workloads=rows)

    @property
    def mode(self) -> str:
        return "cpu"


@pytest.fixture
def engine(tmp_path: Path) -> Any:
    e = _SideBySideEngine(device="cpu", workdir=tmp_path / "w", cache_dir=tmp_path / "c")
    e.duels = []
    register_engine("cpu", e)
    yield e
    e.close()


def _kernel(speed: float, true: float, extra: str = "") -> str:
    return code_answer(GOOD + f"\n# speed: {speed}\n# true: {true}\n{extra}")


def _search(tmp_path: Path, answers: list[str], **kw: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    register_model("scripted-confirm", ScriptedChatModel(answers))
    ctx = SearchContext(
        model="scripted-confirm",
        device="cpu",
        runs_root=str(tmp_path / "runs"),
        max_rounds=2,
        max_attempts=1,
        trials=1,
        **kw,
    )
    events: list[dict[str, Any]] = []
    try:
        return run_search("rmsnorm", ctx, run_id="confirm", on_event=events.append), events
    finally:
        unregister_model("scripted-confirm")


def test_the_candidate_faster_side_by_side_is_named_best_over_a_luckier_score(
    tmp_path: Path, engine: Any
) -> None:
    final, events = _search(
        tmp_path, [initial_answer(), _kernel(2.0, 1.8), edit_answer([]), _kernel(2.1, 1.7), edit_answer([])]
    )
    store = store_for(final["run_dir"])
    first, second = [r["id"] for r in store.candidates()]
    assert engine.duels == [(first, second)]  # the runner-up challenged the top score, once
    assert final["best"]["candidate_id"] == first and final["best"]["geomean_speedup"] == 2.0
    duel = final["best"]["confirmation"]["duels"][0]
    assert duel["winner"] == first and duel["ratio"] == pytest.approx(1.8 / 1.7)
    assert store.best_candidate()["id"] == first  # type: ignore[index]
    assert final["eval_summary"]["status"] == "PASSED"
    assert [e["event"] for e in events][-3:] == ["confirming", "best_confirmed", "finished"]


def test_export_writes_the_confirmed_best_not_the_top_score(tmp_path: Path, engine: Any) -> None:
    final, _ = _search(
        tmp_path, [initial_answer(), _kernel(2.0, 1.8), edit_answer([]), _kernel(2.1, 1.7), edit_answer([])]
    )
    env = {k: v for k, v in os.environ.items() if k not in ("KSEARCH_MODEL", "KSEARCH_BASE_URL")}
    out = subprocess.run(
        [sys.executable, "-m", "ksearch_agent.cli", "export", final["run_dir"], str(tmp_path / "best.py")],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    assert "# speed: 2.0\n" in (tmp_path / "best.py").read_text()


def test_the_top_score_stands_when_it_is_also_faster_side_by_side(tmp_path: Path, engine: Any) -> None:
    final, _ = _search(
        tmp_path, [initial_answer(), _kernel(2.0, 1.6), edit_answer([]), _kernel(2.1, 1.7), edit_answer([])]
    )
    second = store_for(final["run_dir"]).candidates()[1]["id"]
    assert final["best"]["candidate_id"] == second and len(engine.duels) == 1
    assert final["best"]["confirmation"]["duels"][0]["winner"] == second


def test_a_challenger_that_cannot_be_timed_loses_its_duel(tmp_path: Path, engine: Any) -> None:
    final, _ = _search(
        tmp_path,
        [
            initial_answer(),
            _kernel(2.0, 9.0, "# untimeable"),
            edit_answer([]),
            _kernel(2.1, 1.7),
            edit_answer([]),
        ],
    )
    second = store_for(final["run_dir"]).candidates()[1]["id"]
    duel = final["best"]["confirmation"]["duels"][0]
    assert final["best"]["candidate_id"] == second and duel["ratio"] is None and duel["winner"] == second


def test_candidates_outside_the_margin_are_not_re_timed(tmp_path: Path, engine: Any) -> None:
    final, _ = _search(
        tmp_path, [initial_answer(), _kernel(1.0, 3.0), edit_answer([]), _kernel(2.1, 1.7), edit_answer([])]
    )
    assert engine.duels == [] and final["best"]["geomean_speedup"] == 2.1
    assert final["best"]["confirmation"] == {"contenders": [final["best"]["candidate_id"]], "duels": []}


def test_confirm_top_below_two_turns_the_re_timing_off(tmp_path: Path, engine: Any) -> None:
    final, _ = _search(
        tmp_path,
        [initial_answer(), _kernel(2.0, 1.8), edit_answer([]), _kernel(2.1, 1.7), edit_answer([])],
        confirm_top=1,
    )
    assert engine.duels == [] and final["best"]["geomean_speedup"] == 2.1


def test_a_crash_of_the_re_timing_keeps_the_top_score_and_says_why(tmp_path: Path, engine: Any) -> None:
    def broken(*a: Any, **kw: Any) -> ProfileResult:
        if kw.get("baseline") is not None:
            raise RuntimeError("GPU worker lost")
        return _SideBySideEngine.profile(engine, *a, **kw)

    engine.profile = broken
    final, _ = _search(
        tmp_path, [initial_answer(), _kernel(2.0, 1.8), edit_answer([]), _kernel(2.1, 1.7), edit_answer([])]
    )
    assert final["best"]["geomean_speedup"] == 2.1 and final["status"] == "max_rounds"
    assert "GPU worker lost" in final["best"]["confirmation"]["error"]


def test_contenders_are_passing_timed_candidates_within_the_margin_best_first() -> None:
    rows = [
        {"id": "a", "status": "PASSED", "geomean_speedup": 1.95},
        {"id": "b", "status": "PASSED", "geomean_speedup": 2.0},
        {"id": "c", "status": "INCORRECT", "geomean_speedup": None},
        {"id": "d", "status": "PASSED", "geomean_speedup": 1.7},
        {"id": "e", "status": "PASSED", "geomean_speedup": None},
        {"id": "f", "status": "PASSED", "geomean_speedup": 1.85},
    ]
    assert contenders(rows, top=3, margin=0.1) == ["b", "a", "f"]
    assert contenders(rows, top=2, margin=0.1) == ["b", "a"]
    assert contenders(rows, top=5, margin=0.03) == ["b", "a"]
    assert contenders([rows[2], rows[4]], top=3, margin=0.1) == []


def test_a_duel_with_any_workload_unpaired_has_no_ratio() -> None:
    paired = [
        WorkloadTiming(
            workload="w", status="PASSED", latency_ms=1.0, baseline_latency_ms=2.0, speedup_vs_baseline=2.0
        )
    ]
    unpaired = [*paired, WorkloadTiming(workload="v", status="TIMEOUT", baseline_latency_ms=2.0)]
    assert duel_ratio(ProfileResult(measured=True, workloads=paired)) == 2.0
    assert duel_ratio(ProfileResult(measured=True, workloads=unpaired)) is None
    assert duel_ratio(ProfileResult(measured=False)) is None


def test_duels_are_king_of_the_hill_in_score_order() -> None:
    true = {"a": 1.0, "b": 1.2, "c": 1.1}

    class Engine:
        def profile(
            self, task: Any, candidate: str, workload_ids: Any = None, *, baseline: Any = None
        ) -> ProfileResult:
            r = true[candidate] / true[baseline]
            return ProfileResult(
                measured=True,
                workloads=[
                    WorkloadTiming(workload="w", status="PASSED", latency_ms=1.0, speedup_vs_baseline=r)
                ],
            )

    result = run_duels(Engine(), None, lambda cid: cid, ["a", "b", "c"])
    assert [(d["challenger"], d["champion"], d["winner"]) for d in result["duels"]] == [
        ("b", "a", "b"),
        ("c", "b", "b"),
    ]
    assert result["candidate_id"] == "b"
