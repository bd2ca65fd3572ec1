"""run_correctness on the CPU: the interpreter checks every CPU workload and reports why a kernel fails."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from conftest import candidate, seed

from ksearch_agent.engine import Engine
from ksearch_agent.task import load_task

RMS = load_task("rmsnorm")


def test_seed_passes_every_cpu_workload_under_the_interpreter(cpu_engine: Engine) -> None:
    res = cpu_engine.run_correctness(RMS, seed("rmsnorm", "triton_rowwise.py"))
    assert res.status == "PASSED" and res.checked == "interpreter"
    ids = [w.workload for w in res.workloads]
    assert (
        ids[:4] == ["b1", "b7", "b64", "b300"]
        and len(ids) == 5
        and ids[4].startswith("unlisted0[batch_size=")
    )
    assert all(w.trials == 3 and w.max_abs_error is not None for w in res.workloads)
    assert "speed not measured" in res.note


def test_wrong_kernel_is_incorrect_numerical_with_the_worst_element(cpu_engine: Engine) -> None:
    res = cpu_engine.run_correctness(RMS, candidate("rmsnorm_wrong.py"))
    assert res.status == "INCORRECT_NUMERICAL"
    w = res.workloads[0]
    assert w.worst_index is not None and len(w.worst_index) == 2
    assert "out of tolerance" in w.log and "expected" in w.log


def test_nan_producing_kernel_fails_and_says_so(cpu_engine: Engine) -> None:
    res = cpu_engine.run_correctness(RMS, candidate("rmsnorm_nan.py"))
    assert res.status == "INCORRECT_NUMERICAL"
    assert "non-finite" in res.workloads[0].log


def test_wrong_shape_and_wrong_dtype_get_their_own_statuses(cpu_engine: Engine) -> None:
    shape = cpu_engine.run_correctness(RMS, candidate("rmsnorm_bad_shape.py"), ["b1"])
    dtype = cpu_engine.run_correctness(RMS, candidate("rmsnorm_bad_dtype.py"), ["b1"])
    assert shape.status == "INCORRECT_SHAPE" and "[1, 4096, 1]" in shape.workloads[0].log
    assert dtype.status == "INCORRECT_DTYPE" and "float32" in dtype.workloads[0].log


def test_python_syntax_error_is_a_compile_error_with_the_line(cpu_engine: Engine) -> None:
    res = cpu_engine.run_correctness(RMS, candidate("rmsnorm_syntax_error.py"), ["b1"])
    assert res.status == "COMPILE_ERROR" and "line 3" in res.workloads[0].log


def test_triton_compile_error_inside_a_kernel_is_a_compile_error(cpu_engine: Engine) -> None:
    res = cpu_engine.run_correctness(RMS, candidate("rmsnorm_compile_error.py"), ["b1"])
    assert res.status == "COMPILE_ERROR" and "undefined_scale" in res.workloads[0].log


def test_cuda_candidate_without_gpu_is_compile_checked_only(cpu_engine: Engine) -> None:
    res = cpu_engine.run_correctness(RMS, seed("rmsnorm", "cuda_rowwise.py"))
    assert res.status == "UNVERIFIED" and res.checked == "compile_only"
    assert "not verified" in res.note


def test_interpreter_bf16_dot_is_made_exact(tmp_path: Path) -> None:
    script = tmp_path / "bf16_dot.py"
    script.write_text(
        textwrap.dedent("""
        import torch, triton, triton.language as tl
        from ksearch_agent.worker.interpreter import patch_bf16_dot

        @triton.jit
        def mm(a, b, c, B: tl.constexpr):
            o = tl.arange(0, B)
            x = tl.load(a + o[:, None] * B + o[None, :])
            y = tl.load(b + o[:, None] * B + o[None, :])
            tl.store(c + o[:, None] * B + o[None, :], tl.dot(x, y))

        a, b = torch.randn(32, 32).bfloat16(), torch.randn(32, 32).bfloat16()
        c = torch.empty(32, 32)
        assert patch_bf16_dot()
        mm[(1,)](a, b, c, B=32)
        print(float((c - a.float() @ b.float()).abs().max()))
    """)
    )
    env = {**os.environ, "TRITON_INTERPRET": "1", "TRITON_DEFAULT_FP_FUSION": "1"}
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert float(out.stdout.strip()) < 1e-4


def test_gpumode_submission_is_accepted_for_trimul_on_the_cpu_subset(
    cpu_engine: Engine, tmp_path: Path
) -> None:
    source = seed("trimul", "triton_simple.py").files["triton_simple.py"]
    only_custom_kernel = source.replace("def run(", "def _trimul(").replace("return run(", "return _trimul(")
    (tmp_path / "submission.py").write_text(only_custom_kernel)
    from ksearch_agent.candidate import Candidate

    cand = Candidate.from_path(tmp_path / "submission.py")
    assert cand.api == "gpumode" and "def run(" not in only_custom_kernel
    res = cpu_engine.run_correctness(load_task("trimul"), cand)
    assert res.status == "PASSED" and len(res.workloads) == 4  # the CPU subset and one unlisted shape
    assert all(w.max_abs_error is not None and w.max_abs_error < 0.02 for w in res.workloads)


def test_gpumode_adapter_hands_out_fresh_dicts_each_call_and_follows_new_inputs() -> None:
    """The adapter matches names to inputs once, outside the timed call (as GPUMode's harness builds
    ``data`` beforehand), yet every call gets its own dicts, so nothing a candidate stores in them
    survives into the next call, and new inputs reach the candidate."""
    import types

    from ksearch_agent.worker.loader import entry_point

    seen: list[tuple] = []

    def custom_kernel(data: tuple) -> object:
        seen.append(data)
        return data[2]["to_out.weight"]

    module = types.ModuleType("submission")
    module.custom_kernel = custom_kernel  # type: ignore[attr-defined]
    task = load_task("trimul")
    spec = task.worker_spec()
    call = entry_point(module, "gpumode", spec, {"dim": 128, "hidden_dim": 128, "seqlen": 16, "bs": 1})
    first = [object() for _ in spec["input_names"]]
    assert call(*first) is first[-1] and call(*first) is first[-1]
    seen[0][2]["stash"] = "from call 1"
    assert "stash" not in seen[1][2] and seen[0][2] is not seen[1][2] and seen[0][0] is seen[1][0] is first[0]
    assert seen[1][3] == {"dim": 128, "hidden_dim": 128}
    second = [object() for _ in spec["input_names"]]
    assert call(*second) is second[-1] and seen[2][0] is second[0] and seen[2][1] is second[1]


def test_a_judge_out_of_device_memory_fails_the_candidate_closed_with_the_reason(
    cpu_engine: Engine, tmp_path: Path
) -> None:
    """A contestant shares the card with the judge; when the judge cannot make a trial's inputs or expected
    outputs for lack of memory, nothing was checked, so the candidate fails with a plain reason (not a judge
    error with PyTorch's page-long message) and the later workloads are not run."""
    import shutil

    from ksearch_agent.task import BUNDLED_TASKS_DIR

    task_dir = tmp_path / "rmsnorm_starved"
    shutil.copytree(BUNDLED_TASKS_DIR / "rmsnorm", task_dir)
    ref = task_dir / "reference.py"
    ref.write_text(
        ref.read_text().replace(
            "    x = hidden_states.to(torch.float32)\n",
            '    raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")\n',
        )
    )
    res = cpu_engine.run_correctness(load_task(task_dir), seed("rmsnorm", "triton_rowwise.py"), ["b1", "b7"])
    first, second = res.workloads
    assert res.status == "RUNTIME_ERROR"
    assert first.log.startswith("out of GPU memory while the judge made workload b1's inputs"), first.log
    assert "judge error" not in first.log and "Traceback" not in first.log
    assert second.log.startswith("not run: evaluation stopped at workload b1")


def test_a_cuda_error_that_finds_no_memory_counts_as_out_of_memory() -> None:
    """A kernel launch or lazy module load that finds no device memory raises a plain CUDA error, not the
    allocator's OutOfMemoryError (the judge met one on the H100); both are out of memory, nothing else is."""
    import torch

    from ksearch_agent.worker.session import is_out_of_memory

    assert is_out_of_memory(torch.AcceleratorError("CUDA error: out of memory"))
    assert is_out_of_memory(torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"))
    assert not is_out_of_memory(
        torch.AcceleratorError("CUDA error: an illegal memory access was encountered")
    )
    assert not is_out_of_memory(ValueError("out of memory"))
