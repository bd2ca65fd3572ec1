"""FlashInfer-Bench tasks on the GPU: each bundled task's seed against the FlashInfer library (issue 17).

For every task: correctness on its correctness workloads (the CPU subset and K-Search's feedback workloads),
then the flushed-protocol profile on the feedback workloads with the library opponent timed by the same
judge in the same run, interleaved call by call with the candidate and the reference: the library's call
alone with plan() outside the timer (the fair figure, used for the score) and plan() + call (FIB 0.1 style).
Each workload's fraction of the HBM floor (bytes / measured copy bandwidth) is recorded for the candidate
and for the library.

Usage (GPU machine, flashinfer importable): ``python evals/fib_gpu.py [--tasks a,b] [--out DIR] [--name NAME]
[--repeat N] [--variants '{"TASK": [{"KNOB": value}]}'] [--hot] [--launch-overlap-us 200,500]
[--launch-gate-us 0,500]``. ``--repeat`` evaluates each seed N times in the one engine (the judge's run-to-run spread), ``--variants`` also the seed with
those knobs set, ``--launch-overlap-us`` each of them at each of these launch overlaps in turn (the tasks' own
value otherwise), ``--launch-gate-us`` each at each of these launch gate caps in turn (0: the spin; see
:mod:`ksearch_agent.worker.gate`), ``--hot`` adds
a profile in the hot protocol (no L2 flush, the same inputs each call: the regime of FlashInfer's own
benchmarks) beside the flushed one. Writes OUT/NAME.json and OUT/NAME.md (NAME: fib_gpu unless --name).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "evals"))

from device_info import gpu_and_date  # noqa: E402

from ksearch_agent.candidate import Candidate  # noqa: E402
from ksearch_agent.engine import Engine  # noqa: E402
from ksearch_agent.knobs import render  # noqa: E402
from ksearch_agent.task import load_task  # noqa: E402

SEEDS = {
    "gqa_paged_decode_h32_kv4_d128_ps1": "triton_split_kv.py",
    "mla_paged_decode_h16_ckv512_kpe64_ps1": "triton_split_kv.py",
    "mla_paged_prefill_causal_h16_ckv512_kpe64_ps1": "triton_split_kv.py",
    "moe_fp8_block_scale_ds_routing_topk8_ng8_kg4_e32_h7168_i2048": "triton_gemv.py",
}


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def reference_check(task: Any) -> dict[str, Any]:
    """Our reference against FIB's own reference code (fib_definition.json) on the smallest benchmark
    workload, on the GPU (run in this process: both are trusted task code)."""
    import types

    import torch

    from ksearch_agent.worker.compare import check_output
    from ksearch_agent.worker.inputs import make_inputs
    from ksearch_agent.worker.loader import load_module, with_scalars

    wl = min(task.select(role="benchmark"), key=task.bytes)
    resolved, spec = task.resolve(wl), task.worker_spec()
    fib = types.ModuleType("fib_reference")
    exec(json.loads((task.directory / "fib_definition.json").read_text())["reference"], fib.__dict__)  # noqa: S102
    inputs = make_inputs(resolved["inputs"], 5, torch.device("cuda", 0))
    ours = with_scalars(load_module(task.reference_path, "ours").run, spec, resolved["axes"])(*inputs)
    theirs = with_scalars(fib.run, spec, resolved["axes"])(*inputs)
    ours, theirs = (
        (ours if isinstance(ours, tuple) else (ours,)),
        (theirs if isinstance(theirs, tuple) else (theirs,)),
    )
    results = [
        check_output(n, o, t, spec["tolerance"])
        for n, o, t in zip(spec["output_names"], ours, theirs, strict=True)
    ]
    del inputs
    torch.cuda.empty_cache()
    return {
        "workload": wl.id,
        "status": "PASSED" if all(r["status"] == "PASSED" for r in results) else "MISMATCH",
        "max_abs_error": max(r.get("max_abs_error", 0.0) for r in results),
        "log": "; ".join(r.get("log", "") for r in results if r.get("log"))[:500],
    }


def evaluate_task(
    engine: Engine,
    name: str,
    path: Path | None = None,
    hot: bool = False,
    overlap_us: float | None = None,
    gate_us: float | None = None,
) -> dict[str, Any]:
    """The task's seed (or the kernel at ``path``) against the library, through the engine; with ``hot``, a
    second profile in the hot protocol (no L2 flush, the same inputs each call) adds the hot figures;
    ``overlap_us`` and ``gate_us`` replace the task's launch overlap and launch gate."""
    task = load_task(ROOT / "tasks" / name)
    timing = {
        k: v for k, v in (("launch_overlap_us", overlap_us), ("launch_gate_us", gate_us)) if v is not None
    }
    if timing:
        task = task.model_copy(update={"definition": task.definition.model_copy(update=timing)})
    path = path or ROOT / "tasks" / name / "seeds" / SEEDS[name]
    seed = Candidate.from_path(path)
    try:
        ref_check: dict[str, Any] = reference_check(task)
    except Exception as exc:  # noqa: BLE001 - reported, the evaluation goes on
        ref_check = {"status": "ERROR", "log": f"{type(exc).__name__}: {exc}"[:500]}
    t0 = time.perf_counter()
    report = engine.evaluate(task, seed)
    prof = report.profile
    rows = []
    timing = {w.workload: w for w in (prof.workloads if prof else [])}
    hot_timing: dict[str, Any] = {}
    if hot and report.status == "PASSED":
        hot_prof = engine.profile(task, seed, protocol="hot")
        hot_timing = {w.workload: w for w in hot_prof.workloads}
    for wl in task.select(role="benchmark"):
        t = timing.get(wl.id)
        floor = t.floor_ms if t else None
        rows.append(
            {
                "workload": wl.id,
                "axes": wl.axes,
                "status": t.status if t else "not timed",
                "candidate_ms": t.latency_ms if t else None,
                "library_ms": t.library_latency_ms if t else None,
                "library_plan_ms": t.library_plan_latency_ms if t else None,
                "candidate_iqr_ms": t.iqr_ms if t else None,
                "library_iqr_ms": t.library_iqr_ms if t else None,
                "candidate_calls": t.timed_calls.get("candidate") if t else None,
                "reference_ms": t.reference_latency_ms if t else None,
                "floor_ms": floor,
                "candidate_floor_fraction": t.roofline_fraction if t else None,
                "library_floor_fraction": (floor / t.library_latency_ms)
                if t and floor and t.library_latency_ms
                else None,
                "library_status": t.library_status if t else None,
                "candidate_hot_ms": h.latency_ms if (h := hot_timing.get(wl.id)) else None,
                "library_hot_ms": h.library_latency_ms if h else None,
                "log": ((t.log or t.library_log) if t else "")[:500],
            }
        )
    return {
        "task": name,
        "seed": str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else path.name,
        "status": report.status,
        "reference_vs_fib_reference": ref_check,
        "correctness": [
            {"workload": w.workload, "status": w.status, "max_abs_error": w.max_abs_error, "log": w.log[:300]}
            for w in report.correctness.workloads
        ],
        "score": prof.library_score if prof else None,
        "score_with_plan": prof.library_score_with_plan if prof else None,
        "opponent": prof.opponent if prof else None,
        "copy_gbps": (prof.ceilings or {}).get("copy_gbps") if prof else None,
        "workloads": rows,
        "seconds": time.perf_counter() - t0,
    }


