"""Each evaluation's GPU is recorded; a run judged on two GPU models says so."""

from __future__ import annotations

from pathlib import Path

from fake_evaluator import fake_candidate

from ksearch_agent.backends.base import Placed, lost_report
from ksearch_agent.backends.placement import mixed_gpu_note, record_placement
from ksearch_agent.store import RunStore
from ksearch_agent.task import load_task

TASK = load_task("rmsnorm")


def _placed(device: str) -> Placed:
    report = lost_report(TASK, fake_candidate(1.0), "placeholder", device=device)
    return Placed(report=report, slot="s", device=device, node="n")


def test_a_second_gpu_model_marks_the_run_as_mixed_once(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    assert record_placement(store, _placed("NVIDIA H200")) is None
    assert record_placement(store, _placed("NVIDIA H200")) is None
    assert mixed_gpu_note(store) is None
    assert record_placement(store, _placed("NVIDIA H100 80GB HBM3")) == [
        "NVIDIA H200",
        "NVIDIA H100 80GB HBM3",
    ]
    assert record_placement(store, _placed("NVIDIA H100 80GB HBM3")) is None
    note = mixed_gpu_note(store)
    assert note is not None and "not comparable" in note and "NVIDIA H200" in note


def test_cpu_judged_evaluations_are_not_gpu_models(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    for device in ("cpu", "cpu (Triton interpreter)", "unknown", ""):
        assert record_placement(store, _placed(device)) is None
    assert store.get_meta("gpu_models") is None
