"""K-Search on the FlashInfer-Bench tasks on the GPU, scored against the FlashInfer library (issue 17).

For each task: ``ksearch run TASK --rounds R --device gpu`` with the playbook policy (no model), every
candidate's library score as the run recorded it, then the run's best kernel (exported with ``ksearch
export``) and the task's seed each evaluated through one engine with the library opponent, as
evals/fib_gpu.py does: per-workload candidate, library (plan() outside and inside the timer) and reference
times, and each workload's fraction of the HBM floor.

Usage (GPU machine, package installed, flashinfer importable):
``python evals/fib_search_gpu.py OUTDIR TASK[,TASK...] [--rounds 3] [--max-attempts 2] [--confirm-top 0]
[--search-seconds S] [--launch-gate-us US] [--device cpu]``; writes OUTDIR/fib_search_gpu.{json,md} (``--device cpu``: a dry run of the same steps on the
CPU subset, without timing; ``--launch-gate-us``: the search and the evaluations after it use a copy of the task
with that launch gate, so a gated search needs no edit of the bundled task). ``python evals/fib_search_gpu.py --report OUTDIR/fib_search_gpu.json`` prints
the markdown again from the JSON (for a call cut short before it was written). A search evaluates up to rounds x max-attempts candidates, ~30 s each for GQA
decode and ~60 s for MLA decode on the H200 (library and reference timed beside each).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "evals"))

from device_info import gpu_and_date  # noqa: E402
from fib_gpu import _f, _version, evaluate_task, markdown  # noqa: E402

from ksearch_agent.engine import Engine  # noqa: E402
from ksearch_agent.knobs import read_knobs  # noqa: E402
from ksearch_agent.store import RunStore  # noqa: E402


def _title(node: dict[str, Any] | None) -> str:
    """The world-model node's action title (its decision when it has no action), as the run last stored it."""
    if not node:
        return ""
    return str((node.get("action") or {}).get("title") or node.get("decision", ""))[:80]


@functools.cache
def _seed_knobs(task: str) -> tuple[dict[str, Any], ...]:
    """Each of the task's seeds' knobs (read once per task, not per candidate)."""
    return tuple(
        read_knobs(seed.read_text()) for seed in sorted((ROOT / "tasks" / task / "seeds").glob("*.py"))
    )


def knob_changes(source: str, task: str) -> str:
    """The candidate's knobs that differ from the task's seed with the same knobs ("—" when no seed matches)."""
    try:
        mine = read_knobs(source)
    except SyntaxError:
        return "—"
    for base in _seed_knobs(task):
        if base and base.keys() == mine.keys():
            return " ".join(f"{k}={v}" for k, v in mine.items() if base[k] != v) or "none"
    return "—"


def task_source(task: str, gate_us: float | None, out: Path) -> str:
    """What ``ksearch run`` is given: the bundled task's name, or with ``gate_us`` a copy of its directory under
    ``out`` whose definition sets that launch gate (the copy keeps the task's name, so its run is found as usual)."""
    if gate_us is None:
        return task
    copy = out / "tasks" / task
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(ROOT / "tasks" / task, copy)
    definition = json.loads((copy / "definition.json").read_text())
    (copy / "definition.json").write_text(
        json.dumps({**definition, "launch_gate_us": gate_us}, indent=1) + "\n"
    )
    return str(copy)


