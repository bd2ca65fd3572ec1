"""compile: Triton and CUDA to sm_90a without a GPU, with statistics, source-located errors and a cache."""

from __future__ import annotations

from conftest import candidate, seed

from ksearch_agent.engine import Engine
from ksearch_agent.task import load_task


def test_triton_seed_compiles_for_sm90_with_resource_figures(cpu_engine: Engine) -> None:
    res = cpu_engine.compile(load_task("rmsnorm"), seed("rmsnorm", "triton_rowwise.py"))
    assert res.ok and res.status == "OK" and res.arch == "sm_90a"
    (k,) = res.kernels
    assert k.name == "_rmsnorm_row" and k.registers and k.registers > 0
    assert k.sass_instructions and k.sass_instructions > 20 and k.tensor_cores is False


def test_triton_compile_error_names_the_source_line(cpu_engine: Engine) -> None:
    res = cpu_engine.compile(load_task("rmsnorm"), candidate("rmsnorm_compile_error.py"))
    assert not res.ok and res.status == "COMPILE_ERROR"
    text = "\n".join(res.errors)
    assert "undefined_scale" in text and "rmsnorm_compile_error.py line 12" in text


def test_cuda_seed_compiles_with_nvrtc_and_ptxas_statistics(cpu_engine: Engine) -> None:
    res = cpu_engine.compile(load_task("rmsnorm"), seed("rmsnorm", "cuda_rowwise.py"))
    assert res.ok and res.language == "cuda"
    (k,) = res.kernels
    assert k.name == "rmsnorm_bf16" and k.registers and k.spill_stores == 0 and k.shared_bytes == 128


def test_cuda_syntax_error_comes_back_with_the_nvrtc_log(cpu_engine: Engine) -> None:
    res = cpu_engine.compile(load_task("rmsnorm"), candidate("rmsnorm_cuda_broken.py"))
    assert res.status == "COMPILE_ERROR"
    assert "broken.cu(3)" in res.errors[0] and "error" in res.errors[0]


def test_second_compile_of_the_same_sources_is_a_cache_hit(cpu_engine: Engine) -> None:
    task, cand = load_task("softmax"), seed("softmax", "triton_rowwise.py")
    first = cpu_engine.compile(task, cand)
    second = cpu_engine.compile(task, cand)
    assert first.ok and second.cached and second.kernels == first.kernels


def test_ncu_csv_is_parsed_per_kernel_launch() -> None:
    from ksearch_agent.ncu import parse_ncu_csv

    text = (
        "==PROF== Connected to process 1\n"
        '"ID","Process ID","Kernel Name","Section Name","Metric Name","Metric Unit","Metric Value"\n'
        '"0","1","rmsnorm_bf16","Command line profiler metrics","dram__throughput.avg.pct_of_peak_sustained_elapsed","%","81.5"\n'
        '"0","1","rmsnorm_bf16","Command line profiler metrics","sm__warps_active.avg.pct_of_peak_sustained_active","%","55.25"\n'
        '"1","1","other","Command line profiler metrics","gpu__time_duration.sum","ns","1,024"\n'
    )
    kernels = parse_ncu_csv(text)
    assert kernels == [
        {"kernel": "rmsnorm_bf16", "dram_throughput_pct": 81.5, "achieved_occupancy_pct": 55.25},
        {"kernel": "other", "duration_ns": 1024.0},
    ]


def test_triton_tensor_descriptor_arguments_compile_to_tma_kernels(cpu_engine: Engine) -> None:
    """The TriMul dispatch seed passes host-side TMA descriptors; the compile tool types them and builds sm_90a."""
    res = cpu_engine.compile(load_task("trimul"), seed("trimul", "triton_dispatch.py"))
    assert res.ok and res.status == "OK", res.errors
    names = {k.name for k in res.kernels}
    assert "_proj_rowres" in names and "_pack_weights" in names and "_output" in names
