"""One shared :class:`~ksearch_agent.engine.Engine` per process for the tools, stopped at exit."""

from __future__ import annotations

import atexit
import threading

from ksearch_agent.engine import Engine

_lock = threading.Lock()
_engine: Engine | None = None


def shared_engine() -> Engine:
    global _engine
    with _lock:
        if _engine is None:
            _engine = Engine()
            atexit.register(_engine.close)
        return _engine
