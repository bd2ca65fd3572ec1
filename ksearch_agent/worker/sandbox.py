"""Keeping the contestant out of other processes (the judge, the app that started it) with Landlock.

A Landlock domain cannot ptrace any process outside it, and everything that needs ptrace access goes
with it: ``/proc/<pid>/mem``, ``/proc/<pid>/fd/*`` (reopening another process's pipes), ``environ``,
``pidfd_getfd``. With Landlock ABI >= 6 the domain is also scoped: no signals to processes outside it
and no connecting to abstract unix sockets bound outside it; with ABI >= 4 every TCP bind and connect
is denied. The filesystem is left alone (CUDA, /dev/nvidia*, /dev/shm and Triton's caches must keep
working); where the ruleset would handle nothing else, it handles ``MAKE_BLOCK`` (creating block
devices), which nothing here needs, so that it is valid.

Landlock restricts the calling thread and the threads and processes it starts afterwards. Before
ABI 8 (``LANDLOCK_RESTRICT_SELF_TSYNC``) threads that already exist stay unrestricted, and code that
can write its own process's memory can run on them: call :func:`restrict_self` while the process has
one thread (first thing in the contestant, before torch, numpy or CUDA start theirs). The number of
threads left unrestricted is reported.

Where Landlock is unavailable and we run as root, the fallback drops ``CAP_SYS_PTRACE`` and
``CAP_KILL`` from this thread's effective, permitted and inheritable sets and from the bounding set.
That stops ptrace of a non-dumpable judge (see :func:`protect_judge`) but not signals to processes of
the same user: it is weaker, and reported as such.

Only the standard library is used (ctypes syscalls), and nothing raises: what could not be applied
is reported in the returned dict.
"""

from __future__ import annotations

import ctypes
import os
import platform
from typing import Any

# Syscall numbers are the same on x86_64 and aarch64 for Landlock (the generic table).
SYS_LANDLOCK_CREATE_RULESET = 444
SYS_LANDLOCK_RESTRICT_SELF = 446
SYS_CAPGET = {"x86_64": 125, "aarch64": 90}
SYS_CAPSET = {"x86_64": 126, "aarch64": 91}

LANDLOCK_CREATE_RULESET_VERSION = 1 << 0
LANDLOCK_ACCESS_FS_MAKE_BLOCK = 1 << 11
LANDLOCK_ACCESS_NET_BIND_TCP = 1 << 0
LANDLOCK_ACCESS_NET_CONNECT_TCP = 1 << 1
LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET = 1 << 0
LANDLOCK_SCOPE_SIGNAL = 1 << 1
LANDLOCK_RESTRICT_SELF_TSYNC = 1 << 3  # ABI 8: restrict every thread of the process

PR_SET_DUMPABLE = 4
PR_CAPBSET_DROP = 24
PR_SET_CHILD_SUBREAPER = 36
PR_SET_NO_NEW_PRIVS = 38
PR_GET_NO_NEW_PRIVS = 39

CAP_KILL = 5
CAP_SYS_PTRACE = 19
_LINUX_CAPABILITY_VERSION_3 = 0x20080522


class _RulesetAttr(ctypes.Structure):
    _fields_ = [
        ("handled_access_fs", ctypes.c_uint64),
        ("handled_access_net", ctypes.c_uint64),
        ("scoped", ctypes.c_uint64),
    ]


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [
        ("effective", ctypes.c_uint32),
        ("permitted", ctypes.c_uint32),
        ("inheritable", ctypes.c_uint32),
    ]


def _libc() -> Any:
    return ctypes.CDLL(None, use_errno=True)


def _syscall(libc: Any, number: int, *args: Any) -> tuple[int, int]:
    """(result, errno) of a raw syscall."""
    ctypes.set_errno(0)
    result = int(libc.syscall(ctypes.c_long(number), *args))
    return result, ctypes.get_errno()


def landlock_abi() -> int:
    """The kernel's Landlock ABI version; 0 where Landlock is missing or disabled."""
    try:
        abi, _ = _syscall(
            _libc(),
            SYS_LANDLOCK_CREATE_RULESET,
            None,
            ctypes.c_size_t(0),
            ctypes.c_uint32(LANDLOCK_CREATE_RULESET_VERSION),
        )
    except (OSError, AttributeError):
        return 0
    return max(abi, 0)


def _thread_count() -> int:
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return 0


def restrict_self() -> dict[str, object]:
    """Confine this process (see the module docstring); returns what was applied, never raises.

    Keys: ``landlock_abi`` (0 when unavailable), ``scoped`` (``signal``, ``abstract_unix_socket``),
    ``net`` (``denied`` or ``allowed``), ``fs`` (rights handled, none of normal use), ``tsync`` (every
    thread restricted), ``unrestricted_threads`` (threads that already existed and stay outside the
    domain), ``no_new_privs``, ``fallback`` (None, or what the capability fallback did) and ``error``
    (None, or why nothing could be applied).
    """
    report: dict[str, object] = {
        "landlock_abi": 0,
        "scoped": [],
        "net": "allowed",
        "fs": [],
        "tsync": False,
        "unrestricted_threads": 0,
        "no_new_privs": False,
        "fallback": None,
        "error": None,
    }
    try:
        libc = _libc()
        report["no_new_privs"] = int(libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)) == 0
        abi = landlock_abi()
        report["landlock_abi"] = abi
        if abi >= 1:
            _apply_landlock(libc, abi, report)
        if abi < 1 or report["error"] is not None:
            report["fallback"] = _drop_capabilities(libc)
    except Exception as exc:  # noqa: BLE001 - reported, never raised: an unsupported kernel is not a crash
        report["error"] = f"{type(exc).__name__}: {exc}"
    return report


