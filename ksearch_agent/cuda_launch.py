"""Launching NVRTC-compiled CUDA kernels on torch tensors, for the host side of CUDA candidates.

A CUDA candidate is a ``.cu`` file plus a small Python ``run(...)``; this module gives that host code
a two-line way to compile (cached by content hash) and launch on PyTorch's current stream, with no
C++ extension build::

    mod = load_cuda(Path(__file__).with_name("rmsnorm.cu"))
    mod.launch("rmsnorm", grid=(rows,), block=(256,), args=(out, x, w, np.int32(h), np.float32(1e-6)))

Tensors are passed as device pointers; Python ints become int32, floats float32 (use numpy scalars
for anything else). Imports only torch, cuda-python, numpy and the standard library.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ksearch_agent.nvrtc import DEFAULT_ARCH, compile_cuda, source_hash

_MODULES: dict[str, CudaModule] = {}

# Called with the kernel's name just before each launch; the worker's call monitor counts launches here.
launch_hook: Callable[[str], None] | None = None


def _device_arch() -> str:
    import torch

    major, minor = torch.cuda.get_device_capability()
    return f"sm_{major}{minor}a" if major >= 9 else f"sm_{major}{minor}"


class CudaModule:
    """A compiled CUBIN loaded into the current CUDA context (the one torch uses)."""

    def __init__(self, source: str, name: str, arch: str, options: tuple[str, ...] = ()) -> None:
        from cuda.core import Device, ObjectCode

        self.binary = compile_cuda(source, name=name, arch=arch, options=options)
        self._device = Device()
        self._device.set_current()
        self._code = ObjectCode.from_cubin(self.binary.cubin)
        self._kernels: dict[str, Any] = {}
        self._streams: dict[int, Any] = {}

    def kernel(self, name: str) -> Any:
        if name not in self._kernels:
            self._kernels[name] = self._code.get_kernel(name)
        return self._kernels[name]

    def launch(
        self,
        name: str,
        *,
        grid: tuple[int, ...] | int,
        block: tuple[int, ...] | int,
        args: tuple[Any, ...],
        shared_mem: int = 0,
    ) -> None:
        """Launch kernel ``name`` on torch's current stream."""
        import torch
        from cuda.core import LaunchConfig, launch

        kernel = self.kernel(name)
        if shared_mem > 48 * 1024:
            _raise_smem_limit(kernel, shared_mem)
        torch_stream = torch.cuda.current_stream()
        stream = self._streams.get(torch_stream.cuda_stream)
        if stream is None:  # wrapping a stream costs tens of microseconds: once per torch stream
            stream = self._streams[torch_stream.cuda_stream] = self._device.create_stream(torch_stream)
        config = LaunchConfig(grid=grid, block=block, shmem_size=shared_mem)
        params = tuple(_as_param(a) for a in args)
        if launch_hook is not None:
            launch_hook(name)
        launch(stream, config, kernel, *params)


def _raise_smem_limit(kernel: Any, shared_mem: int) -> None:
    from cuda.bindings import driver

    attr = driver.CUfunction_attribute.CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES
    (err,) = driver.cuFuncSetAttribute(kernel._handle, attr, shared_mem)
    if err != driver.CUresult.CUDA_SUCCESS:
        raise RuntimeError(f"cannot raise dynamic shared memory to {shared_mem} bytes: {err}")


def _as_param(value: Any) -> Any:
    import torch

    if isinstance(value, torch.Tensor):
        if not value.is_cuda:
            raise TypeError("CUDA kernels take CUDA tensors; got a tensor on " + str(value.device))
        return np.uintp(value.data_ptr())
    if isinstance(value, bool):
        return np.bool_(value)
    if isinstance(value, int):
        return np.int32(value)
    if isinstance(value, float):
        return np.float32(value)
    return value


def load_cuda(
    source: str | Path, *, name: str | None = None, arch: str | None = None, options: tuple[str, ...] = ()
) -> CudaModule:
    """Compile a ``.cu`` file (or source text) once per process and return the loaded module."""
    if isinstance(source, Path):
        name = name or source.name
        text = source.read_text()
    else:
        text = source
    arch = arch or _device_arch() if _has_cuda() else arch or DEFAULT_ARCH
    key = source_hash(text, arch, options)
    if key not in _MODULES:
        _MODULES[key] = CudaModule(text, name or "kernel.cu", arch, options)
    return _MODULES[key]


def _has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()
