"""A contestant confined by restrict_self cannot reach the process that started it, and still works.

Each probe is a fresh child process (spawned with subprocess) that confines itself first and then
tries one thing against this test process, its parent. Needs Landlock; every test that does says so.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ksearch_agent.worker.sandbox import landlock_abi

ROOT = Path(__file__).parent.parent
ABI = landlock_abi()
needs_landlock = pytest.mark.skipif(ABI < 1, reason="Landlock is unavailable on this kernel")
needs_scoping = pytest.mark.skipif(ABI < 6, reason=f"Landlock ABI {ABI} < 6 has no signal scoping")
needs_net = pytest.mark.skipif(ABI < 4, reason=f"Landlock ABI {ABI} < 4 has no TCP rules")

PRELUDE = """
import errno, json, os, signal, socket, sys
from ksearch_agent.worker.sandbox import restrict_self
report = restrict_self() if CONFINE else None

def attempt(action):
    try:
        action()
        return "ok"
    except OSError as exc:
        return errno.errorcode.get(exc.errno, str(exc.errno))
"""


def _probe(body: str, *, confine: bool = True, env: dict[str, str] | None = None, timeout: float = 60) -> Any:
    """Run ``body`` in a fresh child (confined first unless told otherwise); it prints one JSON value."""
    code = f"CONFINE = {confine}\n" + PRELUDE + textwrap.dedent(body)
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=full_env, timeout=timeout
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture
def held_pipe() -> Iterator[int]:
    """A pipe whose write end only this process holds (children do not inherit it)."""
    r, w = os.pipe()
    yield w
    os.close(r)
    os.close(w)


@pytest.fixture
def listener() -> Iterator[int]:
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    yield srv.getsockname()[1]
    srv.close()


@needs_landlock
def test_restrict_self_reports_what_it_applied() -> None:
    report = _probe("print(json.dumps(report))")
    assert report["landlock_abi"] == ABI and report["error"] is None and report["no_new_privs"] is True
    assert report["fallback"] is None and report["unrestricted_threads"] == 0
    if ABI >= 6:
        assert report["scoped"] == ["signal", "abstract_unix_socket"]
    if ABI >= 4:
        assert report["net"] == "denied"


@needs_landlock
def test_confined_child_cannot_open_the_parents_memory() -> None:
    assert _probe(f"print(json.dumps(attempt(lambda: open('/proc/{os.getpid()}/mem', 'rb'))))") == "EACCES"


@needs_landlock
def test_confined_child_cannot_reopen_a_pipe_the_parent_holds(held_pipe: int) -> None:
    path = f"/proc/{os.getpid()}/fd/{held_pipe}"
    assert _probe(f"print(json.dumps(attempt(lambda: open('{path}', 'wb'))))") == "EACCES"


@needs_scoping
def test_confined_child_cannot_signal_the_parent() -> None:
    got = _probe(f"""
        stopped = attempt(lambda: os.kill({os.getpid()}, signal.SIGSTOP))
        if stopped == "ok":  # the sandbox failed: wake the test process again before reporting it
            os.kill({os.getpid()}, signal.SIGCONT)
        print(json.dumps([attempt(lambda: os.kill({os.getpid()}, 0)), stopped]))
    """)
    assert got == ["EPERM", "EPERM"]


@needs_net
@pytest.mark.enable_socket
def test_confined_child_cannot_connect_to_a_loopback_listener(listener: int) -> None:
    got = _probe(
        f"print(json.dumps(attempt(lambda: socket.create_connection(('127.0.0.1', {listener}), 5))))"
    )
    assert got == "EACCES"


@pytest.mark.enable_socket
def test_unconfined_child_can_do_all_of_it(held_pipe: int, listener: int) -> None:
    """The control for the four tests above (root here: /proc access needs no extra capability)."""
    if os.geteuid() != 0:
        pytest.skip("the /proc probes of the control need root")
    parent = os.getpid()
    got = _probe(
        f"""
        print(json.dumps([attempt(lambda: open('/proc/{parent}/mem', 'rb')),
                          attempt(lambda: open('/proc/{parent}/fd/{held_pipe}', 'wb')),
                          attempt(lambda: os.kill({parent}, 0)),
                          attempt(lambda: socket.create_connection(('127.0.0.1', {listener}), 5))]))
    """,
        confine=False,
    )
    assert got == ["ok", "ok", "ok", "ok"]


@needs_landlock
def test_thread_started_before_confinement_stays_outside_the_domain() -> None:
    """Why restrict_self must run while the process has one thread (Landlock ABI < 8 has no TSYNC)."""
    if ABI >= 8:
        pytest.skip("ABI >= 8 restricts every thread (LANDLOCK_RESTRICT_SELF_TSYNC)")
    got = _probe(
        f"""
        import threading
        go, done, seen = threading.Event(), threading.Event(), []
        def early():
            go.wait()
            seen.append(attempt(lambda: os.kill({os.getpid()}, 0)))
            done.set()
        threading.Thread(target=early).start()
        report = restrict_self()
        go.set()
        done.wait()
        print(json.dumps([report["unrestricted_threads"], seen[0], attempt(lambda: os.kill({os.getpid()}, 0))]))
    """,
        confine=False,
    )
    assert got == [1, "ok", "EPERM" if ABI >= 6 else "ok"]


@needs_landlock
def test_exec_wrapper_confines_the_program_it_runs() -> None:
    code = f"""
