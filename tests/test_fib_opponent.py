"""The library opponent: skipped, with the reason, where it cannot run (no GPU, no flashinfer); the K-Search
score against it; and, on a GPU with flashinfer, timed beside the candidate in the same run."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

from ksearch_agent.candidate import Candidate
from ksearch_agent.engine import Engine
from ksearch_agent.fib.score import library_score
from ksearch_agent.opponents import OpponentUnavailable, load_opponent, opponent_for
from ksearch_agent.opponents.judge_side import start_opponent
from ksearch_agent.results import WorkloadTiming
from ksearch_agent.task import load_task

TASKS = Path(__file__).resolve().parent.parent / "tasks"
GQA = "gqa_paged_decode_h32_kv4_d128_ps1"


def test_opponent_is_skipped_without_a_gpu_and_says_so() -> None:
    opponent, info = start_opponent(opponent_for(GQA), torch.device("cpu"))
    assert opponent is None
    assert info["name"] == "flashinfer_gqa_paged_decode" and "needs a GPU" in info["skipped"]


def test_unknown_opponent_is_refused_by_name() -> None:
    with pytest.raises(OpponentUnavailable, match="unknown opponent 'nope'"):
        load_opponent("nope", torch.device("cuda", 0))


def test_cpu_profile_reports_the_skipped_opponent(tmp_path: Path) -> None:
    task = load_task(TASKS / GQA)
    seed = Candidate.from_path(TASKS / GQA / "seeds" / "triton_split_kv.py")
    with Engine(device="cpu", workdir=tmp_path / "w", cache_dir=tmp_path / "c") as engine:
        profile = engine.profile(task, seed)
    assert not profile.measured
    assert profile.opponent == {
        "name": "flashinfer_gqa_paged_decode",
        "skipped": "no GPU: the library was not run",
    }
    assert profile.library_score is None


def _timing(status: str, ms: float | None, lib: float | None, plan: float | None = None) -> WorkloadTiming:
    return WorkloadTiming(
        workload="w", status=status, latency_ms=ms, library_latency_ms=lib, library_plan_latency_ms=plan
    )


def test_score_is_100_times_the_mean_library_to_candidate_ratio() -> None:
    rows = [_timing("PASSED", 2.0, 1.0, 3.0), _timing("PASSED", 1.0, 2.0, 4.0)]
    assert library_score(rows) == pytest.approx(100 * (0.5 + 2.0) / 2)
    assert library_score(rows, with_plan=True) == pytest.approx(100 * (1.5 + 4.0) / 2)


def test_score_is_zero_unless_every_workload_passed() -> None:
    rows = [_timing("PASSED", 1.0, 1.0), _timing("INCORRECT_NUMERICAL", None, 1.0)]
    assert library_score(rows) == 0.0


def test_score_is_absent_when_the_library_was_not_timed_everywhere() -> None:
    assert library_score([_timing("PASSED", 1.0, 1.0), _timing("PASSED", 1.0, None)]) is None
    assert library_score([]) is None


@pytest.mark.gpu
@pytest.mark.skipif(importlib.util.find_spec("flashinfer") is None, reason="needs flashinfer")
def test_library_is_timed_beside_the_seed_on_the_gpu(tmp_path: Path) -> None:
    task = load_task(TASKS / GQA)
    seed = Candidate.from_path(TASKS / GQA / "seeds" / "triton_split_kv.py")
    with Engine(device="gpu", workdir=tmp_path / "w", cache_dir=tmp_path / "c") as engine:
        profile = engine.profile(task, seed, budget_ms=200)
    assert profile.opponent and "skipped" not in profile.opponent, profile.opponent
    for w in profile.workloads:
        assert w.status == "PASSED", w.log
        assert w.library_status == "PASSED", w.library_log
        assert w.library_latency_ms and w.library_plan_latency_ms
        assert w.library_plan_latency_ms > w.library_latency_ms
    assert profile.library_score is not None and profile.library_score > 0


class _Timer:
    """Stands in for the judge's GPU timer: runs the call, reports 1 ms, and notes whether it was to be gated."""

    def __init__(self) -> None:
        self.gated: list[bool] = []

    def call_ms(self, fn, args, protocol: str = "flushed", gated: bool = True) -> float:  # noqa: ANN001
        self.gated.append(gated)
        fn(*args)
        return 1.0


