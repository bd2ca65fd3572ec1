"""The compile tool's worker side: no GPU needed, no CUDA context created.

Triton: the candidate's ``run`` is called on small CPU tensors with Triton's launcher replaced by a
recorder, so every kernel launch (its arguments, constexprs, warps and stages, each autotune config)
is captured and compiled with ``triton.compile`` for sm_90a exactly as the GPU would JIT it.
CUDA: each ``.cu`` file goes through NVRTC to CUBIN. For both, ptxas statistics (registers, spills,
shared memory) and the SASS (size, tensor-core instructions) are read from the binary.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

_TORCH_TO_TRITON = {
    "float32": "fp32",
    "float16": "fp16",
    "bfloat16": "bf16",
    "float64": "fp64",
    "int32": "i32",
    "int64": "i64",
    "int16": "i16",
    "int8": "i8",
    "uint8": "u8",
    "bool": "i1",
    "float8_e4m3fn": "fp8e4nv",
    "float8_e5m2": "fp8e5",
}


def _tool(name: str) -> str | None:
    try:
        import triton.backends.nvidia as nv

        candidate = Path(nv.__file__).parent / "bin" / name
        if candidate.is_file():
            return str(candidate)
    except ImportError:
        pass
    return shutil.which(name)


def sass_summary(cubin: bytes) -> dict[str, Any]:
    """Instruction count and whether tensor-core instructions (HGMMA / HMMA) appear in the SASS."""
    cuobjdump = _tool("cuobjdump")
    if cuobjdump is None:
        return {"sass_available": False}
    with tempfile.NamedTemporaryFile(suffix=".cubin") as f:
        f.write(cubin)
        f.flush()
        proc = subprocess.run([cuobjdump, "-sass", f.name], capture_output=True, text=True, timeout=60)
    if proc.returncode != 0:
        return {"sass_available": False, "sass_error": proc.stderr[-500:]}
    instrs = re.findall(r"/\*[0-9a-f]{4,}\*/\s+([A-Z][A-Z0-9_.]*)", proc.stdout)
    return {
        "sass_available": True,
        "sass_instructions": len(instrs),
        "hgmma": any(i.startswith("HGMMA") for i in instrs),
        "hmma": any(i.startswith("HMMA") for i in instrs),
        "tensor_cores": any(i.startswith(("HGMMA", "HMMA", "QGMMA", "IMMA")) for i in instrs),
    }


def resource_usage(cubin: bytes) -> dict[str, Any]:
    """Registers, stack and local memory (where spills go) per kernel, read off the CUBIN."""
    cuobjdump = _tool("cuobjdump")
    if cuobjdump is None:
        return {}
    with tempfile.NamedTemporaryFile(suffix=".cubin") as f:
        f.write(cubin)
        f.flush()
        proc = subprocess.run([cuobjdump, "-res-usage", f.name], capture_output=True, text=True, timeout=60)
    m = re.search(r"REG:(\d+) STACK:(\d+) SHARED:(\d+) LOCAL:(\d+)", proc.stdout)
    if m is None:
        return {}
    reg, stack, _static_shared, local = (int(g) for g in m.groups())
    # Triton does not hand us ptxas's spill counts; local memory per thread is where spills land.
    return {"registers": reg, "stack_bytes": stack, "local_bytes": local}


def _signature(fn: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[dict, dict, dict, dict]:
    import torch

    options = {
        k: kwargs.pop(k) for k in list(kwargs) if k in ("num_warps", "num_stages", "num_ctas", "maxnreg")
    }
    kwargs.pop("grid", None)
    kwargs.pop("warmup", None)
    bound: dict[str, Any] = {p.name: a for p, a in zip(fn.params, args, strict=False)}
    bound.update(kwargs)
    signature: dict[str, str] = {}
    constexprs: dict[str, Any] = {}
    attrs: dict[tuple[int, ...], list[list[Any]]] = {}
    for i, p in enumerate(fn.params):
        if p.name in bound:
            value = bound[p.name]
        elif p.has_default:
            value = p.default
        else:
            raise TypeError(f"kernel {fn.__name__}: no value for argument {p.name!r}")
        if p.is_constexpr:
            signature[p.name] = "constexpr"
            constexprs[p.name] = value
        elif isinstance(value, torch.Tensor):
            signature[p.name] = "*" + _TORCH_TO_TRITON[str(value.dtype).removeprefix("torch.")]
            if value.data_ptr() % 16 == 0 and not p.do_not_specialize:
                attrs[(i,)] = [["tt.divisibility", 16]]
        elif isinstance(value, bool):
            signature[p.name] = "i1"
        elif isinstance(value, int):
            if value == 1 and not p.do_not_specialize:
                signature[p.name] = "constexpr"  # Triton specialises 1 to a constant
                constexprs[p.name] = 1
                continue
            signature[p.name] = "i32" if -(2**31) <= value < 2**31 else "i64"
            if value % 16 == 0 and not p.do_not_specialize:
                attrs[(i,)] = [["tt.divisibility", 16]]
        elif isinstance(value, float):
            signature[p.name] = "fp32"
        elif value is None:
            signature[p.name] = "constexpr"
            constexprs[p.name] = None
        elif type(value).__name__ == "TensorDescriptor" and isinstance(
            getattr(value, "base", None), torch.Tensor
        ):
            # a host-side TMA descriptor (triton.tools.tensor_descriptor): typed by element type and block shape
            dtype = _TORCH_TO_TRITON[str(value.base.dtype).removeprefix("torch.")]
            signature[p.name] = f"tensordesc<{dtype}[{','.join(str(int(b)) for b in value.block_shape)}]>"
        else:
            raise TypeError(
                f"kernel {fn.__name__}: cannot type argument {p.name!r} of type {type(value).__name__}"
            )
    return signature, constexprs, attrs, options


def _trace_launches(
    path: str, api: str, task: dict[str, Any], workload: dict[str, Any]
) -> tuple[list, str | None]:
    import torch
    from triton.runtime.autotuner import Autotuner
    from triton.runtime.jit import JITFunction

    from ksearch_agent.worker.inputs import make_inputs
    from ksearch_agent.worker.session import load_entry

    launches: list[tuple[Any, tuple[Any, ...], dict[str, Any]]] = []
    saved_run, saved_autotune = JITFunction.run, Autotuner.run

    def record(self: Any, *args: Any, **kwargs: Any) -> None:
        launches.append((self, args, dict(kwargs)))

    def record_configs(self: Any, *args: Any, **kwargs: Any) -> None:
        for cfg in self.configs:
            self.fn.run(*args, **{**kwargs, **cfg.all_kwargs()})

    JITFunction.run, Autotuner.run = record, record_configs
    trace_error = None
    try:
        loaded = load_entry(path, api, task, "candidate", workload["axes"])
        if loaded.failure is not None:
            raise _LoadFailed(loaded.failure.status, loaded.failure.log)
        inputs = make_inputs(workload["inputs"], 0, torch.device("cpu"))
        try:
            with torch.no_grad():
                loaded.bind(workload["axes"])(*inputs)
        except Exception as exc:  # noqa: BLE001 - host code may trip over the unrun kernels' outputs
            trace_error = f"{type(exc).__name__}: {exc}"
    finally:
        JITFunction.run, Autotuner.run = saved_run, saved_autotune
    return launches, trace_error


def _file_position(fn: Any, message: str) -> str:
    """Triton reports 'at L:C' relative to the ``def`` line; turn that into the file's line number."""
    import inspect

    m = re.search(r"at (\d+):(\d+)", message)
    if m is None:
        return ""
    try:
        lines, first = inspect.getsourcelines(fn.fn)
        filename = Path(inspect.getsourcefile(fn.fn) or "?").name
    except (OSError, TypeError):
        return ""
    def_offset = next((i for i, line in enumerate(lines) if line.lstrip().startswith("def ")), 0)
    return f" ({filename} line {first + def_offset + int(m.group(1)) - 1}, column {m.group(2)})"


