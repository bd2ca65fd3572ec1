"""Per-task playbooks: kernel families and refinements with priors, seeds, knob settings and repair rules.

A playbook lives in ``tasks/<name>/playbook.json``. Each node names a seed file (inherited from its
ancestors when absent) and the knob values its action sets; repair rules list knob variants to try for
each class of failure, in order.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ksearch_agent.knobs import read_knobs, render
from ksearch_agent.task import Task, TaskFileError
from ksearch_agent.world_model import Action

FailureClass = Literal["shared_memory", "numerical", "timeout", "runtime", "compile", "slower"]
REF_MARK = "[playbook:"


class PlaybookNode(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ref: str
    parent: str = "root"
    decision: str
    rating: float = Field(default=5.0, ge=0, le=10)
    confidence: float = Field(default=0.5, ge=0, le=1)
    action: Action
    seed: str | None = None
    knobs: dict[str, Any] = Field(default_factory=dict)
    language: Literal["triton", "cuda"] = "triton"
    initial: bool = Field(
        default=True, description="in the first world model; otherwise added once the parent is solved"
    )


class Playbook(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kernel_summary: str
    open_questions: list[str] = Field(default_factory=list)
    nodes: list[PlaybookNode]
    repairs: dict[FailureClass, list[dict[str, Any]]] = Field(default_factory=dict)

    def node(self, ref: str) -> PlaybookNode:
        for n in self.nodes:
            if n.ref == ref:
                return n
        raise KeyError(f"playbook has no node {ref!r}")

    def chain(self, ref: str) -> list[PlaybookNode]:
        """Root-most first: the node and its playbook ancestors."""
        out: list[PlaybookNode] = []
        current: str | None = ref
        while current and current != "root":
            n = self.node(current)
            out.append(n)
            current = n.parent
        return list(reversed(out))

    def children_of(self, ref: str) -> list[PlaybookNode]:
        return [n for n in self.nodes if n.parent == ref]


def load_playbook(task: Task) -> Playbook:
    path = task.directory / "playbook.json"
    if not path.is_file():
        raise TaskFileError(path, "<file>", f"task {task.name!r} has no playbook")
    try:
        book = Playbook.model_validate(json.loads(path.read_text()))
    except json.JSONDecodeError as exc:
        raise TaskFileError(path, f"<line {exc.lineno}>", exc.msg) from None
    except ValidationError as exc:
        err = exc.errors()[0]
        raise TaskFileError(path, ".".join(map(str, err["loc"])), err["msg"]) from None
    refs = {n.ref for n in book.nodes}
    for n in book.nodes:
        if n.parent != "root" and n.parent not in refs:
            raise TaskFileError(path, f"nodes.{n.ref}.parent", f"unknown parent {n.parent!r}")
        seed = resolve_seed(book, n.ref)
        if not (task.directory / "seeds" / seed).is_file():
            raise TaskFileError(
                path, f"nodes.{n.ref}.seed", f"no seed file {seed!r} in {task.directory / 'seeds'}"
            )
    return book


def resolve_seed(book: Playbook, ref: str) -> str:
    for n in reversed(book.chain(ref)):
        if n.seed:
            return n.seed
    raise KeyError(f"no seed for playbook node {ref!r} or its ancestors")


def files_for(task: Task, book: Playbook, ref: str) -> dict[str, str]:
    """The candidate an action stands for: its seed with the knobs of its whole chain applied."""
    seed_path = task.directory / "seeds" / resolve_seed(book, ref)
    knobs: dict[str, Any] = {}
    for n in book.chain(ref):
        knobs.update(n.knobs)
    source = seed_path.read_text()
    read_knobs(source, list(knobs))  # every knob must exist in this seed
    files = {"run.py": render(source, knobs)}
    for sibling in sorted(seed_path.parent.glob("*.cu")):
        if sibling.name in source:
            files[sibling.name] = sibling.read_text()
    return files


def ref_of(notes: str) -> str | None:
    """The playbook ref a world-model node was made from (kept in its notes)."""
    start = notes.find(REF_MARK)
    if start < 0:
        return None
    end = notes.find("]", start)
    return notes[start + len(REF_MARK) : end] if end > start else None


def mark(ref: str) -> str:
    return f"{REF_MARK}{ref}]"


def playbook_seed_files(task: Task) -> dict[str, str]:
    """The best-prior family's kernel, to start an LLM run from (``--seed-from-playbook``)."""
    book = load_playbook(task)
    families = [n for n in book.nodes if n.parent == "root"]
    best = max(families, key=lambda n: (n.action.score, -n.action.difficulty))
    return files_for(task, book, best.ref)


def seeds_dir(task: Task) -> Path:
    return task.directory / "seeds"
