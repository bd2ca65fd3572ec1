"""Does FlashInfer's MoE opponent compute moe_fp8_block_scale_ds_routing_topk8_ng8_kg4_e32_h7168_i2048, and how fast?

On the device (Hopper: ``fused_topk_deepseek`` + ``cutlass_fused_moe``; Blackwell: ``trtllm_fp8_block_scale_moe``,
see ``ksearch_agent/opponents/flashinfer_moe.py``), for a shrunken workload (hidden 1024, intermediate 256,
16 tokens; the definition's 256 experts and 32 local ones) and FIB-sized ones (listed workloads, inputs from the
task's own generator):

- the library against the task's reference under the definition's tolerance (the judge's ``check_output``);
- the library against a torch emulation of the Hopper kernel's numerics on the library's own routing (bf16
  activations re-quantized per token and 128 columns at amax/448, bf16 GEMM outputs, the SwiGLU output quantized
  the same way): close agreement there and not with the reference means the layouts are right and the difference
  is the library's precision; the emulation against the reference says whether any kernel with these numerics
  could pass the tolerance (it is computed even when the library cannot run);
- the routing (expert sets per token) against the reference's;
- median latency of 20 calls after warm-up (torch.cuda.Event, hot L2) of the library call (plan outside), of
  plan + call, and of the reference.

First, on sm_90, FlashInfer's JIT modules (the routing kernel, ~15 s, and the CUTLASS MoE module, 248 objects)
are built in a child process for at most ``--jit-seconds`` (default 50); the child is stopped there and the build's
progress (objects compiled) is recorded; ninja resumes from it on the next run on the same machine. The MoE module
takes well over an hour on 16 cores (H100, 2026-12-07: 17 of 248 objects after 12 minutes), so on a fresh
device machine the library part is skipped with the reason, and the probe still reports the reference's times and
the emulation against the reference. Every failure is recorded (the exception text) and the script exits 0.

Usage (device, from the repository root, carry [".whl", ".whl-fib"]):
``. evals/device/setup.sh && cd /tmp && python "$REPO/evals/moe_library_probe.py" "$OUT" [--jit-seconds N]
[--workloads small,6230e838-67ca-41dd-a9d6-6f36b7676c6b,...|none] [--reps N]``. Writes OUT/moe_library_probe.json.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TASK = "moe_fp8_block_scale_ds_routing_topk8_ng8_kg4_e32_h7168_i2048"
SMALL = {"seq_len": 16, "hidden_size": 1024, "intermediate_size": 256}
DEFAULT_WORKLOADS = [
    "small",
    "6230e838-67ca-41dd-a9d6-6f36b7676c6b",  # seq_len 32, a benchmark workload
    "1a4c6ba1-3cd2-4d7d-b716-84f2d52b69fc",  # seq_len 901, a holdout workload
]
BUILD = (
    "from flashinfer.fused_moe.fused_routing_dsv3 import get_dsv3_fused_routing_module\n"
    "from flashinfer.fused_moe.core import get_cutlass_fused_moe_module\n"
    "get_dsv3_fused_routing_module()\n"
    "print('routing module built', flush=True)\n"
    "get_cutlass_fused_moe_module('90')\n"
    "print('cutlass MoE module built', flush=True)\n"
)


def _err(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:2000]


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def build_progress() -> dict[str, Any]:
    """How much of the sm90 CUTLASS MoE module's ninja build exists (the objects its build.ninja names)."""
    from flashinfer.jit.fused_moe import gen_cutlass_fused_moe_sm90_module

    spec = gen_cutlass_fused_moe_sm90_module()
    ninja = spec.build_dir / "build.ninja"
    lines = ninja.read_text().splitlines() if ninja.exists() else []
    objects = [
        Path(line[6:].split(":", 1)[0]) for line in lines if line.startswith("build ") and ".o:" in line
    ]
    return {
        "module": spec.name,
        "objects_built": sum(p.exists() for p in objects),
        "objects": len(objects),
        "library_built": bool(spec.is_aot or spec.is_compiled),
        "build_dir": str(spec.build_dir),
    }


def build_modules(seconds: float) -> dict[str, Any]:
    """Build the Hopper modules in a child process for at most ``seconds``; stop it there."""
    import torch

    from ksearch_agent.opponents.flashinfer_moe import cutlass_moe_build_problem

    if torch.cuda.get_device_capability() != (9, 0):
        return {"status": "not sm_90: nothing to prebuild"}
    if cutlass_moe_build_problem() is None:
        return {"status": "already built", **build_progress()}
    t0 = time.perf_counter()
    child = subprocess.Popen(
        [sys.executable, "-c", BUILD],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group: ninja and nvcc stop with it
    )
    try:
        out, _ = child.communicate(timeout=seconds)
        status = "built" if child.returncode == 0 else f"build failed (exit {child.returncode})"
    except subprocess.TimeoutExpired:
        os.killpg(child.pid, signal.SIGTERM)
        try:
            out, _ = child.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            out, _ = child.communicate()
        status = f"stopped after {seconds:.0f} s (ninja resumes from here on the next run)"
    result: dict[str, Any] = {"status": status, "seconds": round(time.perf_counter() - t0, 1)}
    result["log_tail"] = (out or "")[-1500:]
    try:
        result.update(build_progress())
    except Exception as exc:  # noqa: BLE001
        result["progress_error"] = _err(exc)
    return result


