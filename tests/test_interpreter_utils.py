"""The interpreter utilities the CPU contestant calls: a shuffled program order exposes programs that depend
on each other, and poisoned allocations expose output a kernel never writes, while correct kernels and
ordinary PyTorch code are unaffected.

The kernels run under ``TRITON_INTERPRET=1`` in one subprocess (the interpreter is chosen at import), which
prints what each scenario saw as JSON; each test checks one claim about it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from typing import Any

import pytest

SCENARIOS = textwrap.dedent('''
    import json, sys, warnings
    import torch, triton, triton.language as tl
    from ksearch_agent.worker.interpreter import poison_cpu_allocations, shuffle_program_order

    @triton.jit
    def relay(buf):
        """Program 1 reads what program 0 stored: right only if program 0 runs first (a race on a GPU)."""
        p = tl.program_id(0)
        if p == 0:
            tl.store(buf, 1.0)
        else:
            tl.store(buf + 1, tl.load(buf) + 1.0)

    @triton.jit
    def scaled_rows(x, y, cols, BLOCK: tl.constexpr):
        """Correct and independent: program (r, b) scales block b of row r."""
        r, b = tl.program_id(0), tl.program_id(1)
        offs = b * BLOCK + tl.arange(0, BLOCK)
        ok = offs < cols
        v = tl.load(x + r * cols + offs, mask=ok)
        tl.store(y + r * cols + offs, v * 2.0 + r, mask=ok)

    @triton.jit
    def first_rows_only(x, y, cols: tl.constexpr):
        """Copies rows, but its grid is capped at 256 programs: rows past 256 are never written."""
        r = tl.program_id(0)
        offs = tl.arange(0, cols)
        tl.store(y + r * cols + offs, tl.load(x + r * cols + offs))

    def run_relay():
        buf = torch.zeros(2)
        relay[(2,)](buf)
        return buf.tolist()

    def run_rows():
        x = torch.arange(37 * 100, dtype=torch.float32).reshape(37, 100)
        y = torch.zeros_like(x)
        scaled_rows[(37, 4)](x, y, 100, BLOCK=32)
        return y

    out = {}
    out["relay_in_order"] = run_relay()
    rows_in_order = run_rows()
    out["relay_shuffled"] = {}
    for seed in range(8):
        out["installed"] = shuffle_program_order(seed)
        out["relay_shuffled"][seed] = run_relay()
    shuffle_program_order(5)
    out["rows_shuffled_equal"] = bool(torch.equal(run_rows(), rows_in_order))
    out["rows_correct"] = bool(torch.equal(rows_in_order, torch.arange(3700.0).reshape(37, 100) * 2
                                           + torch.arange(37.0)[:, None]))
    shuffle_program_order(None)
    out["relay_after_none"] = run_relay()

    poison_cpu_allocations(True)
    out["inductor_imported"] = "torch._inductor" in sys.modules
    out["empty_all_nan"] = {str(d): bool(torch.empty(64, 3, dtype=d).isnan().all())
                            for d in (torch.float32, torch.bfloat16, torch.float16, torch.float64)}
    like = torch.ones(8, 8)
    out["like_and_new_all_nan"] = bool(torch.empty_like(like).isnan().all() and like.new_empty(5).isnan().all())
    out["int_empty"] = {str(d): torch.empty(4, dtype=d).tolist() for d in (torch.int32, torch.int64, torch.uint8)}
    x = torch.randn(300, 64)
    y = torch.empty_like(x)
    first_rows_only[(min(x.shape[0], 256),)](x, y, cols=64)
    out["unwritten_rows_nan"] = bool(y[256:].isnan().all())
    out["written_rows_exact"] = bool(torch.equal(y[:256], x[:256]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a warning would be an op the poisoning changed; warn_only keeps them non-fatal
        a, idx = torch.randn(100, 50), torch.randint(0, 10, (100,))
        ops = [a @ a.T, torch.softmax(a, -1), torch.zeros(10).index_add_(0, idx, torch.ones(100)),
               torch.zeros(10).scatter_add_(0, idx, torch.ones(100)), torch.cumsum(a, 0), torch.sort(a).values,
               torch.bincount(idx), a.bfloat16().float(), torch.nn.functional.layer_norm(a, (50,))]
    out["ordinary_ops_finite"] = all(bool(torch.isfinite(o.float()).all()) for o in ops)
    out["warn_only"] = torch.is_deterministic_algorithms_warn_only_enabled()
    poison_cpu_allocations(False)
    out["deterministic_after_disable"] = torch.are_deterministic_algorithms_enabled()
    print(json.dumps(out))
''')


@pytest.fixture(scope="module")
def seen(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    script = tmp_path_factory.mktemp("interp") / "scenarios.py"
    script.write_text(SCENARIOS)
    env = {**os.environ, "TRITON_INTERPRET": "1"}
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def test_dependent_programs_are_right_when_run_in_order(seen: dict[str, Any]) -> None:
    assert seen["relay_in_order"] == [1.0, 2.0]


def test_shuffled_order_is_installed_on_this_triton(seen: dict[str, Any]) -> None:
    assert seen["installed"] is True


def test_dependent_programs_go_wrong_under_every_shuffle_seed(seen: dict[str, Any]) -> None:
    """A two-program grid is never left in order: the permutation is reversed if it came out sorted."""
    assert seen["relay_shuffled"] and all(v == [1.0, 1.0] for v in seen["relay_shuffled"].values())


def test_correct_kernel_on_a_2d_grid_gives_identical_output_shuffled(seen: dict[str, Any]) -> None:
    assert seen["rows_correct"] and seen["rows_shuffled_equal"]


def test_seed_none_restores_the_in_order_run(seen: dict[str, Any]) -> None:
    assert seen["relay_after_none"] == [1.0, 2.0]


def test_poisoned_empty_is_all_nan_for_every_float_dtype(seen: dict[str, Any]) -> None:
    assert seen["empty_all_nan"] and all(seen["empty_all_nan"].values())


def test_poisoning_does_not_import_torch_inductor(seen: dict[str, Any]) -> None:
    """Every CPU contestant poisons its allocations at start-up; going through
    ``torch.use_deterministic_algorithms`` imported the inductor, a second of start-up per contestant."""
    assert seen["inductor_imported"] is False


def test_poisoned_empty_like_and_new_empty_are_all_nan(seen: dict[str, Any]) -> None:
    assert seen["like_and_new_all_nan"]


def test_poisoned_integer_tensors_hold_the_dtype_maximum(seen: dict[str, Any]) -> None:
    assert seen["int_empty"] == {
        "torch.int32": [2**31 - 1] * 4,
        "torch.int64": [2**63 - 1] * 4,
        "torch.uint8": [255] * 4,
    }


def test_rows_a_kernel_never_writes_come_out_nan(seen: dict[str, Any]) -> None:
    assert seen["unwritten_rows_nan"] and seen["written_rows_exact"]


def test_ordinary_ops_neither_raise_nor_warn_while_poisoned(seen: dict[str, Any]) -> None:
    assert seen["ordinary_ops_finite"] and seen["warn_only"] is True


def test_disabling_the_poison_restores_the_earlier_determinism_setting(seen: dict[str, Any]) -> None:
    assert seen["deterministic_after_disable"] is False


def test_shuffle_reports_false_when_the_interpreter_has_another_shape(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from triton.runtime import interpreter as interp

    from ksearch_agent.worker import interpreter

    class OtherBuilder:
        def set_grid_idx(self, idx: tuple[int, int, int]) -> None:  # one tuple instead of x, y, z
            pass

        def set_grid_dim(self, nx: int, ny: int, nz: int) -> None:
            pass

    monkeypatch.setattr(interp, "InterpreterBuilder", OtherBuilder)
    assert interpreter.shuffle_program_order(1) is False
    assert not getattr(OtherBuilder.set_grid_idx, "_ksearch_patched", False)
