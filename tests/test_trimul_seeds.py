"""The bundled TriMul seeds are correct on the CPU: the engine's CPU subset, and every dispatch path."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import seed

from ksearch_agent.engine import Engine
from ksearch_agent.task import BUNDLED_TASKS_DIR, load_task

TRIMUL = load_task("trimul")
DISPATCH = BUNDLED_TASKS_DIR / "trimul" / "seeds" / "triton_dispatch.py"
FOLDED = BUNDLED_TASKS_DIR / "trimul" / "seeds" / "triton_folded.py"


@pytest.mark.parametrize("name", ["triton_folded.py", "triton_dispatch.py"])
def test_trimul_seed_passes_the_cpu_subset_under_the_interpreter(cpu_engine: Engine, name: str) -> None:
    res = cpu_engine.run_correctness(TRIMUL, seed("trimul", name))
    assert res.status == "PASSED" and res.checked == "interpreter", [w.log for w in res.workloads]
    assert len(res.workloads) == 4 and all(
        w.max_abs_error is not None and w.max_abs_error < 0.02 for w in res.workloads
    )


def test_dispatch_seed_is_correct_on_each_projection_path_and_wide_dims(tmp_path: Path) -> None:
    """dim 128 takes the register-resident projection, wider dims the LayerNorm pass + GEMM (both also forced);
    the last case lowers the small-N threshold so the TMA triangle kernel runs."""
    script = tmp_path / "paths.py"
    script.write_text(
        textwrap.dedent(f"""
        import importlib.util, sys
        import torch
        root = {str(BUNDLED_TASKS_DIR / "trimul")!r}
        sys.path.insert(0, root)
        import reference
        spec = importlib.util.spec_from_file_location("dispatch", {str(DISPATCH)!r})
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        torch.manual_seed(0)
        for n, bs, dim, rowres_max, small_n in [(16, 2, 256, 128, 256), (16, 1, 384, 384, 256), (16, 1, 768, 128, 256),
                                                (32, 1, 128, 0, 256), (128, 1, 128, 128, 0)]:
            mod.ROWRES_MAX_DIM, mod.K2_SMALL_N = rowres_max, small_n
            x = torch.randn(bs, n, n, dim)
            mask = (torch.rand(bs, n, n) > 0.5).float()
            args = [x, mask, torch.randn(dim), torch.randn(dim)]
            args += [torch.randn(128, dim) / 128 ** 0.5 for _ in range(5)]
            args += [torch.randn(128), torch.randn(128), torch.randn(dim, 128) / dim ** 0.5]
            ref = reference.run(*args)
            out = mod.run(*args)
            ok = bool(((out - ref).abs() <= 0.02 + 0.02 * ref.abs()).all())
            print(n, bs, dim, rowres_max, ok, float((out - ref).abs().max()))
    """)
    )
    env = {**os.environ, "TRITON_INTERPRET": "1"}
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    lines = out.stdout.split("\n")[:5]
    assert len(lines) == 5 and all(line.split()[4] == "True" for line in lines), out.stdout


def test_folded_seed_call_dispatches_no_pytorch_compute(tmp_path: Path) -> None:
    """Its weight fold is a Triton kernel: under the engine's monitor the call only allocates, views and
    converts, so the [op-count] rule has nothing to refuse."""
    script = tmp_path / "watch.py"
    script.write_text(
        textwrap.dedent(f"""
        import importlib.util, json
        import torch
        from ksearch_agent.worker.monitor import CallMonitor, call_problems
        monitor = CallMonitor()  # hooks before the seed is imported, as the worker does
        spec = importlib.util.spec_from_file_location("folded", {str(FOLDED)!r})
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        torch.manual_seed(0)
        n, dim, hidden = 16, 128, 128
        args = [torch.randn(1, n, n, dim), (torch.rand(1, n, n) > 0.5).float(), torch.randn(dim), torch.randn(dim)]
        args += [torch.randn(hidden, dim) / hidden ** 0.5 for _ in range(5)]
        args += [torch.randn(hidden), torch.randn(hidden), torch.randn(dim, hidden) / dim ** 0.5]
        with torch.no_grad(), monitor.watch() as record:
            mod.run(*args)
        print(json.dumps({{"problems": call_problems(record, "triton"), "launches": record.launches,
                          "allowed": record.allowed_ops}}))
    """)
    )
    env = {**os.environ, "TRITON_INTERPRET": "1"}
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    report = json.loads(out.stdout.strip().split("\n")[-1])
    assert report["problems"] == [], report


def test_dispatch_seed_names_the_shape_it_cannot_take() -> None:
    import importlib.util

    import torch

    spec = importlib.util.spec_from_file_location("dispatch", DISPATCH)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    x = torch.zeros(1, 20, 20, 128)  # N = 20 is not a multiple of 16
    with pytest.raises(ValueError, match=r"N % 16 == 0.*got x \(1, 20, 20, 128\)"):
        mod.run(
            x,
            torch.ones(1, 20, 20),
            *([torch.zeros(128)] * 2),
            *([torch.zeros(128, 128)] * 5),
            torch.zeros(128),
            torch.zeros(128),
            torch.zeros(128, 128),
        )
