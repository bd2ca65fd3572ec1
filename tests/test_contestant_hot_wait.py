"""The contestant's hot wait (an experiment switch for the timing spread): off unless asked, bounded, and an
evaluation with it on behaves as one without."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest
from conftest import seed

from ksearch_agent.engine import Engine
from ksearch_agent.task import load_task
from ksearch_agent.worker.contestant import HOT_WAIT_ENV, hot_wait_seconds, poll_readable


@pytest.mark.parametrize(
    ("value", "seconds"),
    [(None, 0.0), ("", 0.0), ("twenty", 0.0), ("-5", 0.0), ("20", 0.02), ("1e9", 1.0)],
)
def test_hot_wait_is_off_unless_set_and_capped_at_a_second(value: str | None, seconds: float) -> None:
    env = {} if value is None else {HOT_WAIT_ENV: value}
    assert hot_wait_seconds(env) == pytest.approx(seconds)


def test_polling_returns_as_soon_as_the_next_request_arrives() -> None:
    rfd, wfd = os.pipe()
    try:
        threading.Timer(0.05, os.write, (wfd, b"x")).start()
        t0 = time.perf_counter()
        assert poll_readable(rfd, 5.0)
        assert time.perf_counter() - t0 < 2.0
    finally:
        os.close(rfd)
        os.close(wfd)


def test_polling_gives_up_after_its_window_when_nothing_comes() -> None:
    rfd, wfd = os.pipe()
    try:
        t0 = time.perf_counter()
        assert not poll_readable(rfd, 0.05)
        assert time.perf_counter() - t0 >= 0.05
    finally:
        os.close(rfd)
        os.close(wfd)


def test_an_evaluation_with_the_hot_wait_on_gets_the_same_verdict(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(HOT_WAIT_ENV, "20")
    with Engine(device="cpu", workdir=tmp_path / "w", cache_dir=tmp_path / "c") as engine:
        res = engine.run_correctness(load_task("softmax"), seed("softmax", "triton_rowwise.py"), ["b1"])
    assert res.status == "PASSED", res.workloads[0].log
