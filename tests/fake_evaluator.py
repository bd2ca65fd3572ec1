"""A slow fake evaluator for backend tests: it sleeps like a real evaluation and reports a speed read from
the candidate's own source, so a result that lands on the wrong candidate shows.

A candidate whose source holds ``KILL_WORKER`` kills the process evaluating it (a Ray worker dying
mid-evaluation); one holding ``RAISE_IN_SLOT`` makes the evaluator raise (a local judge lost mid-way).
"""

from __future__ import annotations

import os
import re
import signal
import threading
import time

from ksearch_agent.candidate import Candidate
from ksearch_agent.results import CorrectnessResult, EvalReport, ProfileResult
from ksearch_agent.task import Task


def speed_of(candidate: Candidate) -> float:
    """The speedup a fake candidate claims: ``SPEED = x`` in its entry file."""
    match = re.search(r"SPEED\s*=\s*([0-9.]+)", candidate.files[candidate.entry])
    return float(match.group(1)) if match else 1.0


def fake_candidate(speed: float, extra: str = "") -> Candidate:
    return Candidate(
        language="python", files={"run.py": f"SPEED = {speed}\n{extra}\ndef run(x):\n    return x\n"}
    )


class SlowEvaluator:
    """Sleeps ``seconds`` per evaluation; records how many evaluations overlapped at most."""

    def __init__(self, seconds: float = 1.0, device: str | None = None) -> None:
        self.seconds = seconds
        self.device = device
        self.active = 0
        self.peak = 0
        self.closed = False
        self._lock = threading.Lock()

    def evaluate(self, task: Task, candidate: Candidate, *, trials: int = 2) -> EvalReport:
        source = candidate.files[candidate.entry]
        if "KILL_WORKER" in source:
            os.kill(os.getpid(), signal.SIGKILL)
        if "RAISE_IN_SLOT" in source:
            raise RuntimeError("the judge died (simulated)")
        with self._lock:
            self.active += 1
            self.peak = max(self.peak, self.active)
        try:
            time.sleep(self.seconds)
        finally:
            with self._lock:
                self.active -= 1
        device = self.device or f"Fake GPU {os.environ.get('CUDA_VISIBLE_DEVICES', '-')}"
        return EvalReport(
            task=task.name,
            candidate_id=candidate.id,
            language=candidate.language,
            status="PASSED",
            correctness=CorrectnessResult(status="PASSED", checked="gpu", device=device),
            profile=ProfileResult(
                measured=True, device=device, geomean_speedup=speed_of(candidate), geomean_latency_ms=1.0
            ),
        )

    def close(self) -> None:
        self.closed = True
