"""The ray backend on a CPU machine: a Ray started here with two logical GPUs, one per test module.

Skipped when Ray is not installed. Ray talks to itself over loopback sockets, allowed for this module only.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from fake_evaluator import SlowEvaluator, fake_candidate, speed_of

from ksearch_agent.task import load_task

ray = pytest.importorskip("ray", reason='Ray is optional: pip install "ksearch-agent[ray]"')

pytestmark = pytest.mark.enable_socket

TASK = load_task("rmsnorm")


@pytest.fixture(scope="module")
def ray_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    import fake_evaluator

    ray.cloudpickle.register_pickle_by_value(fake_evaluator)  # Ray workers need not import tests/
    temp = Path("/tmp") / f"kr{tmp_path_factory.getbasetemp().name[-6:]}"  # short: Ray's socket paths
    ray.init(
        num_cpus=2,
        num_gpus=2,
        include_dashboard=False,
        log_to_driver=False,
        _node_ip_address="127.0.0.1",
        _temp_dir=str(temp),
        configure_logging=False,
    )
    try:
        yield
    finally:
        ray.shutdown()


def _backend(slots: int, seconds: float, **kw: Any) -> Any:
    from ksearch_agent.backends.ray_backend import RayBackend

    return RayBackend(slots, evaluator_factory=lambda: SlowEvaluator(seconds), **kw)  # actors up on return


def _evaluate_all(backend: Any, speeds: list[float]) -> tuple[float, list[Any]]:
    cands = [fake_candidate(s) for s in speeds]
    t0 = time.perf_counter()
    with ThreadPoolExecutor(len(cands)) as pool:
        placed = list(pool.map(lambda c: backend.evaluate(TASK, c, trials=1), cands))
    return time.perf_counter() - t0, list(zip(cands, placed, strict=True))


def test_two_gpu_actors_take_about_half_the_wall_time_of_one(ray_cluster: None) -> None:
    one = _backend(1, 0.6)
    try:
        serial, _ = _evaluate_all(one, [1.0, 1.1, 1.2, 1.3])
    finally:
        one.close()
    two = _backend(2, 0.6)
    try:
        parallel, _ = _evaluate_all(two, [1.0, 1.1, 1.2, 1.3])
    finally:
        two.close()
    assert serial >= 2.4
    assert parallel < 0.7 * serial


def test_every_result_comes_back_on_its_own_candidate_with_its_gpu(ray_cluster: None) -> None:
    backend = _backend(2, 0.05)
    try:
        _, rows = _evaluate_all(backend, [1.0 + i / 10 for i in range(6)])
    finally:
        backend.close()
    for cand, placed in rows:
        assert placed.report.candidate_id == cand.id
        assert placed.report.profile.geomean_speedup == speed_of(cand)
        assert placed.device.startswith("Fake GPU ")  # Ray gave the actor a GPU of its own
    assert {p.device for _, p in rows} == {"Fake GPU 0", "Fake GPU 1"}
    assert {p.slot for _, p in rows} == {"ray0", "ray1"}


def test_a_killed_ray_worker_gives_a_status_and_the_next_evaluation_runs(ray_cluster: None) -> None:
    backend = _backend(1, 0.05)
    try:
        lost = backend.evaluate(TASK, fake_candidate(2.0, "KILL_WORKER = 1"))
        after = backend.evaluate(TASK, fake_candidate(3.0))
    finally:
        backend.close()
    assert lost.report.status == "RUNTIME_ERROR"
    assert "evaluation lost" in lost.report.correctness.note
    assert after.report.status == "PASSED" and after.report.profile.geomean_speedup == 3.0


def test_a_task_the_worker_cannot_load_is_the_task_s_error_not_the_candidate_s(
    ray_cluster: None, tmp_path: Path
) -> None:
    from ksearch_agent.backends.task_blob import TaskBlob
    from ksearch_agent.task import TaskFileError

    backend = _backend(1, 0.01)
    broken = TASK.model_copy(update={"directory": tmp_path})
    for name, text in TaskBlob.from_task(TASK).files.items():
        (tmp_path / name).write_text(
            text.replace('"reference"', '"reference_typo"') if name == "definition.json" else text
        )
    try:
        with pytest.raises(TaskFileError, match="definition.json"):
            backend.evaluate(broken, fake_candidate(1.0))
    finally:
        backend.close()


def test_ksearch_run_on_the_ray_backend_stores_every_candidate(ray_cluster: None, tmp_path: Path) -> None:
    from run_checks import assert_every_candidate_stored, run_cli

    out = run_cli(tmp_path, "--parallel", "2", "--backend", "ray")
    assert out.exit_code == 0, out.output
    assert_every_candidate_stored(tmp_path / "runs", slots={"ray0", "ray1"}, rounds=2)


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))
