"""GPU behaviour of the engine (marked ``gpu``: skipped without one, run through the device tool)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import candidate, seed

from ksearch_agent.candidate import Candidate
from ksearch_agent.engine import Engine
from ksearch_agent.task import load_task
from ksearch_agent.worker.profile_job import (
    MIN_INTERLEAVED_NULLS,
    MIN_ROUNDS,
    MIN_STRIDED_CALLS,
    PLAUSIBLE_FLOOR_FRACTION,
)

pytestmark = pytest.mark.gpu


def _rmsnorm_copy(tmp_path: Path, name: str) -> Path:
    """A copy of the bundled rmsnorm task to edit (its reference or definition) for one test."""
    import shutil

    from ksearch_agent.task import BUNDLED_TASKS_DIR

    task_dir = tmp_path / name
    shutil.copytree(BUNDLED_TASKS_DIR / "rmsnorm", task_dir)
    return task_dir


@pytest.fixture(scope="module")
def gpu_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    root = tmp_path_factory.mktemp("gpu")
    with Engine(device="gpu", workdir=root / "w", cache_dir=root / "c") as engine:
        yield engine


@pytest.mark.parametrize("name", ["triton_simple.py", "triton_dispatch.py"])
def test_trimul_seed_passes_all_tests_and_benchmarks_on_the_gpu(gpu_engine: Engine, name: str) -> None:
    res = gpu_engine.run_correctness(load_task("trimul"), seed("trimul", name))
    assert res.checked == "gpu" and len(res.workloads) == 25 + 2  # and two unlisted shapes
    assert res.status == "PASSED", [
        (w.workload, w.status, w.log[:200]) for w in res.workloads if w.status != "PASSED"
    ]


def test_gpumode_submission_is_accepted_on_the_gpu(gpu_engine: Engine) -> None:
    task = load_task("trimul")
    ids = [w.id for w in task.workloads[:3]]
    res = gpu_engine.run_correctness(task, seed("trimul", "triton_simple.py", api="gpumode"), ids)
    assert res.status == "PASSED"


def test_profile_times_candidate_and_reference_in_the_same_worker(gpu_engine: Engine) -> None:
    res = gpu_engine.profile(load_task("rmsnorm"), seed("rmsnorm", "triton_rowwise.py"), ["b4096"])
    (w,) = res.workloads
    assert res.measured and ("H100" in res.device or "H200" in res.device)
    assert (
        w.latency_ms
        and w.reference_latency_ms
        and w.speedup == pytest.approx(w.reference_latency_ms / w.latency_ms)
    )
    # Writes that stay in the L2 let an honest kernel beat bytes / copy bandwidth a little (0.90x on the H100).
    assert w.plausible and 0 < (w.roofline_fraction or 0) <= 1 / PLAUSIBLE_FLOOR_FRACTION
    assert res.ceilings["copy_gbps"] > 500 and res.ceilings["bf16_tflops"] > 100


def test_each_sides_fixed_cost_is_timed_beside_its_calls_on_the_gpu(gpu_engine: Engine) -> None:
    res = gpu_engine.profile(load_task("rmsnorm"), seed("rmsnorm", "triton_rowwise.py"), ["b4096"])
    (w,) = res.workloads
    assert w.status == "PASSED", w.log
    assert set(w.fixed_costs) == set(w.timed_calls) == {"candidate", "reference"}
    assert w.timed_calls["candidate"] >= MIN_ROUNDS and w.timed_calls["reference"] >= MIN_STRIDED_CALLS
    for side in w.fixed_costs.values():
        assert side.null_calls >= MIN_INTERLEAVED_NULLS and 0 < side.ms < 0.5


def test_hot_protocol_is_measured_checked_and_no_slower_than_flushed(gpu_engine: Engine) -> None:
    rms, rowwise = load_task("rmsnorm"), seed("rmsnorm", "triton_rowwise.py")
    hot = gpu_engine.profile(rms, rowwise, ["b4096"], protocol="hot")
    flushed = gpu_engine.profile(rms, rowwise, ["b4096"])
    (h,), (f,) = hot.workloads, flushed.workloads
    assert hot.protocol == "hot" and h.status == "PASSED", h.log
    assert h.model_extra and h.model_extra["checked_calls"] >= 1  # its timed outputs were checked too
    assert h.latency_ms and f.latency_ms and h.latency_ms <= 1.05 * f.latency_ms


def test_cuda_seed_runs_through_nvrtc_and_cuda_core(gpu_engine: Engine) -> None:
    assert (
        gpu_engine.run_correctness(load_task("rmsnorm"), seed("rmsnorm", "cuda_rowwise.py")).status
        == "PASSED"
    )


def test_illegal_memory_access_ends_only_its_contestant(gpu_engine: Engine) -> None:
    rms = load_task("rmsnorm")
    starts = gpu_engine.worker("gpu").starts
    bad = gpu_engine.run_correctness(rms, candidate("rmsnorm_illegal_address.py"), ["b64"])
    assert bad.status == "RUNTIME_ERROR" and "illegal memory access" in bad.workloads[0].log
    good = gpu_engine.run_correctness(rms, seed("rmsnorm", "triton_rowwise.py"), ["b64"])
    assert (
        good.status == "PASSED" and gpu_engine.worker("gpu").starts == starts
    )  # the judge's context survived


def test_hanging_kernel_is_killed_and_the_gpu_reused(gpu_engine: Engine, tmp_path: Path) -> None:
    rms = load_task("rmsnorm")
    hung = gpu_engine.run_correctness(rms, candidate("rmsnorm_hang.py"), ["b64"], timeout=8)
    assert hung.status == "TIMEOUT"
    assert gpu_engine.run_correctness(rms, seed("rmsnorm", "triton_rowwise.py"), ["b64"]).status == "PASSED"


def test_out_of_gpu_memory_is_a_runtime_error_and_the_worker_carries_on(gpu_engine: Engine) -> None:
    rms = load_task("rmsnorm")
    res = gpu_engine.run_correctness(rms, candidate("rmsnorm_oom.py"), ["b64"])
    assert res.status == "RUNTIME_ERROR" and "out of GPU memory" in res.workloads[0].log
    assert gpu_engine.run_correctness(rms, seed("rmsnorm", "triton_rowwise.py"), ["b64"]).status == "PASSED"


def test_side_stream_work_is_caught_at_run_time_without_the_screen(tmp_path: Path) -> None:
    from ksearch_agent.candidate import Candidate

    cheat = Path(__file__).parent / "cheats" / "rmsnorm_03_side_stream.py"
    with Engine(device="gpu", workdir=tmp_path / "w", cache_dir=tmp_path / "c", screening=False) as engine:
        res = engine.run_correctness(load_task("rmsnorm"), Candidate.from_path(cheat), ["b64"])
    assert res.status == "REJECTED" and "CUDA stream" in res.workloads[0].log


@pytest.mark.parametrize("dim", [128, 384])
def test_dispatch_seed_direct_launches_follow_new_values_and_unaligned_inputs(dim: int) -> None:
    """After a shape's first call the dispatch seed launches through the compiled kernels' own launchers
    with a workspace it keeps: new values written into the same tensors must change the result; an input
    that is not 16-byte aligned must take the JIT path and still be right; a call on another stream
    rebinds with its own workspace; a rebind that fails leaves nothing bound; shapes that push the plan
    out of the bound set come back right."""
    import importlib.util
    import sys

    import torch

    from ksearch_agent.task import BUNDLED_TASKS_DIR

    sys.path.insert(0, str(BUNDLED_TASKS_DIR / "trimul"))
    import reference  # type: ignore[import-not-found]

    spec = importlib.util.spec_from_file_location(
        "dispatch_direct", BUNDLED_TASKS_DIR / "trimul" / "seeds" / "triton_dispatch.py"
    )
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    torch.manual_seed(0)
    n = 64

    def fresh(n: int = n) -> list[torch.Tensor]:
        args = [
            torch.randn(1, n, n, dim),
            (torch.rand(1, n, n) > 0.5).float(),
            torch.randn(dim),
            torch.randn(dim),
        ]
        args += [torch.randn(128, dim) / 128**0.5 for _ in range(5)]
        args += [torch.randn(128), torch.randn(128), torch.randn(dim, 128) / dim**0.5]
        return [a.cuda() for a in args]

    def close(out: torch.Tensor, ref: torch.Tensor) -> bool:
        return bool(((out - ref).abs() <= 0.02 + 0.02 * ref.abs()).all())

    args = fresh()
    first = mod.run(*args)
    (plan,) = mod._PLANS.values()
    projection = (
        plan.proj if plan.resident else plan.gemm
    )  # dim 128: resident projection; 384: LN pass + GEMM
    assert (
        plan.direct and plan.ws is not None and plan.out.launch is not None and projection.launch is not None
    )
    assert close(first, reference.run(*args))
    for a, b in zip(args, fresh(), strict=True):
        a.copy_(b)  # same pointers, new values
    assert close(mod.run(*args), reference.run(*args))
    unaligned = torch.empty(args[0].numel() + 1, device="cuda")[1:].view(args[0].shape)
    unaligned.copy_(args[0])
    assert close(mod.run(unaligned, *args[1:]), reference.run(*args))
    kept = plan.ws
    side = torch.cuda.Stream()
    with torch.cuda.stream(side):
        on_side = mod.run(*args)
    side.synchronize()
    assert close(on_side, reference.run(*args)) and plan.ws is not None and plan.ws is not kept
    expander = mod.__dict__["_descriptor_expander"]
    mod.__dict__["_descriptor_expander"] = lambda: (
        None
    )  # a Triton whose launcher layout the seed does not know
    third = torch.cuda.Stream()
    with torch.cuda.stream(third):
        unknown = mod.run(*args)  # the rebind for this stream fails: nothing stays bound
    third.synchronize()
    assert close(unknown, reference.run(*args)) and plan.ws is None and plan not in mod._BOUND
    assert close(mod.run(*args), reference.run(*args)) and plan.ws is None  # every call through the JIT
    mod.__dict__["_descriptor_expander"] = expander
    for m in (32, 48, 80):  # three other shapes: the first of them is pushed out of the bound set
        other = fresh(m)
        assert close(mod.run(*other), reference.run(*other))
    assert (
        len(mod._BOUND) == mod._MAX_BOUND
        and mod._PLANS[(torch.Size([1, 32, 32, dim]), torch.Size([128, dim]), args[0].device)].ws is None
    )
    assert close(mod.run(*args), reference.run(*args)) and plan.ws is not None  # bound again
    assert close(mod.run(*args), reference.run(*args)) and len(mod._BOUND) == mod._MAX_BOUND


def test_contestant_is_sandboxed_and_started_ahead_of_need_on_the_gpu(gpu_engine: Engine) -> None:
    gpu_engine.run_correctness(load_task("rmsnorm"), seed("rmsnorm", "triton_rowwise.py"), ["b64"])
    info = gpu_engine.last_contestant
    assert info["sandbox"].get("landlock_abi") or info["sandbox"].get("fallback")
    assert info["waited_seconds"] < info["start_seconds"]  # the spare had started before it was needed


def _unscreened_candidate(tmp_path: Path, body: str) -> Candidate:
    source = (Path(__file__).parent.parent / "tasks" / "rmsnorm" / "seeds" / "triton_rowwise.py").read_text()
    path = tmp_path / "cand.py"
    path.write_text(source + "\n" + body)
    return Candidate.from_path(path)


def test_a_timer_that_under_reports_is_refused_by_the_judges_wall_clock(tmp_path: Path) -> None:
    """The candidate patches the contestant's event timing to claim a tenth of the real time, and stretches
    each call so the lie is large; the judge compares with its own wall clock."""
    cand = _unscreened_candidate(
        tmp_path,
        """
