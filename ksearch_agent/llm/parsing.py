"""Recover structured payloads from what chat models actually answer.

Real models rarely return exactly the bytes that were asked for: they wrap JSON in prose or code fences, leave
trailing commas and ``//`` comments, write Python's ``True``/``None``, split code over several fenced blocks and
revise a block further down the same answer. The functions here recover the intended payload where that is
unambiguous and otherwise raise :class:`ParseError`, whose message is short and concrete enough to be sent back
to the model as a correction request.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ValidationError

T = TypeVar("T", bound=BaseModel)

__all__ = ["ParseError", "extract_code_files", "extract_json", "parse_model"]


class ParseError(ValueError):
    """The answer could not be turned into the requested structure; the message is written for the model."""


# --------------------------------------------------------------------------------------------- code fences


@dataclass(frozen=True)
class _Fence:
    """One fenced block: its info string, body, the prose line right before it and where the body starts."""

    info: str
    body: str
    caption: str
    offset: int


_FENCE_OPEN = re.compile(r"^([ \t]*)(`{3,}|~{3,})(.*)$")


def _fences(text: str) -> list[_Fence]:
    """Split markdown-ish ``text`` (newlines already normalised) into fenced blocks.

    A line-based scan rather than one regex so that longer fences can contain shorter ones, an unclosed last
    fence (a truncated answer) still yields its body, and the prose line preceding each fence is known.
    """
    fences: list[_Fence] = []
    lines = text.split("\n")
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line) + 1)
    caption = ""
    i = 0
    while i < len(lines):
        m = _FENCE_OPEN.match(lines[i])
        if not m or (m.group(2)[0] == "`" and "`" in m.group(3)):
            if lines[i].strip():
                caption = lines[i]
            i += 1
            continue
        indent, marker, info = len(m.group(1)), m.group(2), m.group(3).strip()
        closing = re.compile(rf"^[ \t]*{re.escape(marker[0])}{{{len(marker)},}}[ \t]*$")
        body: list[str] = []
        j = i + 1
        while j < len(lines) and not closing.match(lines[j]):
            line = lines[j]
            body.append(line[min(indent, len(line) - len(line.lstrip(" \t"))) :] if indent else line)
            j += 1
        fences.append(
            _Fence(info=info, body="\n".join(body), caption=caption, offset=starts[min(i + 1, len(lines))])
        )
        caption = ""
        i = j + 1
    return fences


# -------------------------------------------------------------------------------------------------- JSON

_JSON_INFOS = {"", "json", "jsonc", "json5", "js", "javascript"}
_STRING = r'"[^"\\]*(?:\\.[^"\\]*)*"'
# Tokens that matter when looking for the end of a bracketed span: whole strings (so brackets inside them are
# skipped), comments, brackets, and a lone quote (an unterminated string: the span cannot be JSON).
_SCAN = re.compile(rf'{_STRING}|//[^\n]*|/\*.*?\*/|[\[\]{{}}]|"', re.S)
_COMMENT = re.compile(rf"({_STRING})|//[^\n]*|/\*.*?\*/", re.S)
_SLIPS = re.compile(rf"({_STRING})|,(?=\s*[}}\]])|\b(True|False|None)\b", re.S)
_PY_LITERALS = {"True": "true", "False": "false", "None": "null"}
_PAIRS = {"{": "}", "[": "]"}
_MAX_SCAN_TOKENS = 2_000_000


def _blank(match: re.Match[str]) -> str:
    """Replace a comment by spaces, keeping newlines, so that error positions stay valid."""
    return re.sub(r"[^\n]", " ", match.group(0))


def _repair(text: str) -> str:
    """Undo common model slips outside strings; the result has the same length and line structure as ``text``.

    Handles ``//`` and ``/* */`` comments, trailing commas before ``}``/``]`` and Python's True/False/None.
    Keeping positions unchanged means a remaining JSON error points at the same place in the original text.
    """
    text = _COMMENT.sub(lambda m: m.group(1) if m.group(1) is not None else _blank(m), text)

    def fix(m: re.Match[str]) -> str:
        if m.group(1) is not None:
            return m.group(1)
        if m.group(2) is not None:
            return _PY_LITERALS[m.group(2)]
        return " "

    return _SLIPS.sub(fix, text)


def _load(snippet: str) -> Any:
    """``json.loads`` with raw control characters allowed in strings, retried once on the repaired text."""
    try:
        return json.loads(snippet, strict=False)
    except json.JSONDecodeError:
        repaired = _repair(snippet)
        if repaired == snippet:
            raise
        return json.loads(repaired, strict=False)


def _match_brackets(text: str, start: int, ends: dict[int, int | None], budget: list[int]) -> None:
    """Record in ``ends`` where each bracket opened from ``start`` on closes (None: never properly).

    One linear pass serves every opening bracket that is a token boundary of the scan from ``start`` (the scan
    from such a bracket would see exactly the same tokens), so answers full of code brackets stay linear.
    A mismatched closer or an unterminated string fails every bracket still open.
    """
    stack: list[int] = []
    for m in _SCAN.finditer(text, start):
        budget[0] -= 1
        if budget[0] < 0:
            break
        token = m.group(0)
        if token in ("{", "["):
            stack.append(m.start())
        elif token in ("}", "]"):
            if stack and _PAIRS[text[stack[-1]]] == token:
                ends[stack.pop()] = m.end()
            else:
                ends.update(dict.fromkeys(stack))
                stack.clear()
        elif token == '"':
            ends.update(dict.fromkeys(stack))
            stack.clear()
    ends.update(dict.fromkeys(stack))


class _JsonSearch:
    """Yields the JSON objects/arrays found in an answer, in priority order, remembering the first parse error."""

    def __init__(self, text: str) -> None:
        self.text = text.replace("\r\n", "\n").replace("\r", "\n")
        self.error: str | None = None

    def _try(self, snippet: str, offset: int) -> tuple[bool, Any]:
        try:
            value = _load(snippet)
        except json.JSONDecodeError as err:
            if self.error is None:
                pos = offset + err.pos
                line = self.text.count("\n", 0, pos) + 1
                col = pos - (self.text.rfind("\n", 0, pos) + 1) + 1
                near = self.text[max(0, pos - 20) : pos + 20].replace("\n", "\\n")
                self.error = f"JSON parse error at line {line} col {col}: {err.msg} (near {near!r})"
            return False, None
        except RecursionError:  # absurdly deep nesting: not an answer worth recovering
            return False, None
        return isinstance(value, dict | list), value

    def values(self) -> Iterator[Any]:
        """Whole text first, then fenced blocks, then balanced ``{...}``/``[...]`` spans in the prose."""
        text = self.text
        stripped = text.strip()
        if stripped[:1] in ("{", "["):
            ok, value = self._try(stripped, text.find(stripped[0]))
            if ok:
                yield value
        for fence in _fences(text):
            lang = fence.info.split()[0].lower() if fence.info.split() else ""
            body = fence.body.strip()
            if lang in _JSON_INFOS and (lang or body[:1] in ("{", "[")):
                ok, value = self._try(
                    body, fence.offset + fence.body.find(body[:1]) if body else fence.offset
                )
                if ok:
                    yield value
        budget = [_MAX_SCAN_TOKENS]
        ends: dict[int, int | None] = {}
        position = 0
        for m in re.finditer(r"[\[{]", text):
            if m.start() < position:
                continue
            if m.start() not in ends:
                if budget[0] < 0:
                    return
                _match_brackets(text, m.start(), ends, budget)
            end = ends.get(m.start())
            if end is None:
                continue
            ok, value = self._try(text[m.start() : end], m.start())
            if ok:
                yield value
                position = end

    def failure(self) -> str:
        """The message to raise when no value was accepted."""
        hint = "answer with a single JSON object, optionally inside a ```json fence"
        if self.error:
            return f"{self.error}; {hint}"
        return f"no JSON object found; {hint}"


def extract_json(text: str) -> Any:
    """Return the first JSON object or array in a model answer.

    Tries, in order: the whole answer, each fenced block (```json or unlabelled), then each balanced
    ``{...}``/``[...]`` span in the prose. Each candidate is parsed as is and, failing that, after repairing
    trailing commas, ``//`` comments and Python literals. Raises :class:`ParseError` if nothing parses.
    """
    search = _JsonSearch(text)
    for value in search.values():
        return value
    raise ParseError(search.failure())


def _format_validation(err: ValidationError, model: type[BaseModel]) -> str:
    """A compact ``field.path: message`` list, because the full pydantic report is long and URL-laden."""
    items: list[str] = []
    for e in err.errors(include_url=False):
        path = ".".join(str(p) for p in e["loc"]) or "(root)"
        items.append(f"{path}: {'missing field' if e['type'] == 'missing' else e['msg']}")
    shown = "; ".join(items[:10]) + (f"; ... and {len(items) - 10} more" if len(items) > 10 else "")
    return f"JSON does not match the {model.__name__} schema: {shown}"


def parse_model(text: str, model: type[T]) -> T:
    """Extract JSON from ``text`` and validate it as ``model``.

    Candidates are tried in :func:`extract_json` order and the first that validates wins, so an example
    snippet in the prose does not hide the real answer. Raises :class:`ParseError` listing the failing field
    paths of the first object candidate when none validates.
    """
    search = _JsonSearch(text)
    first: ValidationError | None = None
    first_object: ValidationError | None = None
    for n, value in enumerate(search.values()):
        try:
            return model.model_validate(value)
        except ValidationError as err:
            first = first or err
            if isinstance(value, dict):
                first_object = first_object or err
        if n >= 20:
            break
    error = first_object or first
    if error is None:
        raise ParseError(search.failure())
    raise ParseError(_format_validation(error, model))


# ------------------------------------------------------------------------------------------- code files

_PY_LANGS = {"python", "py", "python3", "py3", "triton"}
_CUDA_LANGS = {
    "cuda",
    "cu",
    "cuda-c",
    "cuda-cpp",
    "cuda-c++",
    "c++",
    "cpp",
    "cxx",
    "cc",
    "c",
    "cuh",
    "h",
    "hpp",
}
_PY_EXT = {"py"}
_CUDA_EXT = {"cu", "cuh", "cpp", "cc", "cxx", "c", "h", "hpp"}
_FILE_LIKE = re.compile(r"[\w.\\/-]+\.(\w+)")
_INFO_ATTR = re.compile(r"""\b(?:title|file|filename|name|path)\s*=\s*["']?([^"'\s}]+)""", re.I)
# "# file: run.py", "// filename: k.cu", "/* file: k.cu */" and a bare "# run.py" as the first line of a block.
_FILE_COMMENT = re.compile(
    r"^\s*(?:#|//|/\*)\s*(?:(?:file|filename|file name|path)\s*:\s*)?(\S+?)\s*(?:\*/)?\s*$", re.I
)
_CAPTION_PREFIX = re.compile(r"^(?:#{1,6}\s+|[-*+]\s+|\d+[.)]\s+)")
_CAPTION_LABEL = re.compile(r"(?:file(?:\s*name)?|filename|path)\s*:\s*(.+)", re.I)
_BACKTICKED = re.compile(r"`([^`\s]+)`")
_DEFINES_ENTRY = re.compile(r"^def\s+(?:run|custom_kernel)\s*\(", re.M)
_GLOBAL_FN = re.compile(r"__global__\s+(?:[\w:<>,*&]+\s+)*?(\w+)\s*\(")
_CU_REFERENCE = re.compile(r"[\w-]+\.cuh?\b")
_PYTHON_START = re.compile(r"^(?:import\s|from\s|def\s|class\s|@|#|\"\"\"|''')")


def _file_like(token: str) -> bool:
    """True for a token that names a source file (possibly with directories, checked later)."""
    m = _FILE_LIKE.fullmatch(token)
    return m is not None and m.group(1).lower() in _PY_EXT | _CUDA_EXT


def _plain(name: str) -> bool:
    """Only plain names are written out: no directories, no hidden files."""
    return bool(name) and not name.startswith(".") and "/" not in name and "\\" not in name


def _parse_info(info: str) -> tuple[str, str | None]:
    """Language token and file name (if any) from an info string like ``python run.py`` or ``cuda title="k.cu"``."""
    tokens = info.split()
    head = tokens[0].strip("{}").lstrip(".") if tokens else ""
    lang, _, suffix = head.partition(":")
    name: str | None = None
    attr = _INFO_ATTR.search(info)
    if attr:
        name = attr.group(1)
    elif suffix and _file_like(suffix):
        name = suffix
    elif _file_like(lang):
        name, lang = lang, lang.rsplit(".", 1)[1]
    else:
        name = next((t.strip("`'\"") for t in tokens[1:] if _file_like(t.strip("`'\""))), None)
    return lang.lower(), name


def _caption_name(line: str) -> str | None:
    """A file name from a prose line that is just a name: ``run.py:``, ``**kernel.cu**``, ``File: k.cu``..."""
    s = _CAPTION_PREFIX.sub("", line.strip()).strip()
    s = s.strip("*`'\" ").rstrip(":").strip("*`'\" ")
    label = _CAPTION_LABEL.fullmatch(s)
    if label:
        s = label.group(1).strip("*`'\" ").rstrip(":").strip("*`'\" ")
    if _file_like(s):
        return s
    # "Here is the updated `kernel.cu`:" -- one backticked name on a line introducing the block.
    names = [n for n in _BACKTICKED.findall(line) if _file_like(n)]
    if line.rstrip().endswith(":") and len(names) == 1:
        return names[0]
    return None


def _kind(lang: str, name: str | None, body: str) -> Literal["python", "cuda"] | None:
    """Whether a block is Python or CUDA/C++ source, or neither (shell, JSON, output...)."""
    if lang and lang not in _PY_LANGS | _CUDA_LANGS:
        return None
    if name and "." in name:
        ext = name.rsplit(".", 1)[1].lower()
        if ext in _PY_EXT:
            return "python"
        if ext in _CUDA_EXT:
            return "cuda"
    if lang in _PY_LANGS:
        return "python"
    if lang in _CUDA_LANGS:
        return "cuda"
    if lang == "":
        return "cuda" if "__global__" in body else "python"
    return None


def _looks_like_python(text: str) -> bool:
    """Whole answer without fences: accept it only if it plausibly is a Python file."""
    try:
        compile(text, "<answer>", "exec")
        return True
    except (SyntaxError, ValueError):
        return bool(_PYTHON_START.match(text))


def _guidance(language: str, entry: str) -> str:
    if language == "cuda":
        return (
            f"answer with one ```cuda block containing the complete kernel.cu and one ```python block "
            f"containing the complete {entry} that loads it and defines run(...)"
        )
    return f"answer with one ```python block containing the complete {entry}"


def extract_code_files(
    text: str, language: Literal["triton", "cuda", "python"], *, entry: str = "run.py"
) -> dict[str, str]:
    """Pull complete source files out of a model answer, keyed by plain file name (``entry`` first).

    File names come from, in priority: the fence info string (```python run.py, ```cuda title="k.cu"); a
    ``# file: name`` / ``// file: name`` / bare ``# name`` first line in the block (kept: it is a comment); the
    prose line right before the fence when it is just a name (``run.py:``, ``**kernel.cu**``, ``File: k.cu``,
    `` `run.py` ``). Names with directories or a leading dot are ignored and default naming applies.

    Unnamed Python blocks defining ``run(`` or ``custom_kernel(`` become ``entry``; like any repeated name, the
    last one in the answer wins because models revise. If ``entry`` is still missing but exactly one named
    ``.py`` file defines the entry point, that file becomes ``entry``. Unnamed CUDA blocks (``language="cuda"``
    only) become ``kernel.cu``, ``kernel_1.cu``, ...; a later unnamed block redefining the same ``__global__``
    kernels replaces the earlier one, and a single unnamed block takes the one ``.cu`` name the entry references
    that no block supplied. Without any fence, a whole answer that is Python defining ``run(`` becomes ``entry``.

    Raises :class:`ParseError` with guidance for the model when the entry (or, for CUDA, a ``.cu`` file) is
    missing.
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    files: dict[str, str] = {}
    unnamed_cuda: list[tuple[set[str], str]] = []
    ignored: list[str] = []
    fences = _fences(text)
    for fence in fences:
        lang, info_name = _parse_info(fence.info)
        first_line = next((ln for ln in fence.body.split("\n") if ln.strip()), "")
        comment = _FILE_COMMENT.match(first_line)
        comment_name = comment.group(1) if comment and _file_like(comment.group(1)) else None
        name: str | None = None
        for candidate in (info_name, comment_name, _caption_name(fence.caption)):
            if candidate is None:
                continue
            if _plain(candidate):
                name = candidate
                break
            ignored.append(candidate)
        body = fence.body.strip("\n") + "\n"
        kind = _kind(lang, name, fence.body)
        if kind is None or not fence.body.strip():
            continue
        if name:
            files.pop(name, None)
            files[name] = body
        elif kind == "python" and _DEFINES_ENTRY.search(body):
            files.pop(entry, None)
            files[entry] = body
        elif kind == "cuda" and language == "cuda":
            kernels = set(_GLOBAL_FN.findall(body))
            for k, (previous, _) in enumerate(unnamed_cuda):
                if kernels and kernels & previous:
                    unnamed_cuda[k] = (kernels, body)
                    break
            else:
                unnamed_cuda.append((kernels, body))

    if not fences:
        stripped = text.strip()
        if _DEFINES_ENTRY.search(stripped) and _looks_like_python(stripped):
            files[entry] = stripped + "\n"
    if entry not in files:
        defining = [n for n, src in files.items() if n.endswith(".py") and _DEFINES_ENTRY.search(src)]
        if len(defining) == 1:
            files[entry] = files.pop(defining[0])

    if unnamed_cuda:
        missing = [n for n in dict.fromkeys(_CU_REFERENCE.findall(files.get(entry, ""))) if n not in files]
        if len(unnamed_cuda) == 1 and len(missing) == 1 and missing[0].endswith(".cu"):
            files[missing[0]] = unnamed_cuda[0][1]
        else:
            n = 0
            for _, body in unnamed_cuda:
                while (default := "kernel.cu" if n == 0 else f"kernel_{n}.cu") in files:
                    n += 1
                files[default] = body

    note = (
        f" (ignored file names {', '.join(map(repr, ignored))}: only plain names without directories)"
        if ignored
        else ""
    )
    guidance = _guidance(language, entry)
    if entry not in files:
        if not fences and not files:
            raise ParseError(f"no code block found; {guidance}{note}")
        raise ParseError(f"no code block defining run(...) found; {guidance}{note}")
    if not _DEFINES_ENTRY.search(files[entry]):
        raise ParseError(
            f"{entry} does not define run(...) or custom_kernel(...) at top level; {guidance}{note}"
        )
    if language == "cuda" and not any(n.endswith(".cu") for n in files):
        raise ParseError(f"no CUDA source found (no ```cuda block or .cu file); {guidance}{note}")
    return {entry: files[entry], **{n: s for n, s in files.items() if n != entry}}