import errno, json, os
try:
    open('/proc/{os.getpid()}/mem', 'rb')
    mem = 'ok'
except OSError as exc:
    mem = errno.errorcode[exc.errno]
print(json.dumps([json.loads(os.environ['KSEARCH_SANDBOX'])['landlock_abi'], mem]))
"""
    proc = subprocess.run(
        [sys.executable, "-m", "ksearch_agent.worker.sandbox", sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=30,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout) == [ABI, "EACCES"]


# What a confined contestant must still be able to do: one child does all of it, each test reads one.

WORKLOAD = """
import tempfile
results = {}
import torch
results["import_torch"] = True
results["torch_op"] = float((torch.ones(4, 4) @ torch.ones(4, 4)).sum())
import triton
import triton.language as tl

@triton.jit
def double(x_ptr, y_ptr, n, BLOCK: tl.constexpr):
    offs = tl.arange(0, BLOCK)
    tl.store(y_ptr + offs, tl.load(x_ptr + offs, mask=offs < n) * 2, mask=offs < n)

x = torch.arange(8, dtype=torch.float32)
y = torch.empty_like(x)
double[(1,)](x, y, 8, BLOCK=8)
results["triton_interpreter"] = y.tolist() == (x * 2).tolist()
with tempfile.NamedTemporaryFile("w", delete=False) as f:
    f.write("written")
results["temp_file"] = open(f.name).read() == "written"
os.unlink(f.name)
results["own_tasks"] = len(os.listdir("/proc/self/task")) >= 1
results["own_signal"] = attempt(lambda: os.kill(os.getpid(), 0))
print(json.dumps(results))
"""


@pytest.fixture(scope="module")
def confined_workload() -> dict[str, Any]:
    if ABI < 1:
        pytest.skip("Landlock is unavailable on this kernel")
    return _probe(WORKLOAD, env={"TRITON_INTERPRET": "1"}, timeout=120)  # type: ignore[no-any-return]


def test_confined_child_can_import_torch(confined_workload: dict[str, Any]) -> None:
    assert confined_workload["import_torch"] is True


def test_confined_child_can_run_a_torch_op(confined_workload: dict[str, Any]) -> None:
    assert confined_workload["torch_op"] == 64.0


def test_confined_child_can_run_a_triton_interpreter_kernel(confined_workload: dict[str, Any]) -> None:
    assert confined_workload["triton_interpreter"] is True


def test_confined_child_can_write_a_temp_file(confined_workload: dict[str, Any]) -> None:
    assert confined_workload["temp_file"] is True


def test_confined_child_can_read_its_own_tasks_and_signal_itself(confined_workload: dict[str, Any]) -> None:
    assert confined_workload["own_tasks"] is True and confined_workload["own_signal"] == "ok"


# The judge's side, and the fallback for kernels without Landlock.

JUDGE = """
import json, os, subprocess, sys, time
from ksearch_agent.worker.sandbox import protect_judge
report = protect_judge()
# a child that forks a grandchild and exits: the grandchild must be re-parented to us
child = subprocess.Popen([sys.executable, "-c", "import os, time\\nif os.fork() == 0:\\n    time.sleep(30)\\n"
                          "else:\\n    print(os.getpid(), flush=True)"], stdout=subprocess.PIPE, text=True)
