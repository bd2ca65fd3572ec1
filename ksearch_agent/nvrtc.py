"""CUDA C++ → CUBIN through NVRTC (cuda.core), with ptxas statistics.

Imports only cuda-python and the standard library, so both the compile tool and a candidate's host
code inside a GPU worker can use it. CUBIN, never PTX: the pip NVRTC can be newer than the driver's
PTX JIT on the GPU host.
"""

from __future__ import annotations

import hashlib
import re
import time
from dataclasses import dataclass, field
from functools import cache

DEFAULT_ARCH = "sm_90a"


class CudaCompileError(RuntimeError):
    """NVRTC rejected the source; ``log`` holds the compiler's messages with line numbers."""

    def __init__(self, log: str, name: str = "kernel.cu") -> None:
        self.log = log
        super().__init__(f"NVRTC failed to compile {name}:\n{log}")


@dataclass
class KernelStats:
    name: str
    registers: int | None = None
    spill_stores: int = 0
    spill_loads: int = 0
    shared_bytes: int = 0
    stack_bytes: int = 0


@dataclass
class CudaBinary:
    cubin: bytes
    log: str
    seconds: float
    kernels: list[KernelStats] = field(default_factory=list)


@cache
def include_dirs() -> tuple[str, ...]:
    """CUDA headers NVRTC does not find alone (cuda_bf16.h, cuda/std, ...): toolkit or pip wheels."""
    dirs: list[str] = []
    try:
        from cuda.pathfinder import find_nvidia_header_directory
    except ImportError:  # older cuda-python: fall back to a toolkit on the usual path
        import os

        root = os.environ.get("CUDA_HOME") or os.environ.get("CUDA_PATH") or "/usr/local/cuda"
        return tuple(d for d in (f"{root}/include", f"{root}/include/cccl") if os.path.isdir(d))
    for lib in ("cudart", "cccl"):
        try:
            found = find_nvidia_header_directory(lib)
        except Exception:  # noqa: BLE001 - a missing header set only limits what sources compile
            found = None
        if found and found not in dirs:
            dirs.append(found)
    return tuple(dirs)


_FUNC_RE = re.compile(r"Compiling entry function '(?P<name>[^']+)'|Function properties for (?P<fp>\S+)")
_REG_RE = re.compile(r"Used (\d+) registers")
_SPILL_RE = re.compile(r"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads")
_SMEM_RE = re.compile(r"(\d+) bytes smem")


def parse_ptxas_log(log: str) -> list[KernelStats]:
    """Per-kernel registers, spills, stack and static shared memory from a ``ptxas -v`` log."""
    stats: dict[str, KernelStats] = {}
    current: KernelStats | None = None
    for line in log.splitlines():
        m = _FUNC_RE.search(line)
        if m:
            name = m.group("name") or m.group("fp")
            current = stats.setdefault(name, KernelStats(name=name))
            continue
        if current is None:
            continue
        if (m := _SPILL_RE.search(line)) is not None:
            current.stack_bytes, current.spill_stores, current.spill_loads = (int(g) for g in m.groups())
        if (m := _REG_RE.search(line)) is not None:
            current.registers = int(m.group(1))
        if (m := _SMEM_RE.search(line)) is not None:
            current.shared_bytes = int(m.group(1))
    return list(stats.values())


def compile_cuda(
    source: str, *, name: str = "kernel.cu", arch: str = DEFAULT_ARCH, options: tuple[str, ...] = ()
) -> CudaBinary:
    """Compile ``source`` to CUBIN for ``arch``; raise :class:`CudaCompileError` with the log on failure."""
    from cuda.core import Program, ProgramOptions

    opts = ProgramOptions(
        name=name, arch=arch, include_path=list(include_dirs()), ptxas_options=["-v"], std="c++17"
    )
    prog = Program(source, code_type="c++", options=opts)
    logs: list[str] = []

    class _Log:
        def write(self, text: str) -> None:
            logs.append(text)

    t0 = time.perf_counter()
    try:
        obj = prog.compile("cubin", logs=_Log())
    except Exception as exc:  # cuda.core raises its own NVRTC error type carrying the log in the message
        raise CudaCompileError("".join(logs) or str(exc), name) from None
    log = "".join(logs)
    return CudaBinary(
        cubin=bytes(obj.code), log=log, seconds=time.perf_counter() - t0, kernels=parse_ptxas_log(log)
    )


def source_hash(source: str, arch: str, options: tuple[str, ...] = ()) -> str:
    return hashlib.sha256("\0".join((source, arch, *options)).encode()).hexdigest()
