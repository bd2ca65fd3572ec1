"""A small FIB definition of our own (a paged gather-and-sum with a scalar and a page table), its workloads
file and safetensors blobs, written for the FIB tests; nothing here comes from FlashInfer-Bench's data."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import torch

NAME = "toy_paged_sum_d4"

REFERENCE = """import torch


@torch.no_grad()
def run(x, kv_indptr, kv_indices, scale):
    batch = kv_indptr.shape[0] - 1
    out = torch.zeros(batch, x.shape[1], dtype=torch.float32, device=x.device)
    for b in range(batch):
        lo, hi = int(kv_indptr[b]), int(kv_indptr[b + 1])
        out[b] = x[kv_indices[lo:hi].long()].sum(0) * scale
    return out
"""


def definition() -> dict[str, Any]:
    return {
        "name": NAME,
        "op_type": "toy_paged",
        "description": "Sum of each sequence's pages, scaled.",
        "tags": ["status:test"],
        "axes": {
            "batch_size": {"type": "var"},
            "dim": {"type": "const", "value": 4},
            "num_pages": {"type": "var"},
            "len_indptr": {"type": "var"},
            "num_kv_indices": {"type": "var"},
        },
        "constraints": ["len_indptr == batch_size + 1", "num_kv_indices == kv_indptr[-1].item()"],
        "inputs": {
            "x": {"shape": ["num_pages", "dim"], "dtype": "float32"},
            "kv_indptr": {"shape": ["len_indptr"], "dtype": "int32"},
            "kv_indices": {"shape": ["num_kv_indices"], "dtype": "int32"},
            "scale": {"shape": None, "dtype": "float32"},
        },
        "outputs": {"out": {"shape": ["batch_size", "dim"], "dtype": "float32"}},
        "reference": REFERENCE,
    }


def row(
    uuid: str, batch: int, pages: int, used: int, scale: float, blob: str | None = None
) -> dict[str, Any]:
    index: dict[str, Any] = {"type": "random"}
    inputs: dict[str, Any] = {"x": {"type": "random"}, "scale": {"type": "scalar", "value": scale}}
    for key in ("kv_indptr", "kv_indices"):
        inputs[key] = {"type": "safetensors", "path": blob, "tensor_key": key} if blob else index
    return {
        "definition": NAME,
        "solution": None,
        "workload": {
            "uuid": uuid,
            "axes": {
                "batch_size": batch,
                "num_pages": pages,
                "len_indptr": batch + 1,
                "num_kv_indices": used,
            },
            "inputs": inputs,
        },
        "evaluation": None,
    }


def write_safetensors(path: Path, tensors: dict[str, torch.Tensor]) -> None:
    """The safetensors layout: 8-byte little-endian header size, JSON header, raw little-endian data."""
    names = {torch.int32: "I32", torch.float32: "F32", torch.int64: "I64"}
    header: dict[str, Any] = {}
    data = b""
    for key, t in tensors.items():
        raw = t.contiguous().numpy().tobytes()
        header[key] = {
            "dtype": names[t.dtype],
            "shape": list(t.shape),
            "data_offsets": [len(data), len(data) + len(raw)],
        }
        data += raw
    text = json.dumps(header).encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(struct.pack("<Q", len(text)) + text + data)


def write_files(root: Path, *, with_blob: bool = True) -> tuple[Path, Path, Path]:
    """definition.json, workloads.jsonl (one row with a blob, one without) and the dataset root."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "definition.json").write_text(json.dumps(definition(), indent=1))
    blob = "blob/workloads/toy/toy_a.safetensors"
    if with_blob:
        write_safetensors(
            root / "dataset" / blob,
            {
                "kv_indptr": torch.tensor([0, 2, 5], dtype=torch.int32),
                "kv_indices": torch.tensor([6, 1, 0, 3, 4], dtype=torch.int32),
            },
        )
    rows = [
        row("uuid-blob", 2, 8, 5, 0.5, blob),
        row("uuid-synth", 3, 40, 30, 0.25, "blob/missing.safetensors"),
    ]
    (root / "workloads.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root / "definition.json", root / "workloads.jsonl", root / "dataset"
