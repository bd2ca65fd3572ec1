"""Candidates evaluated one after another by one engine: what a candidate does to the process it runs in never
reaches a later verdict, and a record it forges never becomes one.

Before the judge/contestant split, one comparator-patching candidate made every later candidate of the
same engine pass (issue 15); here the patching candidates, a wrong kernel and a correct seed go through a
single CPU engine in that order, and only the seed may pass.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import candidate, seed

from ksearch_agent.candidate import Candidate
from ksearch_agent.engine import Engine
from ksearch_agent.results import CorrectnessResult
from ksearch_agent.task import load_task

CHEATS = Path(__file__).parent / "cheats"
RMS = load_task("rmsnorm")


def cheat(name: str) -> Candidate:
    return Candidate.from_path(CHEATS / name)


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    with Engine(
        device="cpu", workdir=tmp_path / "work", cache_dir=tmp_path / "cache", correctness_timeout=120
    ) as e:
        yield e


def _detail(res: CorrectnessResult) -> list[tuple[str, str, str]]:
    return [(w.workload, w.status, w.log[:200]) for w in res.workloads]


def test_patching_candidates_spoil_no_later_verdict(engine: Engine) -> None:
    patchers = [
        ("rmsnorm", "rmsnorm_15_poison_comparator_at_import.py"),  # check_output via sys.modules
        ("softmax", "softmax_15_poison_tensor_abs_at_import.py"),  # torch.Tensor.abs
        ("rmsnorm", "rmsnorm_13_patch_comparator.py"),
    ]  # check_output, patched during its own call
    for task, name in patchers:
        res = engine.run_correctness(load_task(task), cheat(name))
        assert res.status != "PASSED", (name, _detail(res))
    wrong = engine.run_correctness(RMS, candidate("rmsnorm_wrong.py"))
    assert wrong.status == "INCORRECT_NUMERICAL", _detail(wrong)
    right = engine.run_correctness(RMS, seed("rmsnorm", "triton_rowwise.py"))
    assert right.status == "PASSED", _detail(right)


def test_a_forged_record_is_never_passed_and_leaves_nothing_for_the_next_request(engine: Engine) -> None:
    for task, name in [
        ("rmsnorm", "rmsnorm_14_forged_record_fds.py"),
        ("softmax", "softmax_14_forged_record_fds.py"),
    ]:
        t = load_task(task)
        res = engine.run_correctness(t, cheat(name))
        assert res.status != "PASSED", (name, _detail(res))
        assert all(w.status != "PASSED" for w in res.workloads), (name, _detail(res))
        listed = {w.id for w in t.select(cpu=True)}
        assert listed <= {w.workload for w in res.workloads}, (
            name,
            _detail(res),
        )  # one row per workload, no fakes
        assert len(res.workloads) == len({w.workload for w in res.workloads}), (name, _detail(res))
    right = engine.run_correctness(RMS, seed("rmsnorm", "triton_rowwise.py"))
    assert right.status == "PASSED", _detail(right)
    assert {w.id for w in RMS.select(cpu=True)} <= {w.workload for w in right.workloads}


def test_a_contestant_can_neither_signal_nor_read_the_judge(tmp_path: Path) -> None:
    """The contestant runs in a Landlock domain taken before its interpreter started: the judge (its
    parent) can be neither signalled nor read through /proc, from any of the contestant's threads."""
    from ksearch_agent.worker.sandbox import landlock_abi

    if landlock_abi() < 6:
        pytest.skip("needs Landlock ABI 6 (signal scoping); this kernel has less")
    probe = tmp_path / "probe.py"
    probe.write_text(
        "import os\n"
        "def _try(f):\n"
        "    try:\n"
        "        f()\n"
        "        return 'ALLOWED'\n"
        "    except OSError as exc:\n"
        "        return type(exc).__name__\n"
        "def run(hidden_states, weight):\n"
        "    judge = os.getppid()\n"
        "    seen = {'kill': _try(lambda: os.kill(judge, 0)),\n"
        "            'mem': _try(lambda: open(f'/proc/{judge}/mem', 'rb').close()),\n"
        "            'fd': _try(lambda: open(f'/proc/{judge}/fd/1', 'wb').close())}\n"
        "    raise RuntimeError(f'probe {seen}')\n"
    )
    with Engine(device="cpu", workdir=tmp_path / "w", cache_dir=tmp_path / "c", screening=False) as engine:
        res = engine.run_correctness(
            load_task("rmsnorm"), Candidate.from_path(probe, language="python"), ["b1"]
        )
    log = res.workloads[0].log
    assert "probe {" in log and "ALLOWED" not in log, log


@pytest.mark.parametrize("extra", ["duplicate", "unknown", "missing", "foreign_nonce"])
def test_the_engine_takes_exactly_one_record_per_workload_from_its_judge(tmp_path: Path, extra: str) -> None:
    """Defence in depth behind the judge: a record for a workload not asked for, a second record for one, a
    missing one, or a message of another request ends as an incomplete result, never PASSED."""
    from ksearch_agent.worker_process import WorkerDied

    def passed(wid: str) -> dict[str, object]:
        return {"type": "workload", "result": {"workload": wid, "status": "PASSED"}}

    script = {
        "duplicate": [passed("b1"), passed("b7"), passed("b1"), {"type": "done"}],
        "unknown": [passed("b1"), passed("b7"), passed("b9999"), {"type": "done"}],
        "missing": [passed("b1"), {"type": "done"}],
        "foreign_nonce": None,
    }[extra]

    def fake_exchange(mode: str, request: dict[str, object], timeout: float) -> list[dict[str, object]]:
        if script is None:
            raise WorkerDied("cpu judge sent a message that does not belong to this request")
        return [dict(m) for m in script]

    with Engine(device="cpu", workdir=tmp_path / "w", cache_dir=tmp_path / "c") as engine:
        engine._mode = "cpu"
        engine._exchange = fake_exchange  # type: ignore[method-assign]
        res = engine.run_correctness(load_task("rmsnorm"), seed("rmsnorm", "triton_rowwise.py"), ["b1", "b7"])
    assert res.status == "RUNTIME_ERROR", [(w.workload, w.status, w.log) for w in res.workloads]
    assert [w.workload for w in res.workloads] == ["b1", "b7"]
