"""Generating a workload's inputs on the device from a seed the candidate cannot predict."""

from __future__ import annotations

import hashlib
import math
from typing import Any

import torch

DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32,
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
    "float64": torch.float64,
    "int32": torch.int32,
    "int64": torch.int64,
    "int8": torch.int8,
    "uint8": torch.uint8,
    "bool": torch.bool,
    "float8_e4m3fn": torch.float8_e4m3fn,
}


def derive_seed(secret: int, *parts: object) -> int:
    """A 63-bit seed from the request's secret and the workload/trial it is for."""
    text = ":".join(str(p) for p in (secret, *parts))
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") & (2**63 - 1)


def make_tensor(
    spec: dict[str, Any],
    gen: torch.Generator,
    device: torch.device,
    made: dict[str, torch.Tensor] | None = None,
) -> torch.Tensor:
    """One input from its spec; ``made`` holds the inputs made before it (an indptr may follow another)."""
    shape, dtype, kind, p = spec["shape"], DTYPES[spec["dtype"]], spec["kind"], spec["params"]
    if kind in ("indptr", "page_ids", "blob"):
        from ksearch_agent.worker.index_inputs import make_index_tensor

        return make_index_tensor(spec, gen, device, made or {})
    f32 = torch.float32
    if kind == "normal":
        t = torch.randn(shape, device=device, dtype=f32, generator=gen) * (p["std"] * p["scale"]) + p["mean"]
    elif kind == "uniform":
        t = (
            torch.rand(shape, device=device, dtype=f32, generator=gen) * (p["high"] - p["low"]) + p["low"]
        ) * p["scale"]
    elif kind == "cauchy":
        t = p["scale"] * torch.tan(
            math.pi * (torch.rand(shape, device=device, dtype=f32, generator=gen) - 0.5)
        )
    elif kind in ("int_range", "index"):
        t = torch.randint(int(p["low"]), int(p["high"]), shape, device=device, generator=gen)
    elif kind == "mask01":
        t = torch.randint(0, 2, shape, device=device, generator=gen)
    elif kind == "ones":
        t = torch.ones(shape, device=device)
    elif kind == "scalar":
        t = torch.full(shape, p["value"], device=device)
    else:
        raise ValueError(f"input {spec['name']!r}: unknown init kind {kind!r}")
    return t.to(dtype).contiguous()


def make_inputs(specs: list[dict[str, Any]], seed: int, device: torch.device) -> list[torch.Tensor]:
    gen = torch.Generator(device=device)
    gen.manual_seed(seed)
    made: dict[str, torch.Tensor] = {}
    for s in specs:
        made[s["name"]] = make_tensor(s, gen, device, made)
    return list(made.values())
