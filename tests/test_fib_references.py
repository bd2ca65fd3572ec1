"""Our references for the bundled FlashInfer-Bench tasks compute what FIB's own reference code computes (run
here from each task's fib_definition.json on the same inputs), and the MoE seed matches our MoE reference on a
shrunken problem under the Triton interpreter (the definition's own sizes do not fit a CPU test)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import types
from pathlib import Path

import pytest
import torch

from ksearch_agent.task import load_task
from ksearch_agent.worker.inputs import make_inputs
from ksearch_agent.worker.loader import load_module, with_scalars

ROOT = Path(__file__).resolve().parent.parent
ATTENTION = [
    "gqa_paged_decode_h32_kv4_d128_ps1",
    "mla_paged_decode_h16_ckv512_kpe64_ps1",
    "mla_paged_prefill_causal_h16_ckv512_kpe64_ps1",
]
MOE = "moe_fp8_block_scale_ds_routing_topk8_ng8_kg4_e32_h7168_i2048"


def _fib_reference(task_dir: Path) -> types.ModuleType:
    module = types.ModuleType("fib_reference")
    exec(json.loads((task_dir / "fib_definition.json").read_text())["reference"], module.__dict__)  # noqa: S102
    return module


@pytest.mark.parametrize("name", ATTENTION)
def test_our_reference_matches_fib_reference_on_the_cpu_subset(name: str) -> None:
    task = load_task(ROOT / "tasks" / name)
    ours = load_module(task.reference_path, "ours").run
    theirs = _fib_reference(task.directory).run
    spec = task.worker_spec()
    for wl in task.select(cpu=True):
        resolved = task.resolve(wl)
        inputs = make_inputs(resolved["inputs"], 11, torch.device("cpu"))
        got = with_scalars(ours, spec, resolved["axes"])(*inputs)
        want = with_scalars(theirs, spec, resolved["axes"])(*inputs)
        for g, w in zip(got, want, strict=True):
            assert g.dtype == w.dtype and g.shape == w.shape
            assert torch.allclose(g.float(), w.float(), atol=1e-2, rtol=1e-2), (name, wl.id)
            assert math.isfinite(float(g.float().abs().max()))


MOE_SMALL = """
import importlib.util, sys, torch
from pathlib import Path
d = Path(sys.argv[1])
def load(p):
    spec = importlib.util.spec_from_file_location(p.stem, p)
    m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m); return m
ref, seed = load(d / "reference.py"), load(d / "seeds" / "triton_gemv.py")
g = torch.Generator().manual_seed(0)
T, H, I, L, E = 6, 256, 128, 4, 256
bias = torch.zeros(E, dtype=torch.bfloat16); bias[2:6] = 3.0  # experts 2..5 (local below) always chosen
def scale(*shape): return torch.rand(*shape, generator=g) * 0.1 + 0.2
args = (torch.randn(T, E, generator=g), bias, torch.randn(T, H, generator=g).to(torch.float8_e4m3fn),
        scale(H // 128, T), torch.randn(L, 2 * I, H, generator=g).to(torch.float8_e4m3fn), scale(L, 2 * I // 128, H // 128),
        torch.randn(L, H, I, generator=g).to(torch.float8_e4m3fn), scale(L, H // 128, I // 128), 2, 2.5)
r, o = ref.run(*args).float(), seed.run(*args).float()
bad = ((r - o).abs() > 1e-2) & ((r - o).abs() > 1e-2 * r.abs())
print(int(bad.sum()), float(r.abs().max()))
"""


def test_moe_seed_matches_our_reference_on_a_shrunken_problem_under_the_interpreter() -> None:
    env = {**os.environ, "TRITON_INTERPRET": "1"}
    out = subprocess.run(
        [sys.executable, "-c", MOE_SMALL, str(ROOT / "tasks" / MOE)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    bad, magnitude = out.stdout.split()
    assert int(bad) == 0 and float(magnitude) > 0.5, out.stdout
