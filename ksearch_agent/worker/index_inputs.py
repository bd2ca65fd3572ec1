"""Inputs bound by constraints: offsets arrays, distinct page ids, and tensors loaded from safetensors blobs.

Paged-attention definitions (FlashInfer-Bench's) take a page table: ``kv_indptr`` (offsets, from 0 to the
number of used pages, one segment per sequence) and ``kv_indices`` (distinct page ids into the cache). A
random tensor would break the kernel's contract, so these are synthesised valid from the trial's generator:
every trial gets a new page table, which no candidate can predict. Recorded tables come from safetensors
files, read here with a small reader (the worker needs no safetensors package).
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import torch

from ksearch_agent.worker.inputs import DTYPES

_SAFETENSORS_DTYPES = {
    "F64": torch.float64,
    "F32": torch.float32,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "I64": torch.int64,
    "I32": torch.int32,
    "I16": torch.int16,
    "I8": torch.int8,
    "U8": torch.uint8,
    "BOOL": torch.bool,
    "F8_E4M3": torch.float8_e4m3fn,
}
_BLOBS: dict[tuple[str, str], torch.Tensor] = {}


def read_safetensors(path: str | Path, key: str) -> torch.Tensor:
    """Tensor ``key`` of a safetensors file (8-byte little-endian header size, JSON header, raw data)."""
    with open(path, "rb") as fh:
        (size,) = struct.unpack("<Q", fh.read(8))
        if size > 100 * 1024 * 1024:
            raise ValueError(f"{path}: safetensors header of {size} bytes is not plausible")
        header = json.loads(fh.read(size))
        if key not in header:
            names = sorted(k for k in header if k != "__metadata__")
            raise KeyError(f"{path}: no tensor {key!r} (it holds {names})")
        entry = header[key]
        dtype = _SAFETENSORS_DTYPES.get(entry["dtype"])
        if dtype is None:
            raise ValueError(f"{path}: tensor {key!r} has unsupported dtype {entry['dtype']!r}")
        start, end = entry["data_offsets"]
        fh.seek(8 + size + start)
        data = bytearray(fh.read(end - start))
    if not data:
        return torch.empty(entry["shape"], dtype=dtype)
    return torch.frombuffer(data, dtype=dtype).reshape(entry["shape"]).clone()


def split_total(
    total: int, parts: int, gen: torch.Generator, device: torch.device, minimum: torch.Tensor | None = None
) -> torch.Tensor:
    """``parts`` random non-negative int64 lengths summing to ``total``; each at least ``minimum`` (per part)
    or, without it, at least 1 when ``total >= parts``."""
    if parts <= 0:
        return torch.zeros(0, dtype=torch.int64, device=device)
    base = (
        minimum.to(torch.int64)
        if minimum is not None
        else torch.full((parts,), 1 if total >= parts else 0, dtype=torch.int64, device=device)
    )
    rest = total - int(base.sum().item())
    if rest < 0:
        raise ValueError(f"cannot split {total} into {parts} segments of the required minimum lengths")
    weights = torch.rand(parts, generator=gen, device=device, dtype=torch.float64) + 1e-3
    extra = torch.floor(weights / weights.sum() * rest).to(torch.int64)
    short = rest - int(extra.sum().item())
    extra[:short] += 1
    return base + extra


def make_index_tensor(
    spec: dict[str, Any], gen: torch.Generator, device: torch.device, made: dict[str, torch.Tensor]
) -> torch.Tensor:
    shape, dtype, kind, p = spec["shape"], DTYPES[spec["dtype"]], spec["kind"], spec["params"]
    if kind == "blob":
        cache_key = (str(p["path"]), str(p["key"]))
        if cache_key not in _BLOBS:
            _BLOBS[cache_key] = read_safetensors(p["path"], p["key"])
        t = _BLOBS[cache_key]
        if list(t.shape) != list(shape):
            raise ValueError(
                f"input {spec['name']!r}: blob {p['key']!r} in {p['path']} has shape {list(t.shape)}, "
                f"the workload says {shape}"
            )
        return t.to(device=device, dtype=dtype).contiguous()
    if kind == "indptr":
        parts = int(shape[0]) - 1
        minimum = None
        if p.get("at_least"):
            other = made[str(p["at_least"])].to(torch.int64)
            minimum = other[1:] - other[:-1]
        lengths = split_total(int(p["total"]), parts, gen, device, minimum)
        zero = torch.zeros(1, dtype=torch.int64, device=device)
        return torch.cat([zero, torch.cumsum(lengths, 0)]).to(dtype).contiguous()
    if kind == "page_ids":
        n, high = int(shape[0]), int(p["high"])
        if n > high:
            raise ValueError(f"input {spec['name']!r}: {n} distinct page ids cannot come from {high} pages")
        return torch.randperm(high, generator=gen, device=device)[:n].to(dtype).contiguous()
    raise ValueError(f"input {spec['name']!r}: unknown index kind {kind!r}")
