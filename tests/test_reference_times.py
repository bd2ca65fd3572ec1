"""Cached reference times live on the engine side, so every judge divides by the same time."""

from __future__ import annotations

from ksearch_agent.backends.gpus import GpuInfo
from ksearch_agent.backends.local import local_backend
from ksearch_agent.reference_times import ReferenceTimes
from ksearch_agent.worker.protocol import reference_key


def test_the_first_time_recorded_under_a_key_is_kept() -> None:
    times = ReferenceTimes()
    key = reference_key("gqa", "w1", "flushed", 200.0)
    times.record(key, {"latency_ms": 7.2})
    times.record(key, {"latency_ms": 8.6})  # a replacement judge's own timing does not replace it
    assert times.known([key, reference_key("gqa", "w2", "flushed", 200.0)]) == {key: {"latency_ms": 7.2}}


def test_the_key_tells_protocols_and_launch_overlaps_apart() -> None:
    keys = {
        reference_key("gqa", "w1", "flushed", 200.0),
        reference_key("gqa", "w1", "hot", 200.0),
        reference_key("gqa", "w1", "flushed", 500.0),
        reference_key("mla", "w1", "flushed", 200.0),
    }
    assert len(keys) == 4
    assert reference_key("gqa", "w1", "flushed", 200) == reference_key("gqa", "w1", "flushed", 200.0)


def test_the_gpu_slots_of_one_local_backend_share_one_table() -> None:
    backend = local_backend(3, device="gpu", gpus=[GpuInfo(0, "H100"), GpuInfo(1, "H100")])
    try:
        tables = {id(e.reference_times) for e in backend.engines}  # type: ignore[attr-defined]
        assert len(backend.engines) == 3 and len(tables) == 1
    finally:
        backend.close()