class _LoadFailed(Exception):
    def __init__(self, status: str, log: str) -> None:
        super().__init__(log)
        self.status, self.log = status, log


def compile_triton(req: dict[str, Any]) -> dict[str, Any]:
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    arch = req.get("arch", "sm_90a")
    capability = int(re.sub(r"\D", "", arch))
    try:
        launches, trace_error = _trace_launches(
            req["candidate"]["path"], req["candidate"]["api"], req["task"], req["workload"]
        )
    except _LoadFailed as exc:
        return {"ok": False, "status": exc.status, "errors": [exc.log], "kernels": []}
    kernels: list[dict[str, Any]] = []
    errors: list[str] = []
    seen: set[str] = set()
    for fn, args, kwargs in launches:
        try:
            signature, constexprs, attrs, options = _signature(fn, args, dict(kwargs))
        except (TypeError, KeyError) as exc:
            errors.append(str(exc))
            continue
        key = repr(
            (fn.__name__, id(fn), sorted(signature.items()), sorted(map(repr, constexprs.items())), options)
        )
        if key in seen:
            continue
        seen.add(key)
        t0 = time.perf_counter()
        try:
            try:
                compiled = triton.compile(
                    ASTSource(fn=fn, signature=signature, constexprs=constexprs, attrs=attrs),
                    target=GPUTarget("cuda", capability, 32),
                    options=options,
                )
            except TypeError:
                compiled = triton.compile(
                    ASTSource(fn=fn, signature=signature, constexprs=constexprs),
                    target=GPUTarget("cuda", capability, 32),
                    options=options,
                )
        except Exception as exc:  # noqa: BLE001 - CompilationError carries the source position
            errors.append(
                f"kernel {fn.__name__}{_file_position(fn, str(exc))}: {type(exc).__name__}: {exc}"[-4000:]
            )
            continue
        seconds = time.perf_counter() - t0
        info: dict[str, Any] = {
            "name": fn.__name__,
            "seconds": seconds,
            "options": options,
            "constexprs": {k: repr(v) for k, v in constexprs.items()},
            "shared_bytes": int(getattr(compiled.metadata, "shared", 0)),
            "num_warps": int(getattr(compiled.metadata, "num_warps", 0)),
            "num_stages": int(getattr(compiled.metadata, "num_stages", 0)),
            "cubin_bytes": len(compiled.asm.get("cubin", b"")),
        }
        info.update(resource_usage(compiled.asm["cubin"]))
        info.update(sass_summary(compiled.asm["cubin"]))
        kernels.append(info)
    if not launches and trace_error is None:
        trace_error = "run() launched no Triton kernel"
    ok = not errors
    return {
        "ok": ok,
        "status": "OK" if ok else "COMPILE_ERROR",
        "errors": errors,
        "kernels": kernels,
        "trace_error": trace_error,
        "launches": len(launches),
    }


