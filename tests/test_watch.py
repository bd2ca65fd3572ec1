"""The OS-level watch reports threads and processes a call leaves behind, and nothing a plain call starts.

Every scenario runs in one fresh process (a subreaper, fresh thread pools, TRITON_INTERPRET=1 before
Triton is imported), in a fixed order, each between its own snapshot and check; the tests then read
one scenario's reasons each.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

SCENARIOS = textwrap.dedent("""
    import _thread, importlib.util, json, os, select, sys, threading, time
    import torch
    import triton
    import triton.language as tl
    from ksearch_agent.worker import watch as w

    watch = w.Watch()
    results = {}
    release = threading.Event()


    def scenario(name, call):
        before = watch.snapshot()
        extra = call()
        results[name] = {"problems": watch.check(before), **(extra or {})}


    def parallel_op():
        (torch.ones(1 << 17) + 1).sum()

    scenario("unsettled_parallel_op", parallel_op)
    results["settle"] = w.settle_runtime_threads()

    def torch_ops():
        a = torch.randn(256, 256)
        torch.softmax(a @ a, dim=-1).sum()
        (torch.ones(1 << 17) + 1).sum()

    scenario("torch_cpu_ops", torch_ops)


    @triton.jit
    def double(x_ptr, y_ptr, n, BLOCK: tl.constexpr):
        offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
        tl.store(y_ptr + offs, tl.load(x_ptr + offs, mask=offs < n) * 2, mask=offs < n)

    def triton_call():
        x = torch.randn(100)
        y = torch.empty_like(x)
        double[(2,)](x, y, 100, BLOCK=64)
        return {"correct": bool(torch.equal(y, x * 2))}

    scenario("triton_interpreter", triton_call)
    scenario("raw_thread", lambda: _thread.start_new_thread(release.wait, ()) and None)

    def import_starting_a_thread():
        path = sys.argv[1]
        spec = importlib.util.spec_from_file_location("starts_thread", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)

    scenario("thread_at_import", import_starting_a_thread)


    @torch.jit.script
    def add_one(t: torch.Tensor) -> torch.Tensor:
        return t + 1

    @torch.jit.script
    def forked(t: torch.Tensor) -> torch.Tensor:
        return torch.jit.wait(torch.jit.fork(add_one, t))

    scenario("torchscript_fork", lambda: forked(torch.ones(4)).sum().item() and None)


    def double_fork():
        r, wr = os.pipe()
        if os.fork() == 0:
            grandchild = os.fork()
            if grandchild == 0:
                time.sleep(60)
                os._exit(0)
            os.write(wr, str(grandchild).encode())
            os._exit(0)
        grandchild = int(os.read(r, 64))
        time.sleep(0.2)  # the child has exited: the grandchild is an orphan now
        return {"grandchild": grandchild}

    scenario("double_fork_without_subreaper", double_fork)
    escaped = results["double_fork_without_subreaper"]["grandchild"]
    results["double_fork_without_subreaper"]["grandchild_alive"] = os.path.exists(f"/proc/{escaped}")
    os.kill(escaped, 9)
    results["subreaper"] = w.make_subreaper()
    scenario("double_fork", double_fork)
    gc = results["double_fork"]["grandchild"]
    time.sleep(0.05)
    results["double_fork"]["grandchild_alive"] = os.path.exists(f"/proc/{gc}")


    def forked_copy():
        r, wr = os.pipe()
        before = watch.snapshot()
        pid = os.fork()
        if pid == 0:
            watch.check(before)
            os.write(wr, b"reported")
            os._exit(3)
        _, status = os.waitpid(pid, 0)
        os.close(wr)
        return {"exit_code": os.waitstatus_to_exitcode(status), "wrote": os.read(r, 64).decode()}

    scenario("forked_copy", forked_copy)
    release.set()
    print(json.dumps(results))
""")

STARTS_THREAD = textwrap.dedent("""
    import threading
    import time

    threading.Thread(target=time.sleep, args=(30,), daemon=True).start()
""")


@pytest.fixture(scope="module")
def scenarios(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("watch")
    script, module = root / "scenarios.py", root / "starts_thread.py"
    script.write_text(SCENARIOS)
    module.write_text(STARTS_THREAD)
    env = {**os.environ, "TRITON_INTERPRET": "1", "PYTHONPATH": str(Path(__file__).parent.parent)}
    proc = subprocess.run(
        [sys.executable, str(script), str(module)], capture_output=True, text=True, env=env, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def _tags(problems: list[str]) -> list[str]:
    return [p.split("]")[0] + "]" for p in problems]


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="one core: PyTorch starts no intra-op pool to see")
def test_first_parallel_cpu_op_starts_threads_before_settling(scenarios: dict[str, Any]) -> None:
    assert _tags(scenarios["unsettled_parallel_op"]["problems"]) == ["[threads]"]


def test_torch_cpu_ops_after_settling_are_not_reported(scenarios: dict[str, Any]) -> None:
    assert scenarios["torch_cpu_ops"]["problems"] == []


def test_triton_interpreter_call_is_not_reported(scenarios: dict[str, Any]) -> None:
    assert scenarios["triton_interpreter"] == {"problems": [], "correct": True}


def test_raw_thread_module_thread_is_reported(scenarios: dict[str, Any]) -> None:
    assert _tags(scenarios["raw_thread"]["problems"]) == ["[threads]"]


def test_thread_started_at_import_is_reported(scenarios: dict[str, Any]) -> None:
    assert _tags(scenarios["thread_at_import"]["problems"]) == ["[threads]"]


def test_torchscript_fork_pool_threads_are_reported(scenarios: dict[str, Any]) -> None:
    assert _tags(scenarios["torchscript_fork"]["problems"]) == ["[threads]"]


def test_double_fork_grandchild_is_reported_and_killed_by_a_subreaper(scenarios: dict[str, Any]) -> None:
    result = scenarios["double_fork"]
    assert scenarios["subreaper"] is True
    assert _tags(result["problems"]) == ["[children]"] and result["problems"][0].endswith("(killed)")
    assert "; 2 process(es)" in result["problems"][0] and result["grandchild_alive"] is False


def test_double_fork_grandchild_escapes_without_a_subreaper(scenarios: dict[str, Any]) -> None:
    """The control for the test above: only the exited child is seen, its orphan lives on."""
    result = scenarios["double_fork_without_subreaper"]
    assert "; 1 process(es)" in result["problems"][0] and result["grandchild_alive"] is True


def test_forked_copy_exits_silently_in_check(scenarios: dict[str, Any]) -> None:
    assert scenarios["forked_copy"]["exit_code"] == 0 and scenarios["forked_copy"]["wrote"] == ""
