"""The GPUs this machine lets the calling process see, found without creating a CUDA context here."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass


@dataclass(frozen=True)
class GpuInfo:
    """``index`` is what ``CUDA_VISIBLE_DEVICES`` must name to give a child process this GPU."""

    index: int
    name: str


def _listed() -> list[GpuInfo]:
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return []
    try:
        out = subprocess.run(
            [smi, "--query-gpu=index,name", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=20,
        )
    except (OSError, subprocess.TimeoutExpired):
        return []
    if out.returncode != 0:
        return []
    gpus = []
    for line in out.stdout.splitlines():
        index, _, name = line.partition(",")
        if index.strip().isdigit():
            gpus.append(GpuInfo(int(index.strip()), name.strip()))
    return gpus


def visible_gpus() -> list[GpuInfo]:
    """The GPUs ``nvidia-smi`` lists, restricted to ``CUDA_VISIBLE_DEVICES`` when it names indices.

    A ``CUDA_VISIBLE_DEVICES`` of UUIDs or MIG ids cannot be split per slot here: it counts as one GPU
    slot (the children inherit it unchanged), index -1.
    """
    listed = _listed()
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is None:
        return listed
    wanted = [p.strip() for p in env.split(",") if p.strip()]
    if not wanted or not listed:
        return []
    if not all(p.isdigit() for p in wanted):
        return [GpuInfo(-1, listed[0].name)]
    by_index = {g.index: g for g in listed}
    return [by_index[int(p)] for p in wanted if int(p) in by_index]
