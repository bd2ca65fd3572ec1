"""Resource limits every worker process sets on itself before doing anything else."""

from __future__ import annotations

import resource
import signal

LOG_FILE_LIMIT = 64 * 1024 * 1024


def limit_resources() -> None:
    """No core dumps, and no file (the output log above all) may grow past 64 MiB: a write past the cap
    fails with an error instead of killing the process or filling the disk."""
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    cap = LOG_FILE_LIMIT if hard == resource.RLIM_INFINITY else min(LOG_FILE_LIMIT, hard)
    resource.setrlimit(resource.RLIMIT_FSIZE, (cap, hard))
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
