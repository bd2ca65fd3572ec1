"""What a CPU evaluation costs on this machine, and what a CPU contestant's start-up spends on poisoning.

Two measurements in one run:

1. Fresh interpreters, alternated ``--starts`` times each: import torch and triton, then turn on the poisoned
   allocations the way the CPU contestant does (``poison_cpu_allocations``) against the public
   ``torch.use_deterministic_algorithms`` call it replaced (which imports ``torch._inductor``).
2. ``--evals`` correctness checks of the softmax seed through one CPU engine (the first one starts the judge),
   with the contestant's own start-up as the judge reports it.

Usage: ``python evals/cpu_eval_cost.py [--starts 6] [--evals 8]``; prints a table and writes
``evals/results/cpu_eval_cost.json``. CPU only: no GPU figure comes from this script.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PRELUDE = "import torch, triton\n"
WAYS = {
    "poison_cpu_allocations (torch._C setter)": PRELUDE
    + "from ksearch_agent.worker.interpreter import poison_cpu_allocations\npoison_cpu_allocations(True)\n",
    "torch.use_deterministic_algorithms": PRELUDE
    + "torch.use_deterministic_algorithms(True, warn_only=True)\n",
    "import torch, triton only": PRELUDE,
}


def start_seconds(code: str) -> float:
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, "-c", code], check=True, cwd=ROOT, env={**os.environ, "TRITON_INTERPRET": "1"}
    )
    return time.perf_counter() - t0


def eval_seconds(n: int) -> tuple[list[float], list[float]]:
    from ksearch_agent.candidate import Candidate
    from ksearch_agent.engine import Engine
    from ksearch_agent.task import BUNDLED_TASKS_DIR, load_task

    task = load_task("softmax")
    cand = Candidate.from_path(BUNDLED_TASKS_DIR / "softmax" / "seeds" / "triton_rowwise.py")
    walls, starts = [], []
    with (
        tempfile.TemporaryDirectory() as tmp,
        Engine(device="cpu", workdir=Path(tmp) / "w", cache_dir=Path(tmp) / "c") as engine,
    ):
        for _ in range(n):
            t0 = time.perf_counter()
            res = engine.run_correctness(task, cand, ["b1"])
            walls.append(time.perf_counter() - t0)
            assert res.status == "PASSED", res
            starts.append(float((engine.last_contestant or {}).get("start_seconds", float("nan"))))
    return walls, starts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--starts", type=int, default=6, help="fresh interpreters per way, alternated")
    ap.add_argument("--evals", type=int, default=8, help="correctness checks through one CPU engine")
    args = ap.parse_args()
    times: dict[str, list[float]] = {name: [] for name in WAYS}
    for _ in range(args.starts):
        for name, code in WAYS.items():
            times[name].append(start_seconds(code))
    walls, starts = eval_seconds(args.evals)
    rec = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
        "command": "python evals/cpu_eval_cost.py " + " ".join(sys.argv[1:]),
        "fresh_interpreter_seconds": {
            k: {"median": statistics.median(v), "all": v} for k, v in times.items()
        },
        "evaluation_seconds": {
            "first": walls[0],
            "median_after_first": statistics.median(walls[1:]),
            "all": walls,
        },
        "contestant_start_seconds": {"median": statistics.median(starts), "all": starts},
    }
    out = ROOT / "evals" / "results" / "cpu_eval_cost.json"
    out.write_text(json.dumps(rec, indent=2) + "\n")
    print(f"{rec['machine']}; {rec['date']}")
    print(f"{'fresh interpreter':<45} {'median s':>9}")
    for k, v in rec["fresh_interpreter_seconds"].items():
        print(f"{k:<45} {v['median']:>9.2f}")
    ev = rec["evaluation_seconds"]
    print(
        f"correctness check (softmax seed, 1 workload): first {ev['first']:.2f} s, "
        f"then median {ev['median_after_first']:.2f} s; contestant start-up median "
        f"{rec['contestant_start_seconds']['median']:.2f} s"
    )
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
