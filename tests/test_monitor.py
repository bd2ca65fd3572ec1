"""The call monitor sees PyTorch compute however it is reached, and counts the candidate's own launches.

CPU tests run the bundled Triton seeds under the Triton interpreter in a fresh process (TRITON_INTERPRET=1
must be set before Triton is imported); GPU tests run on the device.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import torch

from ksearch_agent.task import BUNDLED_TASKS_DIR
from ksearch_agent.worker.monitor import CallMonitor, CallRecord, call_problems

MONITOR = CallMonitor()


def _seed(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"monitor_seed_{path.parent.parent.name}_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _inputs(task: str, device: str = "cpu") -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    if task == "rmsnorm":
        return [
            torch.randn(2, 4096, generator=g).bfloat16().to(device),
            torch.randn(4096, generator=g).bfloat16().to(device),
        ]
    if task == "softmax":
        return [torch.randn(2, 8192, generator=g).to(device)]
    bs, n, dim = 1, 16, 128  # trimul: the smallest shape every seed takes
    args = [
        torch.randn(bs, n, n, dim, generator=g),
        (torch.rand(bs, n, n, generator=g) > 0.5).float(),
        torch.randn(dim, generator=g),
        torch.randn(dim, generator=g),
    ]
    args += [torch.randn(128, dim, generator=g) / 128**0.5 for _ in range(5)]
    args += [
        torch.randn(128, generator=g),
        torch.randn(128, generator=g),
        torch.randn(dim, 128, generator=g) / dim**0.5,
    ]
    return [a.to(device) for a in args]


def _watch(call: Callable[[], Any]) -> CallRecord:
    with torch.no_grad(), MONITOR.watch() as record:
        call()
    return record


def _seeds(*tasks: str) -> list[Path]:
    return [p for t in tasks for p in sorted((BUNDLED_TASKS_DIR / t / "seeds").glob("triton_*.py"))]


def _interpreted_records(paths: list[Path]) -> dict[str, dict[str, Any]]:
    """Run each seed once under the Triton interpreter in a fresh process (TRITON_INTERPRET must be set
    before Triton is imported) with a CallMonitor around the call; its records, by seed path."""
    script = textwrap.dedent(f"""
        import dataclasses, json, sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        import torch
        from ksearch_agent.worker.monitor import CallMonitor
        monitor = CallMonitor()
        import test_monitor as t
        out = {{}}
        for path in {[str(p) for p in paths]!r}:
            run = t._seed(t.Path(path)).run
            args = t._inputs(t.Path(path).parent.parent.name)
            with torch.no_grad(), monitor.watch() as record:
                run(*args)
            out[path] = dataclasses.asdict(record)
        print(json.dumps(out))
    """)
    env = {**os.environ, "TRITON_INTERPRET": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


SMALL_SEEDS = _seeds("rmsnorm", "softmax")


@pytest.fixture(scope="module")
def small_seed_records() -> dict[str, dict[str, Any]]:
    return _interpreted_records(SMALL_SEEDS)


@pytest.fixture(scope="module")
def trimul_seed_records() -> dict[str, dict[str, Any]]:
    return _interpreted_records(_seeds("trimul"))


@pytest.mark.parametrize("path", SMALL_SEEDS, ids=lambda p: f"{p.parent.parent.name}/{p.name}")
def test_triton_seed_records_a_launch_and_no_compute_ops(
    small_seed_records: dict[str, Any], path: Path
) -> None:
    record = CallRecord(**small_seed_records[str(path)])
    assert record.launches >= 1 and record.compute_ops == {}, record
    assert call_problems(record, "triton") == []


@pytest.mark.slow
@pytest.mark.parametrize("path", _seeds("trimul"), ids=lambda p: f"trimul/{p.name}")
def test_trimul_seed_records_its_launches_and_no_compute_ops_under_the_interpreter(
    trimul_seed_records: dict[str, Any], path: Path
) -> None:
    record = CallRecord(**trimul_seed_records[str(path)])
    assert record.launches >= 3 and record.compute_ops == {}, record


def test_watching_a_call_leaves_its_results_and_aliasing_unchanged() -> None:
    a, b = torch.randn(16, 16), torch.randn(16, 16)
    out = torch.empty(16, 16)
    expected_prod, expected_sum = torch.mm(a, b), a + b
    with MONITOR.watch():
        prod = a @ b
        torch.add(a, b, out=out)
        view = a.view(256)
        view[0] = 123.0
    assert torch.equal(prod, expected_prod) and torch.equal(out, expected_sum) and a[0, 0] == 123.0
    assert torch._C._len_torch_dispatch_stack() == 0


def test_matmul_reached_through_getattr_is_reported_with_its_op() -> None:
    a = torch.randn(8, 8)
    problems = call_problems(_watch(lambda: getattr(torch, "m" + "atmul")(a, a)), "triton")
    assert any(p.startswith("[op-count]") and "aten.mm.default x1" in p for p in problems), problems


def test_aten_overload_called_directly_is_reported_with_its_op() -> None:
    a = torch.randn(8, 8)
    problems = call_problems(_watch(lambda: torch.ops.aten.mm.default(a, a)), "triton")
    assert any(p.startswith("[op-count]") and "aten.mm.default x1" in p for p in problems), problems


def test_tensor_dunder_is_reported_with_its_op() -> None:
    a = torch.randn(8, 8)
    problems = call_problems(_watch(lambda: a.__matmul__(a).__add__(1.0)), "cuda")
    op_count = [p for p in problems if p.startswith("[op-count]")]
    assert op_count and "aten.mm.default x1" in op_count[0] and "aten.add.Tensor x1" in op_count[0], problems


def test_nn_module_is_reported_with_its_op() -> None:
    linear = torch.nn.Linear(8, 8)
    x = torch.randn(4, 8)
    problems = call_problems(_watch(lambda: linear(x)), "triton")
    assert any(p.startswith("[op-count]") and "aten.addmm.default" in p for p in problems), problems


def test_kernel_less_candidate_gets_no_launch_and_nothing_else() -> None:
    x = torch.randn(8, 8)
    problems = call_problems(_watch(lambda: torch.empty_like(x).copy_(x)), "triton")
    assert problems == ["[no-launch] the call launched no kernel of its own (Triton or CUDA)"]


def test_python_candidate_may_compute_with_pytorch_and_launch_nothing() -> None:
    a = torch.randn(8, 8)
    record = _watch(lambda: torch.softmax(a @ a, dim=-1))
    assert record.compute_ops and record.launches == 0
    assert call_problems(record, "python") == []


def test_op_report_names_the_most_frequent_ops_first_and_at_most_six() -> None:
    ops = {f"aten.op{i}.default": i for i in range(1, 9)}
    (problem,) = call_problems(CallRecord(compute_ops=ops, launches=1), "triton")
    assert problem == (
        "[op-count] the call computed with PyTorch: aten.op8.default x8, aten.op7.default x7, "
        "aten.op6.default x6, aten.op5.default x5, aten.op4.default x4, aten.op3.default x3, "
        "and 2 more op(s)"
    )


def test_popping_the_op_counter_is_reported_and_the_stack_restored() -> None:
    from torch.utils._python_dispatch import TorchDispatchMode, _pop_mode

    class Passthrough(TorchDispatchMode):
        def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
            return func(*args, **(kwargs or {}))

    a = torch.randn(8, 8)

    def hostile() -> None:
        _pop_mode()
        a @ a
        Passthrough().__enter__()  # and leave another mode behind

    record = _watch(hostile)
    assert record.compute_ops == {} and record.anomalies
    assert any(p.startswith("[monitor]") for p in call_problems(record, "python"))
    assert torch._C._len_torch_dispatch_stack() == 0


def test_launch_counting_alone_pushes_no_dispatch_mode() -> None:
    seen: list[int] = []
    with MONITOR.watch(ops=False) as record:
        seen.append(torch._C._len_torch_dispatch_stack())
        torch.randn(4) @ torch.randn(4)
    assert seen == [0] and record.compute_ops == {} and record.launches == 0


def test_counting_ops_never_imports_dynamo() -> None:
    """torch._dynamo costs seconds to import; a counted call must not pull it in (fresh process)."""
    code = textwrap.dedent(
        """
        import sys, torch
        from ksearch_agent.worker.monitor import CallMonitor
        with CallMonitor().watch() as record:
            torch.ones(3) + 1
        print(record.compute_ops, "torch._dynamo" in sys.modules)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.split() == ["{'aten.add.Tensor':", "1}", "False"], out.stderr[-2000:]


