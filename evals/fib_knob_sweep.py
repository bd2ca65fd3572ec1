"""A quick look at where a FIB seed's knobs stand against the FlashInfer library (issue 17), on the GPU.

For each task, each of its benchmark (feedback) workloads and each knob variant of the task's seed, it times
the seed's ``run`` and the library's call (plan() outside the timer) with ``triton.testing.do_bench``
(L2 cleared before every call, median), side by side in one process, and checks each variant's first output
against the library's. This is an exploration aid, not the judge: the score the project reports comes from
``evals/fib_gpu.py`` (the engine, its flushed protocol and its checks). Variants are knob assignments applied
to the seed's module-level constants, the same mechanism the playbook uses.

Usage (GPU machine, flashinfer importable): ``python evals/fib_knob_sweep.py OUT_DIR``;
writes OUT_DIR/fib_knob_sweep.{json,md}.
"""

from __future__ import annotations

import json
import re
import statistics
import sys
import time
import types
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "evals"))

from device_info import gpu_and_date  # noqa: E402

from ksearch_agent.opponents import load_opponent, opponent_for  # noqa: E402
from ksearch_agent.task import load_task  # noqa: E402
from ksearch_agent.worker.inputs import make_inputs  # noqa: E402
from ksearch_agent.worker.loader import with_scalars  # noqa: E402

SWEEPS: dict[str, list[dict[str, int]]] = {
    "gqa_paged_decode_h32_kv4_d128_ps1": [
        {},
        {"BLOCK_N": 64},
        {"NUM_STAGES": 3},
        {"MAX_SPLITS": 64},
        {"BLOCK_N": 64, "NUM_STAGES": 3},
        {"NUM_WARPS": 8},
        {"NUM_SPLITS": 16},
        {"BLOCK_N": 64, "NUM_SPLITS": 16},
        {"WAVES": 4},
        {"WAVES": 8},
        {"WAVES": 8, "BLOCK_N": 64},
        {"WAVES": 8, "MAX_SPLITS": 64},
        {"WAVES": 16, "MAX_SPLITS": 64},
        {"WAVES": 8, "MIN_SPLIT_BLOCKS": 1},
        {"WAVES": 8, "MIN_SPLIT_BLOCKS": 1, "MAX_SPLITS": 64},
        {"WAVES": 8, "MIN_SPLIT_BLOCKS": 1, "BLOCK_N": 64},
        {"NUM_SPLITS": 4},
        {"NUM_SPLITS": 8},
        {"NUM_SPLITS": 16, "PV_BF16X2": True},
        {"ALL_HEADS": True, "NUM_WARPS": 8, "BLOCK_N": 16, "WAVES": 8, "MIN_SPLIT_BLOCKS": 1},
        {"ALL_HEADS": True, "NUM_WARPS": 8, "BLOCK_N": 32, "WAVES": 8, "MIN_SPLIT_BLOCKS": 1},
        {
            "ALL_HEADS": True,
            "NUM_WARPS": 4,
            "BLOCK_N": 16,
            "NUM_STAGES": 1,
            "WAVES": 8,
            "MIN_SPLIT_BLOCKS": 1,
        },
        {"BALANCED": True, "WAVES": 8, "MIN_SPLIT_BLOCKS": 1},
        {"BALANCED": True, "WAVES": 4, "MIN_SPLIT_BLOCKS": 1},
        {"BALANCED": True, "WAVES": 8, "MIN_SPLIT_BLOCKS": 1, "BLOCK_N": 64, "NUM_STAGES": 3},
    ],
    "mla_paged_decode_h16_ckv512_kpe64_ps1": [
        {},
        {"BLOCK_N": 16, "NUM_STAGES": 3},
        {"BLOCK_N": 16, "NUM_WARPS": 4},
        {"NUM_WARPS": 4},
        {"MAX_SPLITS": 64},
        {"BLOCK_N": 64, "NUM_WARPS": 8},
        {"NUM_SPLITS": 16},
        {"NUM_SPLITS": 32},
        {"BLOCK_N": 16, "NUM_WARPS": 4, "NUM_SPLITS": 16},
        {"WAVES": 4},
        {"WAVES": 8},
        {"WAVES": 8, "MAX_SPLITS": 64},
        {"PV_BF16X2": True},
        {"PV_BF16X2": True, "WAVES": 8},
        {"BLOCK_N": 16, "NUM_WARPS": 4, "WAVES": 8},
        {"WAVES": 8, "MIN_SPLIT_BLOCKS": 1},
        {"WAVES": 8, "MIN_SPLIT_BLOCKS": 1, "PV_BF16X2": True},
        {"BALANCED": True, "WAVES": 8, "MIN_SPLIT_BLOCKS": 1},
        {"BALANCED": True, "WAVES": 4, "NUM_WARPS": 4},
    ],
}


