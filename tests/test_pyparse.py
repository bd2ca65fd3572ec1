"""Our parses of Python source run one at a time, whatever thread asks (CPython 3.11's AST builder is not
safe to run from two threads at once)."""

from __future__ import annotations

import ast
import threading
import time
from typing import Any

import pytest

from ksearch_agent import pyparse
from ksearch_agent.knobs import read_knobs


def test_parses_from_many_threads_never_overlap(monkeypatch: pytest.MonkeyPatch) -> None:
    inside, peak, lock = 0, 0, threading.Lock()
    real = ast.parse

    def slow_parse(source: str, *args: Any, **kwargs: Any) -> ast.AST:
        nonlocal inside, peak
        with lock:
            inside += 1
            peak = max(peak, inside)
        time.sleep(0.02)
        with lock:
            inside -= 1
        return real(source, *args, **kwargs)

    monkeypatch.setattr(pyparse.ast, "parse", slow_parse)
    results: list[dict[str, Any]] = []
    threads = [
        threading.Thread(target=lambda i=i: results.append(read_knobs(f"BLOCK = {i}\n"))) for i in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert peak == 1
    assert sorted(r["BLOCK"] for r in results) == list(range(8))
