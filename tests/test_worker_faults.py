"""A hanging or crashing candidate gets a status, its contestant is killed, the judge carries on and the
next candidate still runs."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from conftest import candidate, seed

from ksearch_agent.engine import Engine
from ksearch_agent.task import load_task

RMS = load_task("rmsnorm")


def test_hanging_candidate_times_out_and_the_next_is_evaluated(tmp_path: Path) -> None:
    with Engine(device="cpu", workdir=tmp_path / "w", cache_dir=tmp_path / "c") as engine:
        t0 = time.monotonic()
        hung = engine.run_correctness(RMS, candidate("rmsnorm_hang.py"), ["b1", "b7"], timeout=4)
        assert hung.status == "TIMEOUT" and time.monotonic() - t0 < 60
        assert hung.workloads[0].status == "TIMEOUT" and "killed" in hung.workloads[0].log
        assert hung.workloads[1].log.startswith("not run")
        after = engine.run_correctness(RMS, seed("rmsnorm", "triton_rowwise.py"), ["b1"])
        assert after.status == "PASSED"
        assert engine.worker("cpu").starts == 1  # the hang was the contestant's, not the judge's


def test_os_exit_is_a_runtime_error_naming_the_exit_code(cpu_engine: Engine) -> None:
    res = cpu_engine.run_correctness(RMS, candidate("rmsnorm_exit.py"), ["b1"])
    assert res.status == "RUNTIME_ERROR" and "exited with code 17" in res.workloads[0].log
    assert cpu_engine.run_correctness(RMS, seed("rmsnorm", "triton_rowwise.py"), ["b1"]).status == "PASSED"


def test_segfault_is_a_runtime_error_and_only_the_contestant_dies(cpu_engine: Engine) -> None:
    before = cpu_engine.worker("cpu").starts
    res = cpu_engine.run_correctness(RMS, candidate("rmsnorm_segfault.py"), ["b1"])
    assert res.status == "RUNTIME_ERROR" and "SIGSEGV" in res.workloads[0].log
    assert cpu_engine.run_correctness(RMS, seed("rmsnorm", "triton_rowwise.py"), ["b1"]).status == "PASSED"
    assert cpu_engine.worker("cpu").starts == before


def test_no_contestant_outlives_its_evaluation_but_one_spare(cpu_engine: Engine) -> None:
    cpu_engine.run_correctness(RMS, seed("rmsnorm", "triton_rowwise.py"), ["b1"])
    judge = cpu_engine.worker("cpu").pid
    children = set()
    for task in Path(f"/proc/{judge}/task").glob("*/children"):
        children.update(int(p) for p in task.read_text().split())
    assert len(children) == 1  # the warm spare, which has imported no candidate


def test_profile_without_gpu_says_speed_was_not_measured(cpu_engine: Engine) -> None:
    res = cpu_engine.profile(RMS, seed("rmsnorm", "triton_rowwise.py"))
    assert res.measured is False and "not measured" in res.note and res.workloads == []


@pytest.fixture
def unscreened(tmp_path: Path):  # type: ignore[no-untyped-def]
    """The static screen would refuse these files before they run; here the runtime defences are tested."""
    with Engine(device="cpu", workdir=tmp_path / "w", cache_dir=tmp_path / "c", screening=False) as engine:
        yield engine


def test_fork_is_rejected_the_child_killed_and_only_the_worker_reports(unscreened: Engine) -> None:
    res = unscreened.run_correctness(RMS, candidate("rmsnorm_fork.py"), ["b1"])
    assert res.status == "REJECTED" and "child process" in res.workloads[0].log
    assert unscreened.run_correctness(RMS, seed("rmsnorm", "triton_rowwise.py"), ["b1"]).status == "PASSED"


def test_printing_100mb_is_a_runtime_error_and_the_log_stays_bounded(unscreened: Engine) -> None:
    res = unscreened.run_correctness(RMS, candidate("rmsnorm_print_100mb.py"), ["b1"])
    assert res.status == "RUNTIME_ERROR" and "File too large" in res.workloads[0].log
    assert unscreened.run_correctness(RMS, seed("rmsnorm", "triton_rowwise.py"), ["b1"]).status == "PASSED"
    assert unscreened.worker("cpu").log_size() <= 64 * 1024 * 1024


def test_static_screen_refuses_a_forking_candidate_before_it_runs(cpu_engine: Engine) -> None:
    res = cpu_engine.run_correctness(RMS, candidate("rmsnorm_fork.py"), ["b1"])
    assert res.status == "REJECTED" and res.checked == "screen" and "[concurrency]" in res.rejections[0]
