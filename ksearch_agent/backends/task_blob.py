"""A task as data: its files travel to a remote worker, which writes them down once and loads them there.

A Ray node need not have the driver's task directory (a task of the user's own, or another install path),
so the definition, workloads and reference go with every evaluation; the worker keys its copy by content.
"""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

from pydantic import BaseModel

from ksearch_agent.task import Task, load_task

MAX_TASK_FILE_BYTES = 4 * 1024 * 1024
"""Largest task file shipped (4 MiB); larger files (data, caches) stay behind."""


class TaskBlob(BaseModel):
    """The top-level files of a task directory (``seeds/`` and other folders are not needed to judge)."""

    name: str
    files: dict[str, str]

    @classmethod
    def from_task(cls, task: Task) -> TaskBlob:
        files: dict[str, str] = {}
        for path in sorted(task.directory.iterdir()):
            if (
                path.is_file()
                and path.stat().st_size <= MAX_TASK_FILE_BYTES
                and path.suffix in (".json", ".py")
            ):
                try:
                    files[path.name] = path.read_text(encoding="utf-8")
                except UnicodeDecodeError:
                    continue
        return cls(name=task.name, files=files)

    @property
    def digest(self) -> str:
        h = hashlib.sha256(self.name.encode())
        for name in sorted(self.files):
            h.update(b"\0" + name.encode() + b"\0" + self.files[name].encode())
        return h.hexdigest()[:16]


class TaskCache:
    """Tasks written under ``root`` and loaded once per content (thread-safe)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._tasks: dict[str, Task] = {}
        self._lock = threading.Lock()

    def load(self, blob: TaskBlob) -> Task:
        key = blob.digest
        with self._lock:
            if key not in self._tasks:
                directory = self.root / f"{blob.name}-{key}"
                directory.mkdir(parents=True, exist_ok=True)
                for name, text in blob.files.items():
                    (directory / Path(name).name).write_text(text, encoding="utf-8")
                self._tasks[key] = load_task(directory)
            return self._tasks[key]
