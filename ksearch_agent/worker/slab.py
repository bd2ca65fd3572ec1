"""Memory the judge owns and lends to one contestant: the inputs it reads and the outputs it hands back.

On a GPU the judge allocates the slab with the CUDA driver (outside PyTorch's caching allocator, so
its lifetime is the judge's to decide and no IPC reference counting is involved) and passes a CUDA IPC
handle; on the CPU path it is a file in /dev/shm mapped by both. The judge fills the input regions,
the contestant copies the candidate's outputs into the output regions, and the judge copies those into
its own private memory before it compares anything. The slab never holds the expected output, the
seed or anything else the contestant may not see.
"""

from __future__ import annotations

import mmap
import os
import secrets
from dataclasses import dataclass
from typing import Any

import torch

from ksearch_agent.worker.inputs import DTYPES

ALIGN = 256


@dataclass(frozen=True)
class Region:
    name: str
    offset: int
    shape: tuple[int, ...]
    dtype: str

    @property
    def nbytes(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n * torch.empty(0, dtype=DTYPES[self.dtype]).element_size()

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "offset": self.offset, "shape": list(self.shape), "dtype": self.dtype}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Region:
        return cls(str(d["name"]), int(d["offset"]), tuple(int(x) for x in d["shape"]), str(d["dtype"]))


def plan_layout(specs: list[dict[str, Any]]) -> tuple[list[Region], int]:
    """Regions for tensors described as ``{"name", "shape", "dtype"}``, each aligned to 256 bytes."""
    regions, offset = [], 0
    for s in specs:
        region = Region(s["name"], offset, tuple(int(x) for x in s["shape"]), s["dtype"])
        regions.append(region)
        offset += (region.nbytes + ALIGN - 1) // ALIGN * ALIGN
    return regions, max(offset, ALIGN)


class _CudaArray:
    """The minimal ``__cuda_array_interface__`` torch needs to view driver-allocated memory."""

    def __init__(self, ptr: int, nbytes: int) -> None:
        self.__cuda_array_interface__ = {
            "shape": (nbytes,),
            "typestr": "|u1",
            "data": (ptr, False),
            "version": 3,
        }


def _check(result: Any, what: str) -> Any:
    err, *rest = result if isinstance(result, tuple) else (result,)
    if int(err) != 0:
        raise RuntimeError(f"{what} failed: {err}")
    return rest[0] if len(rest) == 1 else rest


class Slab:
    """A byte buffer shared between the judge (owner) and one contestant."""

    def __init__(
        self, raw: torch.Tensor, handle: dict[str, Any], *, owner: bool, release: Any = None
    ) -> None:
        self.raw, self._handle, self.owner, self._release = raw, handle, owner, release

    @property
    def nbytes(self) -> int:
        return int(self.raw.numel())

    @classmethod
    def create(cls, nbytes: int, device: torch.device) -> Slab:
        nbytes = max(int(nbytes), ALIGN)
        if device.type == "cuda":
            from cuda.bindings import driver as cu

            torch.cuda.init()
            _check(cu.cuInit(0), "cuInit")
            ptr = _check(cu.cuMemAlloc(nbytes), f"cuMemAlloc({nbytes})")
            handle = _check(cu.cuIpcGetMemHandle(ptr), "cuIpcGetMemHandle")
            raw = torch.as_tensor(_CudaArray(int(ptr), nbytes), device=device)
            info = {"kind": "cuda", "handle": bytes(handle.reserved).hex(), "nbytes": nbytes}
            return cls(raw, info, owner=True, release=lambda: cu.cuMemFree(ptr))
        name = f"ksearch-{secrets.token_hex(12)}"
        path = f"/dev/shm/{name}"
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600)
        try:
            os.ftruncate(fd, nbytes)
            mm = mmap.mmap(fd, nbytes)
        finally:
            os.close(fd)
        raw = torch.frombuffer(mm, dtype=torch.uint8)

        def release() -> None:
            try:
                os.unlink(path)
            except OSError:
                pass

        return cls(raw, {"kind": "shm", "path": path, "nbytes": nbytes}, owner=True, release=release)

    @classmethod
    def open(cls, handle: dict[str, Any], device: torch.device) -> Slab:
        nbytes = int(handle["nbytes"])
        if handle["kind"] == "cuda":
            from cuda.bindings import driver as cu

            _check(cu.cuInit(0), "cuInit")
            h = cu.CUipcMemHandle()
            h.reserved = bytes.fromhex(handle["handle"])
            ptr = _check(
                cu.cuIpcOpenMemHandle(h, cu.CUipcMem_flags.CU_IPC_MEM_LAZY_ENABLE_PEER_ACCESS),
                "cuIpcOpenMemHandle",
            )
            raw = torch.as_tensor(_CudaArray(int(ptr), nbytes), device=device)
            return cls(raw, dict(handle), owner=False)
        fd = os.open(handle["path"], os.O_RDWR)
        try:
            mm = mmap.mmap(fd, nbytes)
        finally:
            os.close(fd)
        return cls(torch.frombuffer(mm, dtype=torch.uint8), dict(handle), owner=False)

    def handle(self) -> dict[str, Any]:
        return dict(self._handle)

    def view(self, region: Region) -> torch.Tensor:
        if region.offset + region.nbytes > self.nbytes:
            raise ValueError(f"region {region.name!r} lies outside the slab")
        flat = self.raw[region.offset : region.offset + region.nbytes]
        dtype = DTYPES[region.dtype]
        return (
            flat.view(dtype).view(region.shape)
            if region.nbytes
            else torch.empty(region.shape, dtype=dtype, device=self.raw.device)
        )

    def close(self) -> None:
        """Free the memory (owner) once the contestant holding it is gone."""
        self.raw = torch.empty(0, dtype=torch.uint8)
        if self._release is not None:
            release, self._release = self._release, None
            release()