def variant_module(source: str, knobs: dict[str, int], name: str) -> types.ModuleType:
    """The seed with ``knobs`` assigned to its module-level constants (each must exist in the source)."""
    for knob, value in knobs.items():
        source, n = re.subn(rf"^{knob}\s*=\s*.*$", f"{knob} = {value}", source, count=1, flags=re.M)
        if n != 1:
            raise ValueError(f"the seed has no module-level {knob}")
    path = Path(f"/tmp/ksearch_sweep_{name}.py")  # Triton needs a file to read kernels' source from
    path.write_text(source)
    module = types.ModuleType(path.stem)
    module.__file__ = str(path)
    exec(compile(source, str(path), "exec"), module.__dict__)  # noqa: S102 - our own seed, trusted
    return module


def sweep_task(name: str, variants: list[dict[str, int]]) -> dict[str, Any]:
    import torch
    import triton.testing

    device = torch.device("cuda", 0)
    task = load_task(ROOT / "tasks" / name)
    spec = task.worker_spec()
    opponent = load_opponent(opponent_for(name) or "", device)
    source = (task.directory / "seeds" / "triton_split_kv.py").read_text()
    modules = [variant_module(source, k, f"{name[:3]}_{i}") for i, k in enumerate(variants)]
    rows = []
    for wl in task.select(role="benchmark"):
        resolved = task.resolve(wl)
        inputs = make_inputs(resolved["inputs"], 11, device)
        named = {**dict(zip(spec["input_names"], inputs, strict=True)), **resolved["scalars"]}
        library = opponent.plan(named)
        expected = library()
        expected = expected[0] if isinstance(expected, tuple) else expected
        lib_ms = triton.testing.do_bench(library, warmup=25, rep=100, return_mode="median")
        row: dict[str, Any] = {"workload": wl.id, "axes": wl.axes, "library_ms": lib_ms, "variants": []}
        for knobs, module in zip(variants, modules, strict=True):
            fn = with_scalars(module.run, spec, resolved["axes"])
            out = fn(*inputs)
            out = out[0] if isinstance(out, tuple) else out
            err = (out.float() - expected.float()).abs().max().item()
            ms = triton.testing.do_bench(
                lambda f=fn, x=inputs: f(*x), warmup=25, rep=100, return_mode="median"
            )
            row["variants"].append({"knobs": knobs, "ms": ms, "max_abs_err_vs_library": err})
        rows.append(row)
        del inputs, named, expected
        torch.cuda.empty_cache()
    scores = []
    for i, knobs in enumerate(variants):
        ratios = [r["library_ms"] / r["variants"][i]["ms"] for r in rows]
        scores.append({"knobs": knobs, "score": 100 * statistics.fmean(ratios)})
    return {"task": name, "workloads": rows, "scores": scores}


def markdown(doc: dict[str, Any]) -> str:
    lines = [
        "# FIB seeds: knob variants against the FlashInfer library (exploration, do_bench)",
        "",
        f"{doc['gpu']} · {doc['date']} · torch {doc['torch']} · triton {doc['triton']} · flashinfer "
        f"{doc['flashinfer']}. Command: `{doc['command']}`. Timing: `triton.testing.do_bench` (L2 cleared "
        "before each call, median); library with plan() outside the timer. Score = 100 × mean(library / "
        "variant). Not the judge's figure (see fib_gpu.md).",
    ]
    for t in doc["tasks"]:
        lines += [
            "",
            f"## {t['task']}",
            "",
            "| knobs | score | " + " | ".join(r["workload"][:8] + " ms" for r in t["workloads"]) + " |",
        ]
        lines.append("|---|---|" + "---|" * len(t["workloads"]))
        lines.append(
            "| library | 100 | " + " | ".join(f"{r['library_ms']:.4f}" for r in t["workloads"]) + " |"
        )
        for i, s in enumerate(t["scores"]):
            cells = " | ".join(
                f"{r['variants'][i]['ms']:.4f} (err {r['variants'][i]['max_abs_err_vs_library']:.1e})"
                for r in t["workloads"]
            )
            lines.append(
                f"| {json.dumps(s['knobs']) if s['knobs'] else 'seed'} | {s['score']:.1f} | {cells} |"
            )
    return "\n".join(lines) + "\n"


def main() -> int:
    from importlib import metadata

    import torch
    import triton

    out = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "evals" / "results"
    out.mkdir(parents=True, exist_ok=True)
    where = gpu_and_date()
    doc: dict[str, Any] = {
        **where,
        "torch": torch.__version__,
        "triton": triton.__version__,
        "flashinfer": metadata.version("flashinfer-python"),
        "command": "python evals/fib_knob_sweep.py OUT",
        "tasks": [],
    }
    for name, variants in SWEEPS.items():
        t0 = time.perf_counter()
        try:
            doc["tasks"].append({**sweep_task(name, variants), "seconds": time.perf_counter() - t0})
        except Exception as exc:  # noqa: BLE001 - one task's failure must not lose the other's table
            print(f"{name}: {type(exc).__name__}: {exc}", flush=True)
        (out / "fib_knob_sweep.json").write_text(json.dumps(doc, indent=1))
        (out / "fib_knob_sweep.md").write_text(markdown(doc))
    print(markdown(doc))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