def small_resolved(task: Any) -> dict[str, Any]:
    """A listed workload's description with the hidden and intermediate sizes and the tokens shrunk."""
    resolved = task.resolve(task.select(role="correctness")[0])
    axes = dict(resolved["axes"])
    h, i = SMALL["hidden_size"], SMALL["intermediate_size"]
    axes.update(SMALL, gemm1_out_size=2 * i, num_hidden_blocks=h // 128, num_intermediate_blocks=i // 128)
    axes["num_gemm1_out_blocks"] = 2 * i // 128
    for spec in resolved["inputs"]:
        dims = task.definition.tensor_inputs[spec["name"]].shape or []
        spec["shape"] = [axes[d] if isinstance(d, str) else int(d) for d in dims]
    return {**resolved, "id": "small", "axes": axes}


def quant_1x128(x: Any) -> Any:
    """What the Hopper kernel's GEMMs read for bf16 ``x`` [M, K]: FP8 per row and 128 columns at amax/448."""
    import torch

    m, k = x.shape
    blocks = x.float().view(m, k // 128, 128)
    amax = blocks.abs().amax(dim=-1, keepdim=True)
    scale = torch.where(amax > 0, 448.0 / amax, torch.ones_like(amax))
    q = (blocks * scale).clamp(-448.0, 448.0).to(torch.float8_e4m3fn).float()
    return (q * (1.0 / scale)).view(m, k)


def emulate(named: dict[str, Any], ids: Any, weights: Any, reference: Any) -> Any:
    """The Hopper library's numerics in torch, on the given routing (global ids and weights [T, 8])."""
    import torch

    from ksearch_agent.opponents.flashinfer_moe import dequantize_hidden_states

    hidden = dequantize_hidden_states(named["hidden_states"], named["hidden_states_scale"])
    w1, s1, w2, s2 = (
        named[n] for n in ("gemm1_weights", "gemm1_weights_scale", "gemm2_weights", "gemm2_weights_scale")
    )
    offset, inter = int(named["local_expert_offset"]), w2.shape[2]
    out = torch.zeros(hidden.shape, dtype=torch.float32, device=hidden.device)
    for le in range(w1.shape[0]):
        hit = ids.long() == offset + le
        rows = hit.any(dim=1).nonzero().squeeze(1)
        if rows.numel() == 0:
            continue
        g1 = (quant_1x128(hidden[rows]) @ reference.dequant(w1[le], s1[le]).T).to(torch.bfloat16).float()
        act = (torch.nn.functional.silu(g1[:, inter:]) * g1[:, :inter]).to(torch.bfloat16)
        o = (quant_1x128(act) @ reference.dequant(w2[le], s2[le]).T).to(torch.bfloat16).float()
        out.index_add_(0, rows, o * (weights.float() * hit).sum(dim=1)[rows, None])
    return out.to(torch.bfloat16)


def compare(out: Any, ref: Any, tol: dict[str, float]) -> dict[str, Any]:
    from ksearch_agent.worker.compare import check_output

    res = check_output("output", out, ref, tol)
    diff = (out.float() - ref.float()).norm().item()
    res["rel_l2_error"] = diff / max(ref.float().norm().item(), 1e-30)
    return res


def time_ms(fn: Callable[[], Any], reps: int, warmup: int = 3) -> float:
    import torch

    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


def routing_agreement(ids: Any, ref_ids: Any) -> float:
    """Fraction of tokens whose 8 chosen experts (as sets) are the reference's."""
    a, b = ids.long().sort(dim=1).values, ref_ids.long().sort(dim=1).values
    return float((a == b).all(dim=1).float().mean().item())


def probe_workload(resolved: dict[str, Any], task: Any, opponent: Any, reps: int) -> dict[str, Any]:
    import torch

    from ksearch_agent.worker.inputs import make_inputs
    from ksearch_agent.worker.loader import load_module, with_scalars

    spec = task.worker_spec()
    tol = spec["tolerance"]
    device = torch.device("cuda", 0)
    reference = load_module(task.reference_path, "moe_reference")
    row: dict[str, Any] = {
        "workload": resolved["id"],
        "axes": {
            k: resolved["axes"][k]
            for k in ("seq_len", "hidden_size", "intermediate_size", "local_expert_offset")
        },
    }
    inputs = make_inputs(resolved["inputs"], 7, device)
    named = {**dict(zip(spec["input_names"], inputs, strict=True)), **resolved["scalars"]}
    ref_fn = with_scalars(reference.run, spec, resolved["axes"])
    ref_out = ref_fn(*inputs)
    row["reference_ms"] = time_ms(lambda: ref_fn(*inputs), reps)
    ref_ids, ref_w = reference.route(
        named["routing_logits"], named["routing_bias"], named["routed_scaling_factor"]
    )
    ids, weights = ref_ids, ref_w
    if opponent is not None:
        try:
            call = opponent.plan(named)
            out = call()
            torch.cuda.synchronize()
            row["library"] = compare(out, ref_out, tol)
            if getattr(opponent, "routing", None) is not None:
                weights, ids = opponent.routing
                row["routing_sets_agree"] = routing_agreement(ids, ref_ids)
            row["library_ms"] = time_ms(call, reps)
            row["library_plan_ms"] = time_ms(lambda: opponent.plan(named)(), reps)
        except Exception as exc:  # noqa: BLE001 - recorded, the probe goes on
            row["library_error"] = _err(exc)
            row["library_traceback"] = traceback.format_exc()[-3000:]
    try:
        emulated = emulate(named, ids, weights, reference)
        row["emulation_vs_reference"] = compare(emulated, ref_out, tol)
        if "library" in row:
            row["library_vs_emulation"] = compare(out, emulated, tol)
    except Exception as exc:  # noqa: BLE001
        row["emulation_error"] = _err(exc)
    return row


def _line(row: dict[str, Any]) -> str:
    def res(key: str) -> str:
        r = row.get(key)
        if not r:
            return "—"
        return (
            f"{r['status']} max_abs {r['max_abs_error']:.3g} max_rel {r['max_rel_error']:.3g} "
            f"matched {r['matched_ratio']:.4f} rel_l2 {r['rel_l2_error']:.3g}"
        )

    ms = " ".join(
        f"{k} {row[k]:.3f}"
        for k in ("library_ms", "library_plan_ms", "reference_ms")
        if row.get(k) is not None
    )
    text = (
        f"[{row['workload']} T={row['axes']['seq_len']}] library vs reference: {res('library')} | "
        f"library vs emulation: {res('library_vs_emulation')} | emulation vs reference: "
        f"{res('emulation_vs_reference')} | routing agree {row.get('routing_sets_agree', '—')} | {ms}"
    )
    if row.get("library_error"):
        text += f" | LIBRARY FAILED: {row['library_error'][:300]}"
    return text


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("out", type=Path)
    parser.add_argument("--jit-seconds", type=float, default=50.0)
    parser.add_argument("--workloads", default=",".join(DEFAULT_WORKLOADS))
    parser.add_argument("--reps", type=int, default=20)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    doc: dict[str, Any] = {"task": TASK, "command": " ".join(sys.argv), "workloads": []}
    t0 = time.perf_counter()

    def save() -> None:
        doc["seconds"] = round(time.perf_counter() - t0, 1)
        (args.out / "moe_library_probe.json").write_text(json.dumps(doc, indent=1, default=str))

    try:
        import torch

        from ksearch_agent.opponents import OpponentUnavailable, load_opponent, opponent_for
        from ksearch_agent.task import load_task

        doc["device"] = {
            "name": torch.cuda.get_device_name(0),
            "capability": list(torch.cuda.get_device_capability(0)),
            "torch": torch.__version__,
            "cuda": torch.version.cuda,
            "flashinfer-python": _version("flashinfer-python"),
        }
        print(f"device {doc['device']}", flush=True)
        try:
            doc["build"] = build_modules(args.jit_seconds)
        except Exception as exc:  # noqa: BLE001
            doc["build"] = {"status": "error", "error": _err(exc)}
        print(f"build: {json.dumps(doc['build'])[:600]}", flush=True)
        save()
        opponent = None
        try:
            opponent = load_opponent(opponent_for(TASK) or "", torch.device("cuda", 0))
            doc["opponent"] = {"class": type(opponent).__name__, "library": opponent.library}
        except OpponentUnavailable as exc:
            doc["opponent"] = {"unavailable": str(exc)}
        except Exception as exc:  # noqa: BLE001
            doc["opponent"] = {"error": _err(exc)}
        print(f"opponent: {doc['opponent']}", flush=True)
        task = load_task(ROOT / "tasks" / TASK)
        chosen = [w for w in args.workloads.split(",") if w and w != "none"]
        for wid in chosen:
            try:
                resolved = small_resolved(task) if wid == "small" else task.resolve(task.select(ids=[wid])[0])
                row = probe_workload(resolved, task, opponent, args.reps)
            except Exception as exc:  # noqa: BLE001
                row = {
                    "workload": wid,
                    "axes": {"seq_len": "?"},
                    "error": _err(exc),
                    "traceback": traceback.format_exc()[-3000:],
                }
            torch.cuda.empty_cache()  # the workload's 1.4 GB of inputs went with probe_workload's frame
            doc["workloads"].append(row)
            print(
                _line(row) if "error" not in row else f"[{wid}] PROBE ERROR: {row['error'][:500]}", flush=True
            )
            save()
    except Exception as exc:  # noqa: BLE001 - the probe always leaves its JSON and exits 0
        doc["error"] = _err(exc)
        doc["traceback"] = traceback.format_exc()[-3000:]
        print(f"PROBE ERROR: {doc['error']}", flush=True)
    save()
    print(f"wrote {args.out / 'moe_library_probe.json'} in {doc['seconds']} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