import time as _t
import torch as _torch
_orig_elapsed = _torch.cuda.Event.elapsed_time
_torch.cuda.Event.elapsed_time = lambda self, other: _orig_elapsed(self, other) / 10
_run = run
def run(*args):
    _t.sleep(0.003)
    return _run(*args)
""",
    )
    with Engine(device="gpu", workdir=tmp_path / "w", cache_dir=tmp_path / "c", screening=False) as engine:
        res = engine.profile(load_task("rmsnorm"), cand, ["b4096"])
    (w,) = res.workloads
    assert w.status == "REJECTED" and "[timing]" in w.log and w.latency_ms is None


def test_right_while_checked_then_stale_while_timed_fails_on_the_gpu(tmp_path: Path) -> None:
    """Correct for its first calls, then it replays its first output: the judge's checks of sampled
    timed calls (on their own fresh inputs) catch it."""
    cand = _unscreened_candidate(
        tmp_path,
        """
_calls = [0]
_first = []
_run = run
def run(*args):
    _calls[0] += 1
    if _calls[0] <= 12 or not _first:
        out = _run(*args)
        _first[:] = [out]
        return out
    return _first[0]
""",
    )
    with Engine(device="gpu", workdir=tmp_path / "w", cache_dir=tmp_path / "c", screening=False) as engine:
        report = engine.evaluate(load_task("rmsnorm"), cand, ["b64", "b4096"])
    assert report.correctness.status == "PASSED" and report.status in (
        "INCORRECT_NUMERICAL",
        "INCORRECT_SHAPE",
    )
    assert report.profile is not None and all("[timed-output]" in w.log for w in report.profile.workloads)


def _host_work_timer() -> tuple[Any, Callable[[float], float]]:
    """The judge's timer and a function giving its median net time (fixed cost subtracted) of a call that busy-waits
    ``host_s`` on the host and then launches one tiny kernel."""
    import time

    import torch

    from ksearch_agent.worker.timing import Timer

    timer = Timer(torch.device("cuda", 0))
    x = torch.ones(1024, device="cuda")

    def slow_host(host_s: float) -> None:
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < host_s:
            pass
        x.mul_(1.0)

    def median_net(host_s: float) -> float:
        times = sorted(timer.call_ms(slow_host, [host_s]) for _ in range(21))
        return times[10] - timer.sync_overhead_ms()

    return timer, median_net


def test_launch_overlap_hides_host_work_up_to_its_length_and_not_beyond() -> None:
    timer, median_net = _host_work_timer()
    timer.lead_us = 0.0
    idle = median_net(150e-6)
    timer.lead_us = 300.0
    hidden = median_net(150e-6)
    beyond = median_net(600e-6)
    assert idle > 0.12, idle  # from an idle GPU the host work is timed
    assert hidden < 0.05, hidden  # within the spin it is hidden
    assert beyond > 0.2, beyond  # past the spin the rest is timed again


def test_the_judge_lends_gpu_slabs_as_vmm_memory_not_legacy_ipc() -> None:
    import torch

    from ksearch_agent.worker.slab import EXPORTED, FALLBACKS, Slab

    slab = Slab.create(3 << 20, torch.device("cuda", 0))
    try:
        assert slab.handle()["kind"] == "cuda_vmm", FALLBACKS
        assert slab.handle()["size"] % (2 << 20) == 0
        assert slab.export_fd is not None and slab.handle()["id"] in EXPORTED
    finally:
        slab.close()
    assert slab.handle()["id"] not in EXPORTED


def test_a_candidate_may_use_the_memory_the_reference_needed_on_the_gpu(tmp_path: Path) -> None:
    """The judge computes each trial's expected outputs in its own process; PyTorch's allocator would keep
    that peak. A reference and a candidate that each take 55% of the card pass only if the judge hands
    the reference's memory back before the contestant runs."""
    import torch

    share = int(torch.cuda.get_device_properties(0).total_memory * 0.55)
    task_dir = _rmsnorm_copy(tmp_path, "rmsnorm_greedy")
    ref = task_dir / "reference.py"
    ref.write_text(
        ref.read_text().replace(
            "    x = hidden_states.to(torch.float32)\n",
            f"    torch.empty({share}, dtype=torch.uint8, device=hidden_states.device).zero_()\n"
            "    x = hidden_states.to(torch.float32)\n",
        )
    )
    assert f"torch.empty({share}" in ref.read_text(), "the reference was not made greedy"
    greedy = tmp_path / "greedy.py"
    rowwise = task_dir / "seeds" / "triton_rowwise.py"
    greedy.write_text(
        rowwise.read_text() + f"\n\n_run = run\n\n\ndef run(hidden_states, weight):\n"
        f"    scratch = torch.empty({share}, dtype=torch.uint8, device=hidden_states.device)\n"
        "    del scratch\n    return _run(hidden_states, weight)\n"
    )
    with Engine(device="gpu", workdir=tmp_path / "w", cache_dir=tmp_path / "c") as engine:
        res = engine.run_correctness(load_task(task_dir), Candidate.from_path(greedy), ["b64"])
    assert res.status == "PASSED", [(w.status, w.log[:300]) for w in res.workloads]