def _apply_landlock(libc: Any, abi: int, report: dict[str, object]) -> None:
    attr = _RulesetAttr()
    scoped: list[str] = []
    if abi >= 6:
        attr.scoped = LANDLOCK_SCOPE_SIGNAL | LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET
        scoped = ["signal", "abstract_unix_socket"]
    if abi >= 4:
        attr.handled_access_net = LANDLOCK_ACCESS_NET_BIND_TCP | LANDLOCK_ACCESS_NET_CONNECT_TCP
    if abi < 4:
        attr.handled_access_fs = LANDLOCK_ACCESS_FS_MAKE_BLOCK
    # The struct grew with the ABI (fs; + net at 4; + scoped at 6): pass only the fields this kernel knows.
    size = 24 if abi >= 6 else 16 if abi >= 4 else 8
    fd, err = _syscall(
        libc, SYS_LANDLOCK_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(size), ctypes.c_uint32(0)
    )
    if fd < 0:
        report["error"] = f"landlock_create_ruleset failed: {os.strerror(err)}"
        return
    try:
        threads = _thread_count()
        flags = LANDLOCK_RESTRICT_SELF_TSYNC if abi >= 8 else 0
        result, err = _syscall(libc, SYS_LANDLOCK_RESTRICT_SELF, ctypes.c_int(fd), ctypes.c_uint32(flags))
        if result != 0:
            report["error"] = f"landlock_restrict_self failed: {os.strerror(err)}"
            return
    finally:
        os.close(fd)
    report["scoped"] = scoped
    report["net"] = "denied" if abi >= 4 else "allowed"
    report["fs"] = ["make_block"] if abi < 4 else []
    report["tsync"] = bool(flags)
    report["unrestricted_threads"] = 0 if flags else max(threads - 1, 0)


def _drop_capabilities(libc: Any) -> dict[str, object]:
    """Without Landlock, as root: drop CAP_SYS_PTRACE and CAP_KILL from this thread for good."""
    result: dict[str, object] = {"dropped": [], "unrestricted_threads": max(_thread_count() - 1, 0)}
    if os.geteuid() != 0:
        result["error"] = "not root and no Landlock: nothing to drop, nothing applied"
        return result
    machine = platform.machine()
    if machine not in SYS_CAPSET:
        result["error"] = f"capset syscall number unknown on {machine}"
        return result
    caps = {"CAP_SYS_PTRACE": CAP_SYS_PTRACE, "CAP_KILL": CAP_KILL}
    bounding = [name for name, cap in caps.items() if int(libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0)) == 0]
    header = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    got, err = _syscall(libc, SYS_CAPGET[machine], ctypes.byref(header), data)
    if got != 0:
        result["error"] = f"capget failed: {os.strerror(err)}"
        return result
    mask = ~sum(1 << cap for cap in caps.values()) & 0xFFFFFFFF  # both caps are below 32: word 0
    data[0].effective &= mask
    data[0].permitted &= mask
    data[0].inheritable &= mask
    done, err = _syscall(libc, SYS_CAPSET[machine], ctypes.byref(header), data)
    if done != 0:
        result["error"] = f"capset failed: {os.strerror(err)}"
        return result
    result["dropped"] = sorted(caps)
    result["bounding"] = bounding
    return result


def protect_judge() -> dict[str, object]:
    """For the trusted judge: not dumpable (no ptrace or /proc/<pid>/mem by processes without
    CAP_SYS_PTRACE, even of the same user) and a child subreaper (descendants of a contestant whose
    parent exits are re-parented to the judge, which can then kill them). Never raises."""
    report: dict[str, object] = {"dumpable": True, "subreaper": False, "error": None}
    try:
        libc = _libc()
        report["dumpable"] = int(libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)) != 0
        report["subreaper"] = int(libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)) == 0
    except Exception as exc:  # noqa: BLE001 - reported, never raised
        report["error"] = f"{type(exc).__name__}: {exc}"
    return report


def _exec_confined(argv: list[str]) -> int:
    """``python -m ksearch_agent.worker.sandbox PROGRAM ARGS...``: confine, then exec PROGRAM, so the
    domain holds from the program's first instruction (every thread it ever starts is inside it)."""
    import json
    import sys

    if not argv:
        print("usage: python -m ksearch_agent.worker.sandbox PROGRAM [ARGS...]", file=sys.stderr)
        return 2
    report = restrict_self()
    os.environ["KSEARCH_SANDBOX"] = json.dumps(report)
    os.execvp(argv[0], argv)
    return 127  # not reached


if __name__ == "__main__":
    import sys

    sys.exit(_exec_confined(sys.argv[1:]))