child.wait()
time.sleep(0.1)
orphans = [int(p) for p in open(f"/proc/{os.getpid()}/task/{os.getpid()}/children").read().split()]
for pid in orphans:
    os.kill(pid, 9)
    os.waitpid(pid, 0)
# a same-user process without CAP_SYS_PTRACE (the fallback's state) must not read our memory
probe = '''
import errno, json, os, sys
from ksearch_agent.worker.sandbox import _drop_capabilities, _libc
dropped = _drop_capabilities(_libc()) if sys.argv[1] == "drop" else {"dropped": []}
def attempt(action):
    try:
        action()
        return "ok"
    except OSError as exc:
        return errno.errorcode.get(exc.errno, str(exc.errno))
print(json.dumps([dropped["dropped"], attempt(lambda: open("/proc/%d/mem", "rb")),
                  attempt(lambda: os.kill(%d, 0))]))
''' % (os.getpid(), os.getpid())
runs = {how: subprocess.run([sys.executable, "-c", probe, how], capture_output=True, text=True)
        for how in ("drop", "keep")}
print(json.dumps({"report": report, "orphans": len(orphans),
                  "fallback": json.loads(runs["drop"].stdout or "null"),
                  "control": json.loads(runs["keep"].stdout or "null"),
                  "stderr": runs["drop"].stderr[-1000:] + runs["keep"].stderr[-1000:]}))
"""


@pytest.fixture(scope="module")
def judge() -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-c", JUDGE],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def test_protect_judge_makes_it_undumpable_and_a_subreaper(judge: dict[str, Any]) -> None:
    assert judge["report"] == {"dumpable": False, "subreaper": True, "error": None}


def test_protected_judge_inherits_a_contestants_orphaned_grandchild(judge: dict[str, Any]) -> None:
    assert judge["orphans"] == 1


def test_fallback_without_ptrace_capability_cannot_read_a_protected_judge(judge: dict[str, Any]) -> None:
    if os.geteuid() != 0:
        pytest.skip("the capability fallback applies to root only")
    assert judge["fallback"][:2] == [["CAP_KILL", "CAP_SYS_PTRACE"], "EACCES"], judge["stderr"]
    assert judge["control"][1] == "ok", "root with CAP_SYS_PTRACE should read it: the probe proves nothing"


def test_fallback_cannot_stop_signals_to_a_same_user_judge(judge: dict[str, Any]) -> None:
    """The fallback's known weakness: kill permission between processes of one user needs no capability."""
    if os.geteuid() != 0:
        pytest.skip("the capability fallback applies to root only")
    assert judge["fallback"][2] == "ok"


def test_signal_scope_leaves_the_parents_own_signals_alone() -> None:
    """Confinement is one-way: the unconfined parent can still signal (and kill) the confined child."""
    if ABI < 6:
        pytest.skip(f"Landlock ABI {ABI} < 6 has no signal scoping")
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from ksearch_agent.worker.sandbox import restrict_self\n"
            "import time\nrestrict_self()\nprint('ready', flush=True)\ntime.sleep(30)",
        ],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert child.stdout is not None and child.stdout.readline().strip() == "ready"
    os.kill(child.pid, signal.SIGKILL)
    assert child.wait(timeout=10) == -signal.SIGKILL