@pytest.mark.parametrize("timing", ["cached", "interleaved"])
def test_a_task_with_cached_reference_timing_divides_every_candidate_by_one_reference_time(
    tmp_path: Path, timing: str
) -> None:
    """Two evaluations in one judge, then one in a second engine's judge that shares the first engine's table:
    with the task's ``reference_timing`` cached all three report the very same reference time (so a search,
    scaled out or not, ranks its candidates by their own times); interleaved re-times it each time."""
    import json

    task_dir = _rmsnorm_copy(tmp_path, "rmsnorm_timing")
    definition = json.loads((task_dir / "definition.json").read_text())
    (task_dir / "definition.json").write_text(json.dumps({**definition, "reference_timing": timing}))
    task = load_task(task_dir)
    kernel = seed("rmsnorm", "triton_rowwise.py")
    with Engine(device="gpu", workdir=tmp_path / "w", cache_dir=tmp_path / "c") as engine:
        first, second = (engine.profile(task, kernel, ["b4096"]).workloads[0] for _ in range(2))
        table = engine.reference_times
    with Engine(
        device="gpu", workdir=tmp_path / "w2", cache_dir=tmp_path / "c", reference_times=table
    ) as other:
        third = other.profile(task, kernel, ["b4096"]).workloads[0]
    times = [w.reference_latency_ms for w in (first, second, third)]
    assert all(times)
    assert (len(set(times)) == 1) is (timing == "cached"), times


