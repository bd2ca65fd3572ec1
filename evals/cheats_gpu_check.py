"""Cheats and faults on the GPU (issue: candidate code is untrusted); writes ``OUTDIR/cheats_gpu.json``.

1. Every file in tests/cheats/ through the normal (screened) engine: caught or not, status, reason.
2. The dynamic defences alone (screen off): side stream, lazy subclass, mutated inputs, shape cache,
   fork — so what the static screen would have refused is shown to be caught at run time too.
3. Faults (screen off where the screen would refuse first): GPU hang, illegal address, segfault, os._exit,
   GPU out of memory, fork, 100 MB of output — each followed by a good candidate; restart times.

Usage (GPU machine, package installed): ``python evals/cheats_gpu_check.py OUTDIR REPO_ROOT``.
"""

from __future__ import annotations

import json
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from device_info import gpu_and_date

from ksearch_agent.candidate import Candidate
from ksearch_agent.engine import Engine
from ksearch_agent.task import BUNDLED_TASKS_DIR, load_task


def expectation(path: Path) -> tuple[str, str | None]:
    m = re.match(r'"""expect: (\w+)(?:\[([\w-]+)\])?', path.read_text())
    return (m.group(1), m.group(2)) if m else ("?", None)


def main(out: Path, repo: Path) -> dict[str, Any]:
    out.mkdir(parents=True, exist_ok=True)
    rec: dict[str, Any] = {**gpu_and_date(), "command": "python evals/cheats_gpu_check.py $OUT ."}
    good = Candidate.from_path(BUNDLED_TASKS_DIR / "rmsnorm" / "seeds" / "triton_rowwise.py")
    rms = load_task("rmsnorm")
    cache = Path(tempfile.mkdtemp())
    with Engine(device="gpu", cache_dir=cache) as engine:
        rec["device_name"] = engine.device_name
        rows = []
        for path in sorted((repo / "tests" / "cheats").glob("*.py")):
            status, rule = expectation(path)
            task = load_task(path.stem.split("_")[0])
            t0 = time.perf_counter()
            res = engine.run_correctness(task, Candidate.from_path(path))
            reasons = res.rejections or [w.log[:300] for w in res.workloads if w.status != "PASSED"][:2]
            caught = res.status != "PASSED"
            rows.append({"file": path.name, "expected": status, "rule": rule, "status": res.status, "caught": caught,
                         "as_expected": res.status == status, "reasons": reasons,
                         "seconds": time.perf_counter() - t0})
            print(f"{path.name:42s} {res.status:20s} caught={caught}", flush=True)
        rec["cheats_screened"] = rows
    with Engine(device="gpu", cache_dir=cache, screening=False) as engine:
        dyn = []
        for name in ("rmsnorm_03_side_stream.py", "rmsnorm_04_lazy_subclass.py", "rmsnorm_06_mutate_inputs.py",
                     "rmsnorm_02_cache_by_shape.py", "trimul_03_side_stream.py", "trimul_06_mutate_inputs.py"):
            path = repo / "tests" / "cheats" / name
            res = engine.run_correctness(load_task(name.split("_")[0]), Candidate.from_path(path))
            dyn.append({"file": name, "status": res.status,
                        "log": next((w.log[:300] for w in res.workloads if w.status != "PASSED"), "")})
            print(f"dynamic {name:36s} {res.status}", flush=True)
        rec["cheats_dynamic_only"] = dyn
        faults = []
        for name in ("rmsnorm_hang.py", "rmsnorm_illegal_address.py", "rmsnorm_segfault.py", "rmsnorm_exit.py",
                     "rmsnorm_oom.py", "rmsnorm_fork.py", "rmsnorm_print_100mb.py"):
            w = engine.worker("gpu")
            starts = w.starts
            t0 = time.perf_counter()
            res = engine.run_correctness(rms, Candidate.from_path(repo / "tests" / "candidates" / name), ["b64"],
                                         timeout=10)
            took = time.perf_counter() - t0
            t1 = time.perf_counter()
            after = engine.run_correctness(rms, good, ["b64"])
            faults.append({"file": name, "status": res.status, "seconds_to_status": took,
                           "worker_replaced": engine.worker("gpu").starts > starts,
                           "restart_seconds": engine.worker("gpu").last_start_seconds if engine.worker("gpu").starts > starts else None,
                           "next_candidate": after.status, "next_seconds": time.perf_counter() - t1,
                           "log": res.workloads[0].log[:300] if res.workloads else ""})
            print(f"fault {name:32s} {res.status:15s} next {after.status} restart "
                  f"{faults[-1]['restart_seconds']}", flush=True)
        rec["faults"] = faults
    (out / "cheats_gpu.json").write_text(json.dumps(rec, indent=1, default=str))
    return rec


if __name__ == "__main__":
    r = main(Path(sys.argv[1]), Path(sys.argv[2] if len(sys.argv) > 2 else "."))
    caught = sum(x["caught"] for x in r["cheats_screened"])
    print(f"\ncheats caught {caught}/{len(r['cheats_screened'])}; as expected "
          f"{sum(x['as_expected'] for x in r['cheats_screened'])}")
    print(f"faults survived {sum(f['next_candidate'] == 'PASSED' for f in r['faults'])}/{len(r['faults'])}")
