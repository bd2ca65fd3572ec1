"""A candidate kernel: its source files, language and entry-point convention, identified by content."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, ValidationError, field_validator

Language = Literal["triton", "cuda", "python"]
Api = Literal["run", "gpumode"]

CUDA_SUFFIXES = (".cu", ".cuh")

MAX_FILE_BYTES = 1024 * 1024
"""Largest candidate file :meth:`Candidate.from_path` reads (1 MiB). The bundled seeds are under 64 KiB; a
larger file is data or generated code, and every candidate is stored, hashed and compiled more than once."""
MAX_TOTAL_BYTES = 4 * 1024 * 1024
"""Largest total of a candidate's entry file and the ``.cu``/``.cuh`` files beside it that it names (4 MiB)."""


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
            (directory / name).write_text(text, encoding="utf-8")
        return directory / self.entry

    @classmethod
    def from_path(
        cls, path: str | Path, *, language: Language | None = None, api: Api | None = None
    ) -> Candidate:
        """Read a candidate's Python entry file plus the ``.cu``/``.cuh`` files beside it that it names.

        Raises :class:`CandidateError`, naming the file and what is wrong, for a missing path, a directory or
        other non-file, a file that is not ``.py``, one over :data:`MAX_FILE_BYTES` (or siblings over
        :data:`MAX_TOTAL_BYTES` together), and binary or non-UTF-8 content.
        """
        path = Path(path)
        if path.is_dir():
            raise CandidateError(
                f"candidate {path} is a directory; expected a .py file defining run(...) "
                "or custom_kernel(data) (its .cu/.cuh files are read from beside it)"
            )
        if not path.exists():
            raise CandidateError(f"candidate file {path} not found")
        if not path.is_file():
            raise CandidateError(f"candidate {path} is not a regular file; expected a .py file")
        if path.suffix != ".py":
            raise CandidateError(
                f"candidate entry must be a .py file defining run(...) or custom_kernel(data); got {path.name}"
            )
        source = _read_source(path)
        files = {path.name: source}
        total = len(source.encode())
        for sibling in sorted(path.parent.iterdir()):
            if sibling.suffix in CUDA_SUFFIXES and sibling.name in source and sibling.is_file():
                files[sibling.name] = _read_source(sibling)
                total += len(files[sibling.name].encode())
                if total > MAX_TOTAL_BYTES:
                    raise CandidateError(
                        f"candidate {path} and the CUDA files it names total more than "
                        f"{_mib(MAX_TOTAL_BYTES)}, the limit for all files together"
                    )
        try:
            return cls(
                language=language or detect_language(files),
                files=files,
                entry=path.name,
                api=api or detect_api(source),
                label=str(path),
            )
        except ValidationError as exc:  # e.g. a file name starting with '.'
            raise CandidateError(
                f"candidate {path}: {exc.errors()[0]['msg'].removeprefix('Value error, ')}"
            ) from None


def _mib(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MiB" if size % (1024 * 1024) else f"{size // (1024 * 1024)} MiB"


def _read_source(path: Path) -> str:
    """The text of one candidate file: at most :data:`MAX_FILE_BYTES`, UTF-8, no NUL bytes."""
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise CandidateError(
                f"candidate file {path} is {_mib(size)}; the limit is {_mib(MAX_FILE_BYTES)} per file"
            )
        with path.open("rb") as fh:
            data = fh.read(MAX_FILE_BYTES + 1)  # a file that grew after stat() is still bounded
    except OSError as exc:
        raise CandidateError(f"cannot read candidate file {path}: {exc.strerror or exc}") from None
    if len(data) > MAX_FILE_BYTES:
        raise CandidateError(
            f"candidate file {path} is over {_mib(MAX_FILE_BYTES)}; the limit is "
            f"{_mib(MAX_FILE_BYTES)} per file"
        )
    if b"\0" in data:
        raise CandidateError(
            f"candidate file {path} is binary (it contains NUL bytes at offset "
            f"{data.index(0)}); expected UTF-8 source text"
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CandidateError(
            f"candidate file {path} is not UTF-8 text (byte 0x{data[exc.start]:02x} at offset "
            f"{exc.start}); save it as UTF-8"
        ) from None


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