def test_a_candidate_that_leaves_no_device_memory_fails_closed_with_a_clear_error(
    tmp_path: Path,
) -> None:
    """A candidate that takes all but 40 MiB of the card at import starves whichever side needs memory first:
    the judge making the trial's inputs and expected outputs (it did on the H100), or the contestant's NaN fill
    before the call (64 MiB and up; without it an unwritten output could hold an earlier result). Either way
    the candidate fails with a runtime error that says so, not a judge error with PyTorch's message."""
    rowwise = Path(__file__).parent.parent / "tasks" / "rmsnorm" / "seeds" / "triton_rowwise.py"
    hog = tmp_path / "hog.py"
    hog.write_text(
        rowwise.read_text()
        + "\n\n_free, _ = torch.cuda.mem_get_info()\n_HOG = torch.empty(_free - (40 << 20), dtype=torch.uint8, "
        "device='cuda')\n"
    )
    with Engine(device="gpu", workdir=tmp_path / "w", cache_dir=tmp_path / "c") as engine:
        res = engine.run_correctness(load_task("rmsnorm"), Candidate.from_path(hog), ["b64"])
    log = res.workloads[0].log
    assert res.status == "RUNTIME_ERROR"
    assert log.startswith(("out of GPU memory while the judge made", "out of GPU memory before the call")), (
        log
    )
    assert "Traceback" not in log


