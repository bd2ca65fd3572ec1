"""Live objects the graph's nodes need but state must not hold: engines and run stores, one per key.

Graph state stays JSON; nodes look these up by the run directory or device named in state/context.
"""

from __future__ import annotations

import atexit
import threading
from pathlib import Path

from ksearch_agent.engine import DeviceChoice, Engine
from ksearch_agent.store import RunStore

_lock = threading.Lock()
_engines: dict[str, Engine] = {}
_stores: dict[str, RunStore] = {}


def engine_for(device: DeviceChoice) -> Engine:
    with _lock:
        if device not in _engines:
            _engines[device] = Engine(device=device)
        return _engines[device]


def store_for(run_dir: str | Path) -> RunStore:
    key = str(Path(run_dir).resolve())
    with _lock:
        if key not in _stores:
            _stores[key] = RunStore(key)
        return _stores[key]


def register_engine(device: DeviceChoice, engine: Engine) -> None:
    """Use a caller-owned engine (tests, long-lived servers) for ``device``."""
    with _lock:
        _engines[device] = engine


@atexit.register
def close_all() -> None:
    with _lock:
        for engine in _engines.values():
            engine.close()
        for store in _stores.values():
            store.close()
        _engines.clear()
        _stores.clear()