def _f(v: float | None, spec: str) -> str:
    return "—" if v is None else format(v, spec)


def _overlap(us: float | None, gate_us: float | None = None) -> str:
    text = "" if us is None else f" · launch overlap {us:g} µs"
    return text + ("" if gate_us is None else f" · launch gate {gate_us:g} µs")


def markdown(doc: dict[str, Any]) -> str:
    lines = [
        "# FlashInfer-Bench tasks vs the FlashInfer library (issue 17)",
        "",
        f"{doc['device']['gpu']} · {doc['device']['date']} · torch {doc['versions']['torch']} · "
        f"triton {doc['versions']['triton']} · flashinfer-python {doc['versions']['flashinfer-python']}",
        "",
        f"Command: `{doc['command']}`",
        "",
        "Flushed protocol (L2 flushed before every timed call, fresh inputs and page tables each call), median. "
        "Library = FlashInfer with plan() outside the timer (the score's figure); lib+plan = plan() and run() "
        "timed together (how FlashInfer-Bench 0.1 and K-Search's paper timed it). Score = 100 × mean(library / "
        "candidate), 0 unless every workload passed. Floor = bytes moved / measured copy bandwidth.",
        "",
    ]
    for t in doc["tasks"]:
        lines += [
            f"## {t['task']} — {t['seed']}{' ' + json.dumps(t['knobs']) if t.get('knobs') else ''}"
            f"{_overlap(t.get('launch_overlap_us'), t.get('launch_gate_us'))}: {t['status']}",
            "",
            f"score {_f(t['score'], '.1f')} (plan outside) · {_f(t['score_with_plan'], '.1f')} (plan inside) · "
            f"opponent {json.dumps(t['opponent'])} · copy bandwidth {_f(t['copy_gbps'], '.0f')} GB/s",
            "",
            f"our reference vs FIB's reference code: {json.dumps(t['reference_vs_fib_reference'])}",
            "",
            "| workload | axes | status | candidate ms | library ms | lib+plan ms | reference ms | floor ms "
            "| cand. % floor | lib. % floor | IQR cand. / lib. ms | timed calls | hot cand. / lib. ms |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for r in t["workloads"]:
            axes = ", ".join(f"{k}={v}" for k, v in r["axes"].items())
            cf, lf = r["candidate_floor_fraction"], r["library_floor_fraction"]
            lines.append(
                f"| {r['workload'][:8]} | {axes} | {r['status']} | {_f(r['candidate_ms'], '.4f')} | "
                f"{_f(r['library_ms'], '.4f')} | {_f(r['library_plan_ms'], '.4f')} | {_f(r['reference_ms'], '.3f')} | "
                f"{_f(r['floor_ms'], '.4f')} | {_f(cf and 100 * cf, '.0f')} | {_f(lf and 100 * lf, '.0f')} | "
                f"{_f(r.get('candidate_iqr_ms'), '.4f')} / {_f(r.get('library_iqr_ms'), '.4f')} | "
                f"{_f(r.get('candidate_calls'), 'd')} | "
                f"{_f(r.get('candidate_hot_ms'), '.4f')} / {_f(r.get('library_hot_ms'), '.4f')} |"
            )
        bad = [c for c in t["correctness"] if c["status"] != "PASSED"]
        lines += [""] + [f"- correctness {c['workload']}: {c['status']} {c['log']}" for c in bad]
        lines += [f"- {r['workload']}: {r['log']}" for r in t["workloads"] if r["log"]] + [""]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", default=",".join(SEEDS))
    parser.add_argument("--out", default=str(ROOT / "evals" / "results"))
    parser.add_argument("--name", default="fib_gpu", help="basename of the .json/.md written under --out")
    parser.add_argument("--hot", action="store_true", help="also profile in the hot protocol (no L2 flush)")
    parser.add_argument(
        "--repeat", type=int, default=1, help="evaluate each seed this many times (run-to-run spread)"
    )
    parser.add_argument(
        "--variants",
        default="{}",
        help='JSON {"TASK": [{"KNOB": value, ...}, ...]}: also the seed with each set of knobs, through the judge',
    )
    parser.add_argument(
        "--launch-overlap-us",
        default="",
        help="comma-separated launch overlaps (µs): every evaluation at each in turn, instead of the task's own",
    )
    parser.add_argument(
        "--launch-gate-us",
        default="",
        help="comma-separated launch gate caps (µs, 0: the spin): every evaluation at each in turn, instead of "
        "the task's own",
    )
    parser.add_argument(
        "--workdir",
        default=None,
        help="keep the engine's folder here (worker logs; with KSEARCH_JUDGE_TRACE=1 the judge's per-call lines)",
    )
    args = parser.parse_args()
    variants: dict[str, list[dict[str, Any]]] = json.loads(args.variants)
    overlaps: list[float | None] = [float(v) for v in args.launch_overlap_us.split(",") if v] or [None]
    gates: list[float | None] = [float(v) for v in args.launch_gate_us.split(",") if v] or [None]
    os.environ.setdefault("FLASHINFER_WORKSPACE_BASE", "/tmp/flashinfer-ws")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    doc: dict[str, Any] = {
        "device": gpu_and_date(),
        "versions": {d: _version(d) for d in ("torch", "triton", "flashinfer-python")},
        "command": " ".join(["python", *sys.argv]),
        "tasks": [],
    }
    with Engine(device="gpu", workdir=Path(args.workdir) if args.workdir else None) as engine:
        jobs: list[tuple[str, dict[str, Any] | None, float | None, float | None]] = []
        for name in [t for t in args.tasks.split(",") if t]:
            for knobs in [None] * args.repeat + list(variants.get(name, [])):
                jobs += [(name, knobs, us, gate) for us in overlaps for gate in gates]
        for i, (name, knobs, overlap_us, gate_us) in enumerate(jobs):
            at = _overlap(overlap_us, gate_us)
            print(f"== {name} {json.dumps(knobs) if knobs else 'seed'}{at}", flush=True)
            path = None
            if knobs:
                seed = ROOT / "tasks" / name / "seeds" / SEEDS[name]
                path = out / f"{name}_variant{i}.py"
                path.write_text(render(seed.read_text(), knobs))
            try:
                result = evaluate_task(
                    engine, name, path, hot=args.hot, overlap_us=overlap_us, gate_us=gate_us
                )
                doc["tasks"].append(
                    {**result, "knobs": knobs, "launch_overlap_us": overlap_us, "launch_gate_us": gate_us}
                )
            except Exception as exc:  # noqa: BLE001 - one task's failure must not lose the others' results
                doc["tasks"].append({"task": name, "error": f"{type(exc).__name__}: {exc}", "workloads": []})
            (out / f"{args.name}.json").write_text(json.dumps(doc, indent=1))
    ok = [t for t in doc["tasks"] if "error" not in t]
    (out / f"{args.name}.md").write_text(markdown({**doc, "tasks": ok}))
    for t in doc["tasks"]:
        print(
            t["task"],
            t.get("status", t.get("error")),
            "score",
            t.get("score"),
            "with plan",
            t.get("score_with_plan"),
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
