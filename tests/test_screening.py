"""The static screen: good kernels written in ways the old name-matching refused now pass it, and the rules
that replaced the guesses (import resolution, cache keys, stores that outlive a call) still refuse cheats.

Each good case is a whole candidate a model could plausibly write; each must produce no finding at all.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from ksearch_agent.candidate import Candidate, detect_language
from ksearch_agent.screening import Finding, screen
from ksearch_agent.task import BUNDLED_TASKS_DIR

ROWWISE_KERNEL = """
@{jit}
def _rmsnorm_row(x_ptr, w_ptr, y_ptr, hidden, eps, BLOCK: {tl}.constexpr):
    row = {tl}.program_id(0)
    offs = {tl}.arange(0, BLOCK)
    mask = offs < hidden
    x = {tl}.load(x_ptr + row * hidden + offs, mask=mask, other=0.0).to({tl}.float32)
    w = {tl}.load(w_ptr + offs, mask=mask, other=0.0).to({tl}.float32)
    inv_rms = {tl}.rsqrt({tl}.sum(x * x, axis=0) / hidden + eps)
    {tl}.store(y_ptr + row * hidden + offs, (x * inv_rms * w).to({tl}.bfloat16), mask=mask)
"""

LAUNCH = """
def run(hidden_states: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    rows, hidden = hidden_states.shape
    out = torch.empty_like(hidden_states)
    _rmsnorm_row[(rows,)](hidden_states, weight, out, hidden, 1e-6, BLOCK=triton.next_power_of_2(hidden))
    return out
"""


def _candidate(source: str, files: dict[str, str] | None = None) -> Candidate:
    text = textwrap.dedent(source).lstrip()
    all_files = {"run.py": text, **(files or {})}
    return Candidate(language=detect_language(all_files), files=all_files, entry="run.py")


def _findings(source: str, files: dict[str, str] | None = None) -> list[Finding]:
    return screen(_candidate(source, files))


def _rules(source: str, files: dict[str, str] | None = None) -> set[str]:
    return {f.rule for f in _findings(source, files)}


# -- good kernels: no findings ------------------------------------------------------------------------

GOOD = {
    "from_triton_import_jit": "import torch\nimport triton\nimport triton.language as tl\nfrom triton import jit\n"
    + ROWWISE_KERNEL.format(jit="jit", tl="tl")
    + LAUNCH,
    "jit_import_renamed": "import torch\nimport triton\nfrom triton import jit as triton_jit\n"
    "from triton import language as tl\n" + ROWWISE_KERNEL.format(jit="triton_jit", tl="tl") + LAUNCH,
    "language_imported_as_language": "import torch\nimport triton\nimport triton.language as language\n"
    + ROWWISE_KERNEL.format(jit="triton.jit", tl="language")
    + LAUNCH,
    "language_names_imported": "import torch\nimport triton\nimport triton.language as tl\n"
    "from triton.language import constexpr\n" + ROWWISE_KERNEL.format(jit="triton.jit", tl="tl") + LAUNCH,
    "jit_with_options": "import torch\nimport triton\nimport triton.language as tl\n"
    + ROWWISE_KERNEL.format(jit='triton.jit(do_not_specialize=["hidden"])', tl="tl")
    + LAUNCH,
    "runtime_jit_path": "import torch\nimport triton\nimport triton.language as tl\nfrom triton.runtime.jit import jit\n"
    + ROWWISE_KERNEL.format(jit="jit", tl="tl")
    + LAUNCH,
}

LRU_CACHE_CONFIG = '''
import functools

import torch
import triton
import triton.language as tl


@triton.jit
def _rmsnorm_rows(x_ptr, w_ptr, y_ptr, rows, hidden, eps, ROWS: tl.constexpr, BLOCK: tl.constexpr):
    r = tl.program_id(0) * ROWS + tl.arange(0, ROWS)
    c = tl.arange(0, BLOCK)
    ok = (r[:, None] < rows) & (c[None, :] < hidden)
    x = tl.load(x_ptr + r[:, None] * hidden + c[None, :], mask=ok, other=0.0).to(tl.float32)
    w = tl.load(w_ptr + c, mask=c < hidden, other=0.0).to(tl.float32)
    inv = tl.rsqrt(tl.sum(x * x, axis=1) / hidden + eps)
    tl.store(y_ptr + r[:, None] * hidden + c[None, :], (x * inv[:, None] * w[None, :]).to(tl.bfloat16), mask=ok)


@functools.lru_cache(maxsize=None)
def _launch_config(rows: int, hidden: int) -> tuple[int, int, int]:
    """Rows per program, block width and warps for a shape."""
    block = triton.next_power_of_2(hidden)
    per_program = 1 if rows < 1024 else 4
    return per_program, block, 8 if block >= 4096 else 4


@functools.cache
def _device_kind(index, name):
    return name.lower()


def run(hidden_states: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    rows, hidden = hidden_states.shape
    per_program, block, warps = _launch_config(rows, hidden)
    _launch_config(*hidden_states.shape)
    _launch_config(hidden_states.shape[0], hidden_states.size(1))
    _device_kind(hidden_states.get_device(), str(hidden_states.dtype))
    out = torch.empty_like(hidden_states)
    _rmsnorm_rows[(triton.cdiv(rows, per_program),)](hidden_states, weight, out, rows, hidden, 1e-6,
                                                     ROWS=per_program, BLOCK=block, num_warps=warps)
    return out
'''

DICT_CACHE_CONFIG = """
import torch
import triton
import triton.language as tl

_CONFIGS: dict[tuple[int, str], int] = {}
_WORKSPACES = {}


@triton.jit
def _scale(x_ptr, y_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    tl.store(y_ptr + offs, tl.load(x_ptr + offs, mask=offs < n) * 2.0, mask=offs < n)


def _block_for(n: int, dtype: str) -> int:
    key = (n, dtype)
    if key not in _CONFIGS:
        _CONFIGS[key] = min(triton.next_power_of_2(n), 4096)
    return _CONFIGS[key]


def run(x: torch.Tensor) -> torch.Tensor:
    n = x.numel()
    block = _block_for(n, str(x.dtype))
    label = f"{n}:{x.dtype}"
    _CONFIGS.setdefault((hash((n, label)), label), block)
    plan_key = (x.shape, x.device)
    if plan_key not in _WORKSPACES:  # a per-shape workspace: its contents never depend on the inputs
        _WORKSPACES[plan_key] = torch.empty(x.shape, device=x.device, dtype=x.dtype)
    out = torch.empty_like(x)
    _scale[(triton.cdiv(n, block),)](x, out, n, BLOCK=block)
    return out
"""

MATH_AT_IMPORT = """
import math

import torch
import triton
import triton.language as tl

LOG2E = 1.0 / math.log(2.0)
SCALE = math.exp(-0.5) * math.sqrt(2.0)
_TABLE = torch.exp(torch.arange(4, dtype=torch.float32))  # built once at import: no input exists yet


@triton.jit
def _softmax_row(x_ptr, y_ptr, n_cols, LOG2E_C: tl.constexpr, BLOCK: tl.constexpr):
    row = tl.program_id(0)
    offs = tl.arange(0, BLOCK)
    mask = offs < n_cols
    x = tl.load(x_ptr + row * n_cols + offs, mask=mask, other=-float("inf"))
    e = tl.exp2((x - tl.max(x, axis=0)) * LOG2E_C)
    tl.store(y_ptr + row * n_cols + offs, e / tl.sum(e, axis=0), mask=mask)


def _warps(n_cols: int) -> int:
    return max(4, min(16, 2 ** int(math.log2(max(n_cols, 1)) - 9)))


def run(x: torch.Tensor) -> torch.Tensor:
    rows, cols = x.shape
    y = torch.empty_like(x)
    _softmax_row[(rows,)](x, y, cols, LOG2E_C=LOG2E, BLOCK=triton.next_power_of_2(cols), num_warps=_warps(cols))
    return y
"""

HOST_HELPERS = """
from pathlib import Path

import torch
import triton
import triton.language as tl

_NOTES = open(Path(__file__).with_name("run.py")).read()  # its own source, e.g. for a version tag


@triton.jit
def _copy(x_ptr, y_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    tl.store(y_ptr + offs, tl.load(x_ptr + offs, mask=offs < n), mask=offs < n)


def _tma_supported() -> bool:
    try:
        from triton.tools.tensor_descriptor import TensorDescriptor  # noqa: F401
    except ImportError:
        return False
    return True


def run(x: torch.Tensor) -> torch.Tensor:
    pointers = (x.data_ptr(), x.data_ptr() % 16)  # alignment check, not a key
    if pointers[1] and not _tma_supported():
        x = x.contiguous()
    y = torch.empty_like(x)
    _copy[(triton.cdiv(x.numel(), 1024),)](x, y, x.numel(), BLOCK=1024)
    return y
"""

JIT_AS_CALL = """
import torch
import triton
import triton.language as tl


def _body(x_ptr, y_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    tl.store(y_ptr + offs, tl.load(x_ptr + offs, mask=offs < n), mask=offs < n)


_copy = triton.jit(_body)


def run(x: torch.Tensor) -> torch.Tensor:
    y = torch.empty_like(x)
    _copy[(triton.cdiv(x.numel(), 1024),)](x, y, x.numel(), BLOCK=1024)
    return y
"""

DATA_DEPENDENT_GRID = """
import torch
import triton
import triton.language as tl


@triton.jit
def _copy_prefix(x_ptr, y_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    tl.store(y_ptr + offs, tl.load(x_ptr + offs, mask=offs < n), mask=offs < n)


def run(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    n = int(lengths.max().item())  # a grid from the data is a launch, not a cache key
    y = torch.zeros_like(x)
    _copy_prefix[(triton.cdiv(n, 256),)](x, y, n, BLOCK=256)
    return y
"""

GOOD.update(data_dependent_grid=DATA_DEPENDENT_GRID)
GOOD.update(
    lru_cache_on_int_helper=LRU_CACHE_CONFIG,
    dict_cache_keyed_by_ints_and_strings=DICT_CACHE_CONFIG,
    math_at_import_time=MATH_AT_IMPORT,
    own_file_capability_probe_and_pointers=HOST_HELPERS,
    jit_applied_as_a_call=JIT_AS_CALL,
)


@pytest.mark.parametrize("name", sorted(GOOD))
def test_good_kernel_has_no_findings(name: str) -> None:
    cand = _candidate(GOOD[name])
    assert cand.language == "triton"
    assert screen(cand) == []


SEEDS = sorted(BUNDLED_TASKS_DIR.glob("*/seeds/*.py"))


@pytest.mark.parametrize("path", SEEDS, ids=[f"{p.parent.parent.name}-{p.stem}" for p in SEEDS])
def test_bundled_seeds_have_no_findings(path: Path) -> None:
    assert screen(Candidate.from_path(path)) == []


# -- what the resolved rules still refuse ----------------------------------------------------------------

FAKE_JIT = """
import torch
import triton


def jit(fn):
    return fn


@jit
def _rmsnorm(x, w):
    return x * torch.rsqrt(x.float().pow(2).mean(-1, keepdim=True) + 1e-6) * w


def run(hidden_states, weight):
    return _rmsnorm(hidden_states, weight)
"""


def test_a_local_function_named_jit_is_not_a_kernel() -> None:
    messages = [f.message for f in _findings(FAKE_JIT)]
    assert any("computes with torch.rsqrt" in m for m in messages), messages
    assert any("without any kernel" in m for m in messages), messages


def test_a_rebound_triton_name_is_not_trusted() -> None:
    source = GOOD["from_triton_import_jit"].replace(
        "from triton import jit\n", "from triton import jit\njit = lambda fn: fn\n"
    )
    assert "torch-compute" in _rules(source)


def test_math_on_scalars_is_fine_but_tensor_math_at_run_time_is_not() -> None:
    source = MATH_AT_IMPORT.replace(
        "    y = torch.empty_like(x)\n", "    y = torch.exp(x)\n    z = x.sigmoid()\n"
    )
    messages = [f.message for f in _findings(source)]
    assert len(messages) == 2 and "torch.exp" in messages[0] and "x.sigmoid" in messages[1], messages


CACHE_CHEATS = {
    "lru_cache fed a tensor": ("@functools.lru_cache\ndef _memo(t):\n    return t * 2\n", "_memo(x)"),
    "lru_cache fed a shape": ("@functools.cache\ndef _memo(shape):\n    return shape\n", "_memo(x.shape)"),
    "lru_cache fed an address": ("@functools.cache\ndef _memo(p):\n    return p\n", "_memo(x.data_ptr())"),
    "lru_cache fed contents": (
        "_memo = functools.lru_cache(maxsize=8)(lambda v: v)\n",
        "_memo(x.sum().item())",
    ),
    "lru_cache annotated tensor": (
        "@functools.cache\ndef _memo(t: torch.Tensor) -> int:\n    return 0\n",
        "0",
    ),
    "dict keyed by id": ("_C = {}\n", "_C.get(id(x))"),
    "dict keyed by address": ("_C = {}\n", "_C.get((x.data_ptr(), x.numel()))"),
    "dict keyed by a tensor": ("_C = {}\n", "x in _C"),
    "dict keyed by contents": ("_C = {}\n", "_C[tuple(x[0].tolist())]"),
    "dict storing outputs by shape": ("_C = {}\n", "_C.setdefault(tuple(x.shape), x * 2)"),
    "mutable default argument": ("", "_memo.append(x)"),
}


@pytest.mark.parametrize("case", sorted(CACHE_CHEATS))
def test_caches_keyed_or_filled_by_the_inputs_are_refused(case: str) -> None:
    prelude, use = CACHE_CHEATS[case]
    signature = "x, _memo=[]" if case == "mutable default argument" else "x"
    source = (
        f"import functools\n\nimport torch\nimport triton\n\n{prelude}\n\n"
        f"@triton.jit\ndef _k(p):\n    pass\n\n\ndef run({signature}):\n    {use}\n    return x\n"
    )
    assert "output-cache" in _rules(source), (case, _findings(source))


def test_a_global_assigned_an_output_is_refused() -> None:
    source = (
        "import torch\nimport triton\n\n_LAST = None\n\n\n@triton.jit\ndef _k(p):\n    pass\n\n\n"
        "def _keep(y):\n    global _LAST\n    _LAST = y\n\n\ndef run(x):\n    _keep(x.clone())\n    return x\n"
    )
    assert "output-cache" in _rules(source)


def test_references_and_aliases_of_process_internals_are_refused() -> None:
    assert "evaluator-access" in _rules(
        "import sys\n\n\ndef run(x):\n    sys.modules['torch']\n    return x\n"
    )
    assert "evaluator-access" in _rules("from sys import _getframe as f\n\n\ndef run(x):\n    return x\n")
    assert "evaluator-access" in _rules(
        "import sys as s\n\nframe = s._getframe\n\n\ndef run(x):\n    return x\n"
    )
    assert "concurrency" in _rules("import os as o\n\n\ndef run(x):\n    o.fork()\n    return x\n")
    assert "evaluator-access" in _rules("run_code = eval\n\n\ndef run(x):\n    return x\n")
    assert "monkeypatch" in _rules(
        "import sys\n\nsys.modules['torch'] = None\n\n\ndef run(x):\n    return x\n"
    )
    assert "monkeypatch" in _rules(
        "import torch\n\nobject.__setattr__(torch, 'exp', None)\n\n\ndef run(x):\n    return x\n"
    )


def test_a_file_that_shadows_a_library_is_refused() -> None:
    rules = _rules(GOOD["from_triton_import_jit"], files={"triton.py": "def jit(fn):\n    return fn\n"})
    assert "evaluator-access" in rules


def test_a_fallback_that_returns_a_computed_result_is_refused() -> None:
    source = HOST_HELPERS.replace("        return False\n", "        return x.contiguous()\n", 1)
    assert "fallback" in _rules(source)
