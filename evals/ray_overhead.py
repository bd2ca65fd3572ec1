"""What the Ray backend costs per evaluation against the local one, on this machine's CPUs (issue 18).

Two measurements, each through the backends' own ``evaluate`` (the call the search makes):

- dispatch: an evaluator that answers at once, N evaluations one after another on one slot, so the time
  per call is the backend's own cost (task blob and candidate serialised, an actor call, the report
  validated back);
- a real CPU evaluation (rmsnorm's Triton seed under the interpreter, the engine in the slot): the first
  call (engine and judge start-up inside a fresh actor) and the steady calls after it.

Ray is started here (``ray.init(num_cpus=2)``); on a cluster the same calls cross the network and add its
latency. Usage: ``python evals/ray_overhead.py [OUT_DIR] [N]``; writes OUT_DIR/ray_overhead.{json,md}.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ksearch_agent.backends.base import EvaluationBackend  # noqa: E402
from ksearch_agent.backends.local import LocalBackend  # noqa: E402
from ksearch_agent.backends.ray_backend import RayBackend  # noqa: E402
from ksearch_agent.candidate import Candidate  # noqa: E402
from ksearch_agent.engine import Engine  # noqa: E402
from ksearch_agent.results import CorrectnessResult, EvalReport  # noqa: E402
from ksearch_agent.task import Task, load_task  # noqa: E402

SEED = ROOT / "tasks" / "rmsnorm" / "seeds" / "triton_rowwise.py"


class InstantEvaluator:
    """Answers every evaluation at once with a PASSED record: what is left of a call is the backend."""

    def evaluate(self, task: Task, candidate: Candidate, *, trials: int = 2) -> EvalReport:
        return EvalReport(
            task=task.name,
            candidate_id=candidate.id,
            language=candidate.language,
            status="PASSED",
            correctness=CorrectnessResult(status="PASSED", checked="interpreter", device="cpu"),
        )

    def close(self) -> None:
        pass


def cpu_engine() -> Engine:
    return Engine(device="cpu")


def timed_calls(backend: EvaluationBackend, task: Task, candidate: Candidate, n: int) -> list[float]:
    seconds = []
    for _ in range(n):
        t0 = time.perf_counter()
        placed = backend.evaluate(task, candidate)
        seconds.append(time.perf_counter() - t0)
        if placed.report.status != "PASSED":
            raise SystemExit(f"{backend.name}: evaluation came back {placed.report.status}")
    return seconds


def summary(seconds: list[float]) -> dict[str, Any]:
    return {
        "first_s": seconds[0],
        "steady_median_s": statistics.median(seconds[1:]) if len(seconds) > 1 else None,
        "calls": len(seconds),
    }


def measure(n: int, real_calls: int) -> dict[str, Any]:
    import ray

    task, seed = load_task("rmsnorm"), Candidate.from_path(SEED)
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="kr", dir="/tmp") as tmp:
        t0 = time.perf_counter()
        ray.init(
            num_cpus=2, include_dashboard=False, log_to_driver=False, _temp_dir=tmp, configure_logging=False
        )
        out["ray_init_s"] = time.perf_counter() - t0
        try:
            for name, make in (
                ("local", lambda f: LocalBackend([("cpu0", f())], owned=[])),
                ("ray", lambda f: RayBackend(1, device="cpu", evaluator_factory=f)),
            ):
                backend = make(InstantEvaluator)
                out[f"dispatch_{name}"] = summary(timed_calls(backend, task, seed, n))
                backend.close()
                engine_backend = make(cpu_engine)
                out[f"real_{name}"] = summary(timed_calls(engine_backend, task, seed, real_calls))
                engine_backend.close()
        finally:
            ray.shutdown()
    return out


def markdown(doc: dict[str, Any]) -> str:
    r = doc["results"]

    def ms(v: float | None) -> str:
        return "-" if v is None else f"{1000 * v:.1f}"

    return "\n".join(
        [
            "# Ray backend overhead against local (CPU)",
            "",
            f"{doc['machine']}; {doc['date']}; ray {doc['ray']}, python {doc['python']}. "
            f"Command: `{doc['command']}`. `ray.init(num_cpus=2)` took {r['ray_init_s']:.1f} s.",
            "",
            "| measurement | local first ms | local steady ms | ray first ms | ray steady ms | ray - local steady ms |",
            "|---|---|---|---|---|---|",
            *(
                f"| {label} | {ms(r[f'{k}_local']['first_s'])} | {ms(r[f'{k}_local']['steady_median_s'])} | "
                f"{ms(r[f'{k}_ray']['first_s'])} | {ms(r[f'{k}_ray']['steady_median_s'])} | "
                f"{ms((r[f'{k}_ray']['steady_median_s'] or 0) - (r[f'{k}_local']['steady_median_s'] or 0))} |"
                for k, label in (
                    ("dispatch", f"dispatch only ({r['dispatch_local']['calls']} calls, instant evaluator)"),
                    ("real", f"rmsnorm seed on the CPU engine ({r['real_local']['calls']} calls)"),
                )
            ),
            "",
            "First calls include starting the slot's evaluator (for Ray: the actor process, its imports and "
            "its engine). Steady: the median of the calls after the first.",
            "",
        ]
    )


def main() -> int:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "evals" / "results"
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 50
    out.mkdir(parents=True, exist_ok=True)
    results = measure(n, real_calls=3)
    doc = {
        "machine": f"{platform.machine()} CPU machine, {os.cpu_count()} cores",
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "ray": metadata.version("ray"),
        "python": platform.python_version(),
        "command": f"python evals/ray_overhead.py OUT {n}",
        "results": results,
    }
    (out / "ray_overhead.json").write_text(json.dumps(doc, indent=1))
    (out / "ray_overhead.md").write_text(markdown(doc))
    print(markdown(doc))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