class _Library:
    name, library = "fake", "fake 0"

    def __init__(self, scale: float = 1.0, fail: bool = False) -> None:
        self.scale, self.fail, self.plans = scale, fail, 0

    def plan(self, inputs):  # noqa: ANN001, ANN201
        self.plans += 1
        if self.fail:
            raise RuntimeError("no kernel for this shape")
        return lambda: (inputs["x"] * inputs["k"] * self.scale,)


_TASK = {"output_names": ["out"], "tolerance": {"rtol": 0.01, "atol": 0.01, "required_matched_ratio": 1.0}}
_WL = {"inputs": [{"name": "x"}], "scalars": {"k": 2.0}}


def _ref(x: torch.Tensor) -> tuple[torch.Tensor]:
    return (x * 2.0,)


def test_library_outputs_are_checked_against_the_reference_before_timing() -> None:
    from ksearch_agent.opponents.judge_side import OpponentRunner, opponent_fields

    good = OpponentRunner(_Library(), _WL, _Timer(), _TASK)
    assert good.call_ms([torch.ones(4)], _ref, with_plan=False) == 1.0
    assert opponent_fields({"library": {"latency_ms": 1.0}}, {}, good)["library_status"] == "PASSED"
    wrong = OpponentRunner(_Library(scale=1.5), _WL, _Timer(), _TASK)
    wrong.call_ms([torch.ones(4)], _ref, with_plan=True)
    fields = opponent_fields({"library_plan": {"latency_ms": 1.0}}, {}, wrong)
    assert fields["library_status"] == "INCORRECT_NUMERICAL" and fields["library_plan_latency_ms"] == 1.0


def test_plan_runs_inside_the_timed_call_only_when_asked() -> None:
    from ksearch_agent.opponents.judge_side import OpponentRunner

    lib = _Library()
    runner = OpponentRunner(lib, _WL, _Timer(), _TASK)
    runner.call_ms([torch.ones(4)], _ref, with_plan=False)  # the check's plan + the untimed plan
    assert lib.plans == 2
    runner.call_ms([torch.ones(4)], _ref, with_plan=True)
    assert lib.plans == 3


def test_the_library_with_its_plan_is_never_timed_behind_a_launch_gate() -> None:
    """plan() copies the page tables to the host, which would wait on a gate until its cap."""
    from ksearch_agent.opponents.judge_side import OpponentRunner

    timer = _Timer()
    runner = OpponentRunner(_Library(), _WL, timer, _TASK)
    runner.call_ms([torch.ones(4)], _ref, with_plan=False)
    runner.call_ms([torch.ones(4)], _ref, with_plan=True)
    assert timer.gated == [True, False]


def test_a_failing_library_becomes_its_status_not_a_judge_error() -> None:
    from ksearch_agent.opponents.judge_side import OpponentRunner, opponent_fields
    from ksearch_agent.worker.profile_job import CallFailed

    runner = OpponentRunner(_Library(fail=True), _WL, _Timer(), _TASK)
    with pytest.raises(CallFailed) as info:
        runner.call_ms([torch.ones(4)], _ref, with_plan=False)
    assert info.value.status == "RUNTIME_ERROR" and "no kernel for this shape" in info.value.log
    fields = opponent_fields({}, {"library": info.value}, runner)
    assert fields["library_status"] == "RUNTIME_ERROR" and "library_latency_ms" not in fields


class _Recording(_Library):
    """A library whose plan records the value its input buffer holds when it is called."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[float] = []

    def plan(self, inputs):  # noqa: ANN001, ANN201
        self.seen.append(float(inputs["x"][0]))
        return super().plan(inputs)


def test_the_hot_protocol_writes_the_librarys_same_inputs_once() -> None:
    from ksearch_agent.opponents.judge_side import OpponentRunner

    lib, inputs = _Recording(), [torch.ones(4)]
    runner = OpponentRunner(lib, _WL, _Timer(), _TASK)
    runner.call_ms(inputs, _ref, with_plan=False, protocol="hot")
    inputs[0].fill_(3.0)  # were the buffers written again, the library would now see 3
    runner.call_ms(inputs, _ref, with_plan=False, protocol="hot")
    assert lib.seen[-1] == 1.0


def test_the_flushed_protocol_writes_the_librarys_inputs_every_call() -> None:
    from ksearch_agent.opponents.judge_side import OpponentRunner

    lib, inputs = _Recording(), [torch.ones(4)]
    runner = OpponentRunner(lib, _WL, _Timer(), _TASK)
    runner.call_ms(inputs, _ref, with_plan=False)
    inputs[0].fill_(3.0)
    runner.call_ms(inputs, _ref, with_plan=False)
    assert lib.seen[-1] == 3.0
