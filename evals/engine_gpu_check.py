"""Verify the evaluation engine on a GPU and record what it measured (issue: evaluation engine, §5).

One run does everything, side by side in one process tree:
- correctness of the bundled seeds (trimul: all 25 workloads; rmsnorm Triton and CUDA; softmax);
- profile in the flushed protocol (the PyTorch reference timed in the same worker) and, for trimul,
  once in GPUMode's protocol (events, no flush, mean);
- noise: the trimul seed profiled three times in one run;
- benchmarks: cold Triton compile of the trimul seed, NVRTC compile of the CUDA rmsnorm, wall time of
  ``ksearch eval trimul <seed>`` end to end;
- faults: a hanging kernel, an illegal memory access and a segfault, each followed by a good
  candidate, with the worker restart times.

Usage (on the GPU machine): ``python evals/engine_gpu_check.py OUTDIR``. Prints a table, writes
``OUTDIR/engine_gpu.json``.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from device_info import gpu_and_date  # noqa: E402

from ksearch_agent.candidate import Candidate  # noqa: E402
from ksearch_agent.engine import Engine  # noqa: E402
from ksearch_agent.nvrtc import compile_cuda  # noqa: E402
from ksearch_agent.task import load_task  # noqa: E402

SEEDS = ROOT / "tasks"
TESTS = ROOT / "tests" / "candidates"


def seed(task: str, name: str, **kw: Any) -> Candidate:
    return Candidate.from_path(SEEDS / task / "seeds" / name, **kw)


def main(out: Path) -> dict[str, Any]:
    out.mkdir(parents=True, exist_ok=True)
    os.environ["TRITON_CACHE_DIR"] = tempfile.mkdtemp(prefix="triton-cold-")
    record: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "python": platform.python_version(),
        "command": "python evals/engine_gpu_check.py $OUT",
    }
    try:
        import torch
        import triton

        record.update(torch=torch.__version__, triton=triton.__version__)
    except ImportError:
        pass
    try:
        import cuda.bindings
        import cuda.core

        record.update(cuda_bindings=cuda.bindings.__version__, cuda_core=cuda.core.__version__)
    except (ImportError, AttributeError):
        pass
    record["gpu"] = gpu_and_date()["gpu"]

    trimul, rms, soft = load_task("trimul"), load_task("rmsnorm"), load_task("softmax")
    cache = Path(tempfile.mkdtemp(prefix="ksearch-cache-"))
    with Engine(
        device="gpu", cache_dir=cache, workdir=Path(tempfile.mkdtemp(prefix="ksearch-work-"))
    ) as engine:
        record["device_name"] = engine.device_name
        record["worker_first_start_s"] = engine.worker("gpu").last_start_seconds

        t0 = time.perf_counter()
        comp = engine.compile(trimul, seed("trimul", "triton_simple.py"))
        record["bench_triton_compile_trimul_cold_s"] = time.perf_counter() - t0
        record["compile_worker_start_s"] = engine.worker("compile").last_start_seconds
        record["trimul_compile"] = comp.model_dump()
        t0 = time.perf_counter()
        comp_cuda = engine.compile(rms, seed("rmsnorm", "cuda_rowwise.py"))
        record["bench_nvrtc_compile_rmsnorm_tool_s"] = time.perf_counter() - t0
        record["rmsnorm_cuda_compile"] = comp_cuda.model_dump()
        src = (SEEDS / "rmsnorm" / "seeds" / "rmsnorm.cu").read_text()
        times = []
        for _ in range(5):
            t0 = time.perf_counter()
            compile_cuda(src + f"\n// {time.time_ns()}\n", name="rmsnorm.cu")
            times.append(time.perf_counter() - t0)
        record["bench_nvrtc_compile_rmsnorm_direct_s"] = {
            "first": times[0],
            "median": statistics.median(times),
        }

        evals: dict[str, Any] = {}
        for label, task, cand in (
            ("trimul_seed", trimul, seed("trimul", "triton_simple.py")),
            ("rmsnorm_triton", rms, seed("rmsnorm", "triton_rowwise.py")),
            ("rmsnorm_cuda", rms, seed("rmsnorm", "cuda_rowwise.py")),
            ("softmax_triton", soft, seed("softmax", "triton_rowwise.py")),
        ):
            t0 = time.perf_counter()
            rep = engine.evaluate(task, cand)
            evals[label] = {"seconds": time.perf_counter() - t0, **rep.model_dump()}
            print(f"{label}: {rep.status} in {time.perf_counter() - t0:.1f}s", flush=True)
        record["evaluations"] = evals

        gm = engine.profile(trimul, seed("trimul", "triton_simple.py"), protocol="gpumode")
        record["trimul_gpumode_protocol"] = gm.model_dump()
        gm_gpumode_api = engine.profile(trimul, seed("trimul", "triton_simple.py", api="gpumode"))
        record["trimul_seed_as_gpumode_submission"] = gm_gpumode_api.model_dump()

        record["ncu_trimul_seed"] = engine.profile(
            trimul, seed("trimul", "triton_simple.py"), ["bench03_n512_b1_d128_nomask_normal"], ncu=True
        ).counters
        record["ncu_rmsnorm_cuda"] = engine.profile(
            rms, seed("rmsnorm", "cuda_rowwise.py"), ["b4096"], ncu=True
        ).counters

        runs = [engine.profile(trimul, seed("trimul", "triton_simple.py")) for _ in range(3)]
        noise = [r.geomean_latency_ms for r in runs]
        ratios = [r.geomean_speedup for r in runs]
        record["noise_runs"] = [r.model_dump() for r in runs]
        record["noise_trimul_seed_geomean_ms"] = noise
        record["noise_spread"] = (max(noise) - min(noise)) / statistics.median(noise) if all(noise) else None
        record["noise_trimul_seed_speedup"] = ratios
        record["noise_speedup_spread"] = (
            (max(ratios) - min(ratios)) / statistics.median(ratios) if all(ratios) else None
        )
        gpu_bound = "bench06_n1024_b1_d384_nomask_normal"
        lat6 = [next(w.latency_ms for w in r.workloads if w.workload == gpu_bound) for r in runs]
        record["noise_gpu_bound_shape_ms"] = lat6
        record["noise_gpu_bound_spread"] = (max(lat6) - min(lat6)) / statistics.median(lat6)

        faults: dict[str, Any] = {}
        good = seed("rmsnorm", "triton_rowwise.py")
        for name in (
            "rmsnorm_hang.py",
            "rmsnorm_illegal_address.py",
            "rmsnorm_segfault.py",
            "rmsnorm_exit.py",
        ):
            w = engine.worker("gpu")
            starts = w.starts
            t0 = time.perf_counter()
            res = engine.run_correctness(rms, Candidate.from_path(TESTS / name), ["b64"], timeout=10)
            took = time.perf_counter() - t0
            after = engine.run_correctness(rms, good, ["b64"])
            faults[name] = {
                "status": res.status,
                "log": res.workloads[0].log[:600] if res.workloads else "",
                "seconds_to_status": took,
                "worker_restarted": engine.worker("gpu").starts > starts,
                "restart_seconds": engine.worker("gpu").last_start_seconds,
                "next_candidate_status": after.status,
            }
            print(
                f"fault {name}: {res.status}, next {after.status}, restart "
                f"{engine.worker('gpu').last_start_seconds:.1f}s",
                flush=True,
            )
        record["faults"] = faults

    t0 = time.perf_counter()
    cli = subprocess.run(
        [
            sys.executable,
            "-m",
            "ksearch_agent.cli",
            "eval",
            "trimul",
            str(SEEDS / "trimul" / "seeds" / "triton_simple.py"),
            "--json",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "KSEARCH_CACHE_DIR": str(cache)},
    )
    record["bench_ksearch_eval_trimul_wall_s"] = time.perf_counter() - t0
    record["ksearch_eval_trimul_exit_code"] = cli.returncode
    try:
        record["ksearch_eval_trimul_json"] = json.loads(cli.stdout)
    except json.JSONDecodeError:
        record["ksearch_eval_trimul_stdout"] = cli.stdout[-3000:]
        record["ksearch_eval_trimul_stderr"] = cli.stderr[-3000:]
    (out / "engine_gpu.json").write_text(json.dumps(record, indent=1, default=str))
    return record


def summary(record: dict[str, Any]) -> None:
    ev = record["evaluations"]
    print(
        f"\n{record.get('device_name')} | torch {record.get('torch')} | triton {record.get('triton')} | {record['date']}"
    )
    for label, e in ev.items():
        prof = e.get("profile") or {}
        print(
            f"{label:16s} {e['status']:10s} geomean latency {prof.get('geomean_latency_ms')} ms, "
            f"reference {prof.get('geomean_reference_ms')} ms, speedup {prof.get('geomean_speedup')}"
        )
        for w in prof.get("workloads", []):
            print(
                f"   {w['workload'][:40]:40s} {w['status']:8s} {w.get('latency_ms') or 0:9.4f} ms  ref "
                f"{w.get('reference_latency_ms') or 0:9.4f} ms  x{w.get('speedup') or 0:6.2f}  roofline "
                f"{100 * (w.get('roofline_fraction') or 0):5.1f}%"
            )
    gm = record["trimul_gpumode_protocol"]
    print(
        f"trimul GPUMode protocol: reference geomean {gm.get('geomean_reference_ms')} ms, seed {gm.get('geomean_latency_ms')} ms"
    )
    print(
        f"noise (3 profiles of the trimul seed): geomean ms {record['noise_trimul_seed_geomean_ms']} spread "
        f"{record['noise_spread']:.4f}; speedup {record['noise_trimul_seed_speedup']} spread "
        f"{record['noise_speedup_spread']:.4f}; {record['noise_gpu_bound_shape_ms']} spread "
        f"{record['noise_gpu_bound_spread']:.4f}"
    )
    print(
        f"cold Triton compile trimul seed: {record['bench_triton_compile_trimul_cold_s']:.2f}s; NVRTC rmsnorm "
        f"{record['bench_nvrtc_compile_rmsnorm_direct_s']}; ksearch eval trimul wall "
        f"{record['bench_ksearch_eval_trimul_wall_s']:.1f}s (exit {record['ksearch_eval_trimul_exit_code']})"
    )
    print(f"compile worker start {record['compile_worker_start_s']:.1f}s")
    for key in ("ncu_trimul_seed", "ncu_rmsnorm_cuda"):
        print(key, json.dumps(record[key])[:600])
    for name, f in record["faults"].items():
        print(
            f"fault {name}: {f['status']} after {f['seconds_to_status']:.1f}s, restart {f['restart_seconds']:.1f}s, "
            f"next {f['next_candidate_status']}"
        )


if __name__ == "__main__":
    rec = main(Path(sys.argv[1] if len(sys.argv) > 1 else "evals/results"))
    summary(rec)
