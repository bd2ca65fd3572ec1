"""Where each evaluation ran, kept in the run directory; a run judged on more than one GPU model says so.

Speedups measured on an H100 and on an H200 are not comparable, so the run records every GPU model its
evaluations used (meta ``gpu_models``) and the first evaluation on a second model is flagged.
"""

from __future__ import annotations

import threading

from ksearch_agent.backends.base import Placed
from ksearch_agent.store import RunStore

_lock = threading.Lock()


def is_gpu_name(device: str) -> bool:
    return bool(device) and "cpu" not in device.lower() and device != "unknown"


def record_placement(store: RunStore, placed: Placed) -> list[str] | None:
    """Add ``placed``'s GPU model to the run's ``gpu_models``; return the models when this evaluation made
    the run a mixed one (two or more models), else None."""
    if not is_gpu_name(placed.device):
        return None
    with _lock:
        models: list[str] = list(store.get_meta("gpu_models") or [])
        if placed.device in models:
            return None
        models.append(placed.device)
        store.set_meta("gpu_models", models)
    return models if len(models) == 2 else None


def mixed_gpu_note(store: RunStore) -> str | None:
    """A warning line when the run's evaluations ran on more than one GPU model, else None."""
    models = store.get_meta("gpu_models") or []
    if len(models) < 2:
        return None
    return (
        f"evaluations ran on {len(models)} GPU models ({', '.join(models)}): speedups measured on different "
        "models are not comparable; each evaluation records its GPU"
    )
