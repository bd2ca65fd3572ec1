"""Known ways generated kernels game evaluators: each candidate in tests/cheats/ must get its status, with the reason.

Every file opens with a docstring whose first line reads ``expect: STATUS[rule] flags — description``:

- ``STATUS`` is the status the engine must give; ``A|B`` allows either (a forged record may break the
  channel, a RUNTIME_ERROR, or be ignored, leaving the real output's INCORRECT_NUMERICAL: never PASSED);
- ``[rule]``, for a rejection, is the tag the reason must name (a static screen rule such as
  ``[torch-compute]``, or a dynamic one such as ``[op-count]``, ``[no-launch]``, ``[threads]``, ``[children]``);
- ``phase=profile`` marks a cheat that behaves during correctness and only goes wrong while it is timed: it
  is judged through ``engine.evaluate`` on a GPU;
- ``gpu-only`` marks a cheat that needs a GPU; every other cheat runs on the CPU engine (Triton interpreter).

File names are ``<task>_<NN><letter>_<what>.py``. NN 01-11 follow the patterns of
shared/notes/evaluators.md; 12-19 the attack classes of issue 15, each covered for rmsnorm, softmax and
trimul: 12 reading the expected output from caller frames, 13 patching the judge (comparator, reference,
an ATen op), 14 forging the result record, 15 poisoning later candidates, 16 PyTorch compute hidden from
names, 17 threads and processes the old watch missed, 18 right during correctness and garbage while timed,
19 gaps of the CPU path (dependent programs, rows never written, numerically unsafe kernels).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from ksearch_agent.candidate import Candidate
from ksearch_agent.engine import Engine
from ksearch_agent.results import CorrectnessResult
from ksearch_agent.task import load_task

CHEATS = sorted((Path(__file__).parent / "cheats").glob("*.py"))
TASKS = ("rmsnorm", "softmax", "trimul")
ISSUE_CLASSES = {f"{n}" for n in range(12, 20)}

_EXPECT = re.compile(
    r'"""expect: (?P<status>[A-Z_]+(?:\|[A-Z_]+)*)(?:\[(?P<rule>[\w-]+)\])?'
    r"(?P<flags>(?: (?:phase=\w+|gpu-only))*) — "
)


@dataclass(frozen=True)
class Expectation:
    statuses: tuple[str, ...]
    rule: str | None
    phase: str  # "correctness" or "profile"
    gpu_only: bool


def expectation(path: Path) -> Expectation:
    m = _EXPECT.match(path.read_text())
    assert m, f"{path.name} has no expectation line"
    flags = m.group("flags").split()
    phase = next((f.split("=", 1)[1] for f in flags if f.startswith("phase=")), "correctness")
    assert phase in ("correctness", "profile"), f"{path.name}: unknown phase {phase!r}"
    return Expectation(
        tuple(m.group("status").split("|")), m.group("rule"), phase, "gpu-only" in flags or phase == "profile"
    )


def _class(path: Path) -> str:
    return path.stem.split("_")[1][:2]


CPU_CHEATS = [p for p in CHEATS if not expectation(p).gpu_only]
GPU_CORRECTNESS = [p for p in CHEATS if expectation(p).gpu_only and expectation(p).phase == "correctness"]
GPU_PROFILE = [p for p in CHEATS if expectation(p).phase == "profile"]


def _reasons(res: CorrectnessResult) -> list[str]:
    return list(res.rejections) + [w.log for w in res.workloads if w.status == "REJECTED"]


def _assert_verdict(res: CorrectnessResult, exp: Expectation) -> None:
    detail = [(w.workload, w.status, w.log[:300]) for w in res.workloads]
    assert res.status in exp.statuses, detail
    assert res.status != "PASSED", detail
    if res.status == "REJECTED":
        reasons = _reasons(res)
        assert reasons, "a rejection must say why"
        if exp.rule is not None:
            assert any(f"[{exp.rule}]" in r for r in reasons), reasons


@pytest.mark.parametrize("path", CPU_CHEATS, ids=[p.stem for p in CPU_CHEATS])
def test_cheat_is_caught_with_its_reason(path: Path, cpu_engine: Engine) -> None:
    """All cheats share one engine (the session's): each runs in a fresh contestant, so one that attacks
    the evaluating process cannot spoil the verdicts of the tests after it."""
    exp = expectation(path)
    engine = cpu_engine
    task = load_task(path.stem.split("_")[0])
    _assert_verdict(engine.run_correctness(task, Candidate.from_path(path)), exp)


@pytest.fixture(scope="module")
def gpu_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    root = tmp_path_factory.mktemp("gpu-cheats")
    with Engine(device="gpu", workdir=root / "work", cache_dir=root / "cache") as engine:
        yield engine


@pytest.mark.gpu
@pytest.mark.parametrize("path", GPU_CORRECTNESS, ids=[p.stem for p in GPU_CORRECTNESS])
def test_gpu_cheat_is_caught_with_its_reason(path: Path, gpu_engine: Engine) -> None:
    task = load_task(path.stem.split("_")[0])
    _assert_verdict(gpu_engine.run_correctness(task, Candidate.from_path(path)), expectation(path))


@pytest.mark.gpu
@pytest.mark.parametrize("path", GPU_PROFILE, ids=[p.stem for p in GPU_PROFILE])
def test_timing_phase_cheat_fails_where_it_is_timed(path: Path, gpu_engine: Engine) -> None:
    """Right while checked, wrong while timed: correctness alone passes it; the judge's checks of sampled
    timed calls must not."""
    exp = expectation(path)
    task = load_task(path.stem.split("_")[0])
    report = gpu_engine.evaluate(task, Candidate.from_path(path))
    timed = report.profile.workloads if report.profile is not None else []
    detail = (report.status, report.correctness.status, [(w.workload, w.status, w.log[:300]) for w in timed])
    statuses = {report.status} | {w.status for w in timed}
    assert statuses & set(exp.statuses), detail
    assert report.profile is None or report.profile.geomean_speedup is None, detail
    if exp.rule is not None:
        logs = [w.log for w in timed] + _reasons(report.correctness)
        assert any(f"[{exp.rule}]" in log for log in logs), detail


def test_every_pattern_of_the_notes_is_covered_for_rmsnorm_and_trimul() -> None:
    for task in ("rmsnorm", "trimul"):
        patterns = {_class(p) for p in CHEATS if p.stem.startswith(task + "_")}
        assert {f"{i:02d}" for i in range(1, 12)} <= patterns, (task, sorted(patterns))


def test_every_attack_class_of_issue_15_is_covered_for_every_task() -> None:
    for task in TASKS:
        classes = {_class(p) for p in CHEATS if p.stem.startswith(task + "_")}
        assert ISSUE_CLASSES <= classes, (task, sorted(ISSUE_CLASSES - classes))


def test_every_cheat_file_is_well_formed() -> None:
    for path in CHEATS:
        task, number, *what = path.stem.split("_")
        assert task in TASKS and re.fullmatch(r"\d\d[a-z]?", number) and what, path.name
        exp = expectation(path)
        assert exp.rule is None or exp.statuses == ("REJECTED",), (
            f"{path.name}: a rule goes with REJECTED only"
        )
