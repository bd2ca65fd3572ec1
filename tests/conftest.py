"""Shared fixtures: one CPU engine per session (workers are slow to start), candidate paths."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ksearch_agent.candidate import Candidate
from ksearch_agent.engine import Engine, gpu_present
from ksearch_agent.task import BUNDLED_TASKS_DIR

CANDIDATES = Path(__file__).parent / "candidates"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if gpu_present():
        return
    skip = pytest.mark.skip(reason="needs an NVIDIA GPU (run through the device tool)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def cpu_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    root = tmp_path_factory.mktemp("engine")
    with Engine(
        device="cpu", workdir=root / "work", cache_dir=root / "cache", correctness_timeout=120
    ) as engine:
        yield engine


def candidate(name: str, **kw: str) -> Candidate:
    return Candidate.from_path(CANDIDATES / name, **kw)  # type: ignore[arg-type]


def seed(task: str, name: str, **kw: str) -> Candidate:
    return Candidate.from_path(BUNDLED_TASKS_DIR / task / "seeds" / name, **kw)  # type: ignore[arg-type]