def compile_cuda_files(req: dict[str, Any]) -> dict[str, Any]:
    from ksearch_agent.nvrtc import CudaCompileError, compile_cuda

    arch = req.get("arch", "sm_90a")
    kernels: list[dict[str, Any]] = []
    errors: list[str] = []
    logs: list[str] = []
    sources = req.get("cuda_files") or []
    if not sources:
        return {
            "ok": False,
            "status": "COMPILE_ERROR",
            "errors": ["a CUDA candidate needs at least one .cu file"],
            "kernels": [],
        }
    for path in sources:
        try:
            binary = compile_cuda(Path(path).read_text(), name=Path(path).name, arch=arch)
        except CudaCompileError as exc:
            errors.append(exc.log)
            continue
        logs.append(binary.log)
        sass = sass_summary(binary.cubin)
        for k in binary.kernels:
            kernels.append(
                {
                    "name": k.name,
                    "file": Path(path).name,
                    "seconds": binary.seconds,
                    "registers": k.registers,
                    "spill_stores": k.spill_stores,
                    "spill_loads": k.spill_loads,
                    "stack_bytes": k.stack_bytes,
                    "shared_bytes": k.shared_bytes,
                    "cubin_bytes": len(binary.cubin),
                    **sass,
                }
            )
    ok = not errors
    return {
        "ok": ok,
        "status": "OK" if ok else "COMPILE_ERROR",
        "errors": errors,
        "kernels": kernels,
        "log": "\n".join(logs)[-4000:],
    }


def run_compile(worker: Any, req: dict[str, Any]) -> None:
    os.environ.setdefault("TRITON_DEFAULT_FP_FUSION", "1")
    t0 = time.perf_counter()
    result = compile_triton(req) if req["language"] == "triton" else compile_cuda_files(req)
    result["seconds"] = time.perf_counter() - t0
    worker.emit({"type": "done", "result": result})