def search(
    task: str, args: argparse.Namespace, runs_root: Path, env: dict[str, str], out: Path
) -> dict[str, Any]:
    """One playbook search; its candidates with the library score each evaluation recorded. A search still
    running after ``--search-seconds`` is stopped (its process group killed); what its run store holds by
    then is kept and scored, so a device call that runs out of time loses nothing measured."""
    t0 = time.perf_counter()
    log_path = out / f"{task}_search.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "ksearch_agent.cli", "run", task_source(task, args.launch_gate_us, out)]
            + ["--rounds", str(args.rounds)]
            + ["--max-attempts", str(args.max_attempts), "--confirm-top", str(args.confirm_top)]
            + ["--device", args.device, "--runs-root", str(runs_root)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
        stopped = False
        try:
            proc.wait(timeout=args.search_seconds)
        except subprocess.TimeoutExpired:
            stopped = True
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    seconds = time.perf_counter() - t0
    text = log_path.read_text(errors="replace")
    print(text[-3000:], flush=True)
    record: dict[str, Any] = {
        "exit": proc.returncode,
        "seconds": seconds,
        "stopped_after_s": args.search_seconds if stopped else None,
        "log_tail": text[-3000:],
    }
    found = sorted(runs_root.glob(f"{task}-*"))
    if not found:
        return {**record, "candidates": []}
    store = RunStore(found[-1])
    snapshots = store.snapshots()
    nodes = snapshots[-1]["world_model"].get("nodes", {}) if snapshots else {}
    rows = []
    for row in store.candidates():
        evaluation = store.get_evaluation(row["id"])
        prof = evaluation.profile if evaluation else None
        cand = store.load_candidate(row["id"])
        rows.append(
            {
                **row,
                "knobs": knob_changes(cand.files[cand.entry], task),
                "library_score": prof.library_score if prof else None,
                "library_score_with_plan": prof.library_score_with_plan if prof else None,
                "action_title": _title(nodes.get(row["action_node"])),
            }
        )
    best = store.best_candidate()
    store.close()
    record.update(run_dir=str(found[-1]), candidates=rows, best=best)
    if best is not None:
        path = out / f"{task}_best.py"
        exp = subprocess.run(
            [sys.executable, "-m", "ksearch_agent.cli", "export", str(found[-1]), str(path)],
            capture_output=True,
            text=True,
            env=env,
        )
        record["export"] = {"exit": exp.returncode, "path": str(path), "stderr": exp.stderr[-500:]}
    return record


def report(doc: dict[str, Any]) -> str:
    """The markdown summary of a ``fib_search_gpu.json``: the evaluated kernels' tables, then each search's
    candidates with the score its run recorded (a search cut short by a device call's limit has no tables)."""
    lines = [markdown({**doc, "tasks": [t for t in doc["tasks"] if "error" not in t]})]
    lines.append("## The searches (score per candidate as the run recorded it)\n")
    for task, s in doc["searches"].items():
        stop = f", stopped after {s['stopped_after_s']:.0f} s" if s.get("stopped_after_s") else ""
        lines.append(f"### {task}: exit {s['exit']}, {s['seconds']:.0f} s{stop}\n")
        lines.append(
            "| round | action | origin | knobs changed from the seed | status | x reference | score | score with plan |"
        )
        lines.append("|---|---|---|---|---|---|---|---|")
        for c in s["candidates"]:
            lines.append(
                f"| {c['round']} | {c['action_node']} {c.get('action_title', '')} | {c['origin']} | "
                f"{c.get('knobs', '—')} | {c['status']} | "
                f"{_f(c['geomean_speedup'], '.2f')} | {_f(c['library_score'], '.1f')} | "
                f"{_f(c['library_score_with_plan'], '.1f')} |"
            )
        lines.append("")
    return "\n".join(lines) + "\n"


def main() -> int:
    if len(sys.argv) == 3 and sys.argv[1] == "--report":
        print(report(json.loads(Path(sys.argv[2]).read_text())), end="")
        return 0
    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=Path)
    parser.add_argument("tasks", help="comma-separated task names")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--max-attempts", type=int, default=2)
    parser.add_argument("--confirm-top", type=int, default=0)
    parser.add_argument(
        "--search-seconds",
        type=float,
        default=None,
        help="stop each search after this long and keep its results",
    )
    parser.add_argument(
        "--launch-gate-us",
        type=float,
        default=None,
        help="search and evaluate with this launch gate (µs) in place of the task's own setting",
    )
    parser.add_argument("--device", default="gpu", help="cpu: a dry run of the same steps, without timing")
    args = parser.parse_args()
    out, tasks, device = args.out, [t for t in args.tasks.split(",") if t], args.device
    out.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("FLASHINFER_WORKSPACE_BASE", "/tmp/flashinfer-ws")
    runs_root = Path(tempfile.mkdtemp(prefix="ksearch-runs-"))
    env = {**os.environ}
    env.pop("KSEARCH_MODEL", None)
    doc: dict[str, Any] = {
        "device": gpu_and_date() if device == "gpu" else {"gpu": "none (CPU dry run)", "date": time.ctime()},
        "versions": {d: _version(d) for d in ("torch", "triton", "flashinfer-python")},
        "command": "python evals/fib_search_gpu.py " + " ".join(sys.argv[1:]),
        "searches": {},
        "tasks": [],
    }
    for task in tasks:
        print(f"== search {task}", flush=True)
        doc["searches"][task] = search(task, args, runs_root, env, out)
        (out / "fib_search_gpu.json").write_text(json.dumps(doc, indent=1, default=str))
    with Engine(device=device) as engine:
        for task in tasks:
            exported = doc["searches"][task].get("export", {})
            for path in [None] + ([Path(exported["path"])] if exported.get("exit") == 0 else []):
                try:
                    doc["tasks"].append(evaluate_task(engine, task, path, gate_us=args.launch_gate_us))
                except Exception as exc:  # noqa: BLE001 - one failure must not lose the other results
                    doc["tasks"].append(
                        {"task": task, "error": f"{type(exc).__name__}: {exc}", "workloads": []}
                    )
                (out / "fib_search_gpu.json").write_text(json.dumps(doc, indent=1, default=str))
    (out / "fib_search_gpu.md").write_text(report(doc))
    for t in doc["tasks"]:
        print(t["task"], t.get("seed"), t.get("status", t.get("error")), "score", t.get("score"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
