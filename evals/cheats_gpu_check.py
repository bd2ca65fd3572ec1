"""Cheats and faults on the GPU (candidate code is untrusted); writes ``OUTDIR/cheats_gpu.json``.

1. Every file in tests/cheats/ through ONE normal (screened) engine, in file order: a cheat that spoiled
   the judge would show in the verdicts after it. Correctness-phase cheats go through run_correctness,
   timing-phase ones (``phase=profile``) through evaluate. A good seed is evaluated last and must pass.
2. The dynamic defences alone (screen off) on cheats the screen would refuse first.
3. Faults (screen off): GPU hang, illegal address, segfault, os._exit, GPU out of memory, fork, 100 MB of
   output, each followed by a good candidate: the judge is not restarted; contestant start-up and wait.

Usage (GPU machine, package importable): ``python evals/cheats_gpu_check.py OUTDIR REPO_ROOT``.
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

_EXPECT = re.compile(
    r'"""expect: (?P<status>[A-Z_|]+)(?:\[(?P<rule>[\w-]+)\])?(?P<flags>(?: (?:phase=\w+|gpu-only))*)'
)
DYNAMIC = (
    "rmsnorm_03_side_stream.py",
    "rmsnorm_04_lazy_subclass.py",
    "rmsnorm_06_mutate_inputs.py",
    "trimul_03_side_stream.py",
    "trimul_06_mutate_inputs.py",
    "rmsnorm_05b_result_channel.py",
    "rmsnorm_11b_walk_objects.py",
    "rmsnorm_01_torch_fallback.py",
)
FAULTS = (
    "rmsnorm_hang.py",
    "rmsnorm_illegal_address.py",
    "rmsnorm_segfault.py",
    "rmsnorm_exit.py",
    "rmsnorm_oom.py",
    "rmsnorm_fork.py",
    "rmsnorm_print_100mb.py",
)


def expectation(path: Path) -> dict[str, Any]:
    m = _EXPECT.match(path.read_text())
    if m is None:
        return {"statuses": ["?"], "rule": None, "phase": "correctness"}
    flags = m.group("flags").split()
    phase = next((f.split("=", 1)[1] for f in flags if f.startswith("phase=")), "correctness")
    return {"statuses": m.group("status").split("|"), "rule": m.group("rule"), "phase": phase}


def _verdict(engine: Engine, path: Path, phase: str) -> tuple[str, list[str]]:
    task = load_task(path.stem.split("_")[0])
    cand = Candidate.from_path(path)
    if phase == "profile":
        report = engine.evaluate(task, cand)
        logs = [w.log for w in report.correctness.workloads if w.status != "PASSED"]
        if report.profile is not None:
            logs += [w.log for w in report.profile.workloads if w.status != "PASSED"]
        return report.status, report.correctness.rejections + logs
    res = engine.run_correctness(task, cand)
    return res.status, res.rejections + [w.log for w in res.workloads if w.status != "PASSED"]


def main(out: Path, repo: Path) -> dict[str, Any]:
    out.mkdir(parents=True, exist_ok=True)
    rec: dict[str, Any] = {**gpu_and_date(), "command": "python evals/cheats_gpu_check.py $OUT ."}
    good = Candidate.from_path(BUNDLED_TASKS_DIR / "rmsnorm" / "seeds" / "triton_rowwise.py")
    rms = load_task("rmsnorm")
    cache = Path(tempfile.mkdtemp())

    def save() -> None:  # after every verdict, so a run cut short by its time limit keeps what it measured
        (out / "cheats_gpu.json").write_text(json.dumps(rec, indent=1, default=str))

    with Engine(device="gpu", cache_dir=cache) as engine:
        rec["device_name"] = engine.device_name
        rows: list[dict[str, Any]] = []
        rec["cheats_screened"] = rows
        for path in sorted((repo / "tests" / "cheats").glob("*.py")):
            exp = expectation(path)
            t0 = time.perf_counter()
            status, reasons = _verdict(engine, path, exp["phase"])
            rule_ok = (
                exp["rule"] is None or status != "REJECTED" or any(f"[{exp['rule']}]" in r for r in reasons)
            )
            rows.append(
                {
                    "file": path.name,
                    "expected": exp["statuses"],
                    "rule": exp["rule"],
                    "phase": exp["phase"],
                    "status": status,
                    "caught": status != "PASSED",
                    "as_expected": status in exp["statuses"] and rule_ok,
                    # a traceback's cause is at its end
                    "reasons": [r if len(r) <= 600 else r[:200] + " ... " + r[-400:] for r in reasons[:2]],
                    "seconds": time.perf_counter() - t0,
                }
            )
            print(
                f"{path.name:44s} {status:20s} expected {'|'.join(exp['statuses'])}"
                + ("" if rows[-1]["as_expected"] else f"  {rows[-1]['reasons'][:1]}"),
                flush=True,
            )
            save()
        after = engine.evaluate(rms, good, ["b64", "b4096"])
        rec["good_after_all_cheats"] = {
            "status": after.status,
            "correctness": after.correctness.status,
            "speedup": after.profile.geomean_speedup if after.profile else None,
        }
        rec["judge_starts"] = engine.worker("gpu").starts
    with Engine(device="gpu", cache_dir=cache, screening=False) as engine:
        dyn: list[dict[str, Any]] = []
        rec["cheats_dynamic_only"] = dyn
        for name in DYNAMIC:
            path = repo / "tests" / "cheats" / name
            if not path.is_file():
                continue
            res = engine.run_correctness(load_task(name.split("_")[0]), Candidate.from_path(path))
            dyn.append(
                {
                    "file": name,
                    "status": res.status,
                    "log": next((w.log[:300] for w in res.workloads if w.status != "PASSED"), ""),
                }
            )
            print(f"dynamic {name:36s} {res.status}", flush=True)
            save()
        faults: list[dict[str, Any]] = []
        rec["faults"] = faults
        for name in FAULTS:
            starts = engine.worker("gpu").starts
            t0 = time.perf_counter()
            res = engine.run_correctness(
                rms, Candidate.from_path(repo / "tests" / "candidates" / name), ["b64"], timeout=10
            )
            took = time.perf_counter() - t0
            t1 = time.perf_counter()
            nxt = engine.run_correctness(rms, good, ["b64"])
            faults.append(
                {
                    "file": name,
                    "status": res.status,
                    "seconds_to_status": took,
                    "judge_restarted": engine.worker("gpu").starts > starts,
                    "next_candidate": nxt.status,
                    "next_seconds": time.perf_counter() - t1,
                    "contestant": dict(engine.last_contestant),
                    "log": res.workloads[0].log[:300] if res.workloads else "",
                }
            )
            print(
                f"fault {name:32s} {res.status:15s} next {nxt.status} judge restarted "
                f"{faults[-1]['judge_restarted']} contestant {engine.last_contestant}",
                flush=True,
            )
            save()
    save()
    return rec


if __name__ == "__main__":
    r = main(Path(sys.argv[1]), Path(sys.argv[2] if len(sys.argv) > 2 else "."))
    caught = sum(x["caught"] for x in r["cheats_screened"])
    print(
        f"\ncheats caught {caught}/{len(r['cheats_screened'])}; as expected "
        f"{sum(x['as_expected'] for x in r['cheats_screened'])}; good seed after them: {r['good_after_all_cheats']}"
    )
    print(f"faults survived {sum(f['next_candidate'] == 'PASSED' for f in r['faults'])}/{len(r['faults'])}")