def test_the_candidates_timed_calls_run_with_the_garbage_collector_paused(tmp_path: Path) -> None:
    """The judge times the library and the reference with its collector off; a collection inside a candidate's
    timed region would land on the candidate's figure alone. The candidate logs the collector's state per call."""
    cand = _unscreened_candidate(
        tmp_path,
        """
import gc as _gc
_run = run
def run(*args):
    print("collector", "on" if _gc.isenabled() else "off", flush=True)
    return _run(*args)
""",
    )
    with Engine(device="gpu", workdir=tmp_path / "w", cache_dir=tmp_path / "c", screening=False) as engine:
        res = engine.profile(load_task("rmsnorm"), cand, ["b4096"])
    assert res.workloads[0].status == "PASSED", res.workloads[0].log
    states = [
        line.split()[1]
        for log in (tmp_path / "w").rglob("contestant-gpu-*.log")
        for line in log.read_text(errors="replace").splitlines()
        if line.startswith("collector ")
    ]
    assert states.count("off") >= MIN_ROUNDS, states[:20]


def test_launch_gate_keeps_host_launch_work_out_of_the_figure() -> None:
    """Behind the gate the timed region starts once the call has returned, however long its host work took."""
    timer, median_net = _host_work_timer()
    timer.lead_us = 200.0
    spun = median_net(800e-6)
    timer.gate_us = 5000.0
    gated = median_net(800e-6)
    assert spun > 0.4, spun  # past the spin the host work is timed
    assert gated < 0.05, gated  # behind the gate none of it is


def test_nothing_on_another_stream_runs_under_the_launch_gate() -> None:
    """The gate fills every SM: a kernel a call puts on a side stream while the gate holds starts after it."""
    import time

    import numpy as np
    import torch

    from ksearch_agent.cuda_launch import load_cuda
    from ksearch_agent.worker.gate import Gate

    stamp = load_cuda(
        'extern "C" __global__ void stamp(unsigned long long* out) {\n'
        "  unsigned long long t;\n"
        '  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));\n'
        "  *out = t;\n"
        "}\n",
        name="stamp.cu",
    )
    times = torch.zeros(2, dtype=torch.int64, device="cuda")
    side = torch.cuda.Stream()
    gate = Gate(torch.device("cuda", 0))
    for _ in range(5):
        torch.cuda.synchronize()
        gate.close(20_000.0)
        stamp.launch("stamp", grid=(1,), block=(1,), args=(np.uintp(times.data_ptr()),))  # after the gate
        with torch.cuda.stream(side):
            stamp.launch("stamp", grid=(1,), block=(1,), args=(np.uintp(times.data_ptr() + 8),))
        time.sleep(0.002)  # the side kernel is queued for 2 ms while the gate holds
        gate.open()
        torch.cuda.synchronize()
        main_ns, side_ns = times.tolist()
        assert side_ns >= main_ns - 20_000, (main_ns, side_ns)  # not ~2 ms before the gate opened