# GPU: the JIT hook, the dispatch seed's bound path, and launches through cuda_launch / cuda.core.


@pytest.mark.gpu
@pytest.mark.parametrize(
    "path", _seeds("rmsnorm", "softmax"), ids=lambda p: f"{p.parent.parent.name}/{p.name}"
)
def test_triton_seed_launches_are_counted_on_the_gpu(path: Path) -> None:
    run = _seed(path).run
    args = _inputs(path.parent.parent.name, "cuda")
    run(*args)  # compile outside the watched call
    record = _watch(lambda: run(*args))
    assert record.launches == 1 and record.compute_ops == {}, record


@pytest.mark.gpu
def test_dispatch_seed_launches_are_counted_on_every_call_on_the_gpu() -> None:
    run = _seed(BUNDLED_TASKS_DIR / "trimul" / "seeds" / "triton_dispatch.py").run
    args = _inputs("trimul", "cuda")
    records = [_watch(lambda: run(*args)) for _ in range(3)]  # later calls would take the bound C launchers
    assert [r.launches for r in records] == [4, 4, 4] and all(r.compute_ops == {} for r in records), records


@pytest.mark.gpu
def test_cuda_seed_launch_is_counted_once_on_the_gpu() -> None:
    run = _seed(BUNDLED_TASKS_DIR / "rmsnorm" / "seeds" / "cuda_rowwise.py").run
    args = _inputs("rmsnorm", "cuda")
    run(*args)
    record = _watch(lambda: run(*args))
    assert record.launches == 1 and record.compute_ops == {}, record
    assert call_problems(record, "cuda") == []


@pytest.mark.gpu
def test_direct_cuda_core_launch_is_counted_on_the_gpu() -> None:
    import cuda.core as core
    from cuda.core import Device, LaunchConfig, Program, ProgramOptions

    device = Device()
    device.set_current()
    arch = "".join(str(v) for v in device.compute_capability)
    code = Program('extern "C" __global__ void nop() {}', "c++", ProgramOptions(arch=f"sm_{arch}")).compile(
        "cubin"
    )
    kernel = code.get_kernel("nop")
    stream = device.create_stream()
    with MONITOR.watch(ops=False) as record:
        core.launch(stream, LaunchConfig(grid=1, block=1), kernel)
        core.launch(stream, LaunchConfig(grid=1, block=1), kernel)
    stream.sync()
    assert record.launches == 2
