"""A candidate kernel: its source files, language and entry-point convention, identified by content."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, field_validator

Language = Literal["triton", "cuda", "python"]
Api = Literal["run", "gpumode"]

CUDA_SUFFIXES = (".cu", ".cuh")


class CandidateError(ValueError):
    """The candidate files are unusable as given (missing entry file, unknown language, ...)."""


class Candidate(BaseModel):
    """Complete sources of one candidate. ``files`` maps a file name to its text."""

    language: Language
    files: dict[str, str]
    entry: str = "run.py"
    api: Api = "run"
    label: str = Field(default="", description="human-readable name, e.g. the file it came from")

    @field_validator("files")
    @classmethod
    def _safe_names(cls, files: dict[str, str]) -> dict[str, str]:
        for name in files:
            if "/" in name or "\\" in name or name.startswith(".") or not name:
                raise ValueError(f"file name {name!r} must be a plain name without directories")
        return files

    @property
    def id(self) -> str:
        h = hashlib.sha256(f"{self.language}|{self.api}|{self.entry}".encode())
        for name in sorted(self.files):
            h.update(b"\0" + name.encode() + b"\0" + self.files[name].encode())
        return h.hexdigest()[:12]

    @property
    def cuda_files(self) -> list[str]:
        return [n for n in sorted(self.files) if n.endswith(".cu")]

    def materialize(self, root: Path) -> Path:
        """Write the files under ``root/<id>/`` and return the entry file's path."""
        directory = root / self.id
        directory.mkdir(parents=True, exist_ok=True)
        for name, text in self.files.items():
            (directory / name).write_text(text)
        return directory / self.entry

    @classmethod
    def from_path(cls, path: str | Path, *, language: Language | None = None, api: Api | None = None) -> Candidate:
        """Read a candidate's Python entry file plus the ``.cu``/``.cuh`` files beside it that it names."""
        path = Path(path)
        if not path.is_file():
            raise CandidateError(f"candidate file {path} not found")
        if path.suffix != ".py":
            raise CandidateError(f"candidate entry must be a .py file defining run(...) or custom_kernel(data); got {path.name}")
        source = path.read_text()
        files = {path.name: source}
        for sibling in sorted(path.parent.iterdir()):
            if sibling.suffix in CUDA_SUFFIXES and sibling.name in source:
                files[sibling.name] = sibling.read_text()
        return cls(language=language or detect_language(files), files=files, entry=path.name,
                   api=api or detect_api(source), label=str(path))


def detect_language(files: dict[str, str]) -> Language:
    if any(n.endswith(CUDA_SUFFIXES) for n in files):
        return "cuda"
    text = "\n".join(files.values())
    if re.search(r"^\s*(import triton|from triton)", text, re.M):
        return "triton"
    return "python"


def detect_api(source: str) -> Api:
    if re.search(r"^def run\(", source, re.M):
        return "run"
    if re.search(r"^def custom_kernel\(", source, re.M):
        return "gpumode"
    return "run"
