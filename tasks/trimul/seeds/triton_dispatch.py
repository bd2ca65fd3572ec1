"""Shape-dispatched Triton TriMul (AlphaFold3 outgoing triangle update) with fp16 intermediates.

Semantics (``tasks/trimul/reference.py``), ``H = hidden = 128``::

    xn    = LayerNorm_dim(x)
    left  = (xn @ Wlp^T) * mask * sigmoid(xn @ Wlg^T)          # [bs, N, N, H]
    right = (xn @ Wrp^T) * mask * sigmoid(xn @ Wrg^T)
    p[b, i, j, d] = sum_k left[b, i, k, d] * right[b, j, k, d]
    out   = (LayerNorm_H(p) * sigmoid(xn @ Wog^T)) @ Wto^T      # fp32 [bs, N, N, dim]

Why this layout of the work (all figures measured per stage on an H100, see evals/results):

* ``_pack_weights`` -- one launch turns the six fp32 weight matrices into the fp16 operands the
  GEMMs want: ``w_cat`` [dim, 640] in five 128-column groups, where groups 0-3 interleave a
  projection column with its gate column (so the epilogue splits the fp32 accumulator into
  (value, gate) pairs held by the same thread) and group 4 is the out gate; and ``to_out^T``.
  Packing in torch took about ten small launches, which cost more than the kernels at N = 256.
* Projections, two strategies chosen by ``dim``:

  - ``dim <= ROWRES_MAX_DIM`` (128): ``_proj_rowres`` -- a program owns BLOCK_M rows, loads them
    once, computes the LayerNorm in registers and keeps the normalised rows as the fp16 A operand
    for all five groups, so x is read from DRAM exactly once and no normalised copy is written.
    The weight tiles come in through a TMA descriptor straight into shared memory (loading them
    through registers first cost about 8% of the stage).
  - otherwise: ``_layernorm_rows`` writes the normalised rows in fp16 (a memory-bound pass), then
    ``_proj_gemm`` is a plain pipelined GEMM over them, one program per (row block, group), with
    the group index fastest so the five programs that share a row block meet in L2; its tiles leave
    through TMA stores (the stage took 1.6-1.9% less time than with pointer stores at N >= 768).  At dim 384
    the register-resident variant is slower: its A operand spills and the five groups run back to
    back in one program.  So was a one-pass variant that keeps the normalised block in shared memory
    for all 640 columns (3.5 ms against 1.95 ms for LayerNorm pass + GEMM at N = 1024): each program
    waits on 30 weight-tile loads in turn, with only one or two programs per SM to hide them.  Also
    slower, at N = 1024: the (group, k) loop flattened so the next tile's loads fly during the
    epilogue (1.72-2.26 ms against 1.15 ms for this GEMM alone, per row block or persistent), BK = 32
    with 4-5 stages (1.23-1.30 ms); and overlapping the LayerNorm of one row chunk with the GEMM of the
    previous one in a two-role launch gained at most 1% (N >= 768, 2-3 chunks) and lost up to 22%
    with more chunks or at N = 256.

  The gates' sigmoid is ``(1 + tanh(x/2)) / 2`` with the hardware tanh (``_sigmoid``): the epilogues
  are instruction bound enough that this made every benchmark shape 1.5-3% faster end to end.

  Both write ``left`` and ``right`` as fp16 [bs, H, N, N] (one row-major N x N matrix per
  (batch, channel): the triangle contraction then needs no transpose) and ``sigmoid(out gate)``
  as fp16 [bs*N*N, H].
* ``_triangle`` / ``_triangle_tma`` -- batched ``p[z] = left[z] @ right[z]^T`` over z = (b, d), fp16
  operands, fp32 accumulation, p stored in fp16 (halves the traffic of the output stage).  Above
  N = K2_SMALL_N the operand tiles come through TMA descriptors (about 5% faster there; below it the
  descriptors' host cost outweighs the gain).
* ``_output`` -- LayerNorm over H, times the out gate, fp16 GEMM with ``to_out^T``, fp32 output.

* Host side -- in GPUMode's protocol the GPU idles until the first launch and whenever the next
  launch is late, so a call does little Python: everything that depends only on the shape (workspace
  layout, kernels, grids, options) is worked out once per shape (``_Plan``), and at wide dims the long
  LayerNorm pass is launched first.  After a shape's first call the plan keeps its fp16 workspace and
  each kernel's C launch function with the arguments that do not change (workspace addresses, tensor
  maps over the workspace, sizes), so a call passes only the inputs' and the output's addresses
  (``_Site``).  Measured end to end on the H100, interleaved with the earlier per-call workspace and
  Triton launcher: host time of a call 94-135 us -> 46-62 us, GPUMode geomean 0.891 -> 0.829 ms
  (0.797x at N = 256, dim 128), the kernels' own time unchanged.  Programmatic dependent launch (each
  kernel waiting on the previous one in ``griddepcontrol.wait``) made the kernels' own time 2.6%
  slower and was dropped.  Knobs are read when a shape's plan is made.

Row blocks never straddle a batch: the task guarantees N % 16 == 0, so N*N is a multiple of 256.
"""

from __future__ import annotations

from typing import Any

import torch
import triton
import triton.language as tl
from triton.tools.tensor_descriptor import TensorDescriptor

LN_EPS = 1e-5

RAW_LAUNCH = True  # after a shape's first call, launch through the compiled kernels' C launchers (_Site)
FAST_SIGMOID = True  # gates through the hardware tanh.approx (2-3% per call on the H100, every benchmark shape)
PACK_BLOCK_K = 32  # weight rows per program of the packer (grid: 6 x dim / PACK_BLOCK_K)
ROWRES_MAX_DIM = 128  # largest dim handled by the register-resident projection kernel (<= 384)
K1R_BLOCK_M = 64
K1R_NUM_WARPS = 4
K1R_NUM_STAGES = 1  # pipeline depth of the weight tiles over the five groups
K1R_MAXNREG = 128  # register cap per thread (None: the compiler's choice); fewer registers, more blocks per SM
LN_BLOCK_M = 16
LN_NUM_WARPS = 4
K1G_BLOCK_M = 128
K1G_BLOCK_K = 64
K1G_NUM_WARPS = 8
K1G_NUM_STAGES = 3
K2_BLOCK_M = 128
K2_BLOCK_N = 128
K2_BLOCK_K = 64
K2_NUM_WARPS = 8
K2_NUM_STAGES = 3
K2_TMA = True  # triangle operands through tensor descriptors at N > K2_SMALL_N
K2_SMALL_N = 256  # N at or below this uses the small-tile triangle configuration
K2_SMALL_BLOCK_M = 64
K2_SMALL_BLOCK_N = 128
K2_SMALL_NUM_WARPS = 4
K3_BLOCK_M = 64
K3_NUM_WARPS = 4
K3_NUM_STAGES = 1
K3_MAXNREG = None


@triton.jit
def _pack_weights(lp, lg, rp, rg, og, to, w_cat, D, BK: tl.constexpr):
    wo_t = w_cat + D * 640  # to_out^T follows w_cat in the workspace
    s = tl.program_id(0)
    k = tl.program_id(1) * BK + tl.arange(0, BK)
    ch = tl.arange(0, 128)
    kok = (k < D)[:, None]
    if s < 5:
        if s == 0:
            src = lp
        elif s == 1:
            src = lg
        elif s == 2:
            src = rp
        elif s == 3:
            src = rg
        else:
            src = og
        w = tl.load(src + ch[None, :] * D + k[:, None], mask=kok, other=0.0)  # [BK, 128] = W^T slice
        col = tl.where(s < 4, ((s // 2) * 2 + ch // 64) * 128 + (ch % 64) * 2 + s % 2, 512 + ch)
        tl.store(w_cat + k[:, None] * 640 + col[None, :], w.to(tl.float16), mask=kok)
    else:
        w = tl.load(to + k[:, None] * 128 + ch[None, :], mask=kok, other=0.0)  # to_out[d, h]
        tl.store(wo_t + ch[None, :] * D + k[:, None], w.to(tl.float16), mask=kok)


@triton.jit
def _load_rows(xp, NCH: tl.constexpr):
    """Up to three 128-wide column chunks of a row block (unused chunks alias the first)."""
    x0 = tl.load(xp)
    x1 = x0
    x2 = x0
    if NCH > 1:
        x1 = tl.load(xp + 128)
    if NCH > 2:
        x2 = tl.load(xp + 256)
    return x0, x1, x2


@triton.jit
def _row_stats(x0, x1, x2, D: tl.constexpr, NCH: tl.constexpr, EPS: tl.constexpr):
    s = tl.sum(x0, 1)
    if NCH > 1:
        s += tl.sum(x1, 1)
    if NCH > 2:
        s += tl.sum(x2, 1)
    mean = s / D
    c0 = x0 - mean[:, None]
    q = tl.sum(c0 * c0, 1)
    if NCH > 1:
        c1 = x1 - mean[:, None]
        q += tl.sum(c1 * c1, 1)
    if NCH > 2:
        c2 = x2 - mean[:, None]
        q += tl.sum(c2 * c2, 1)
    return mean, 1.0 / tl.sqrt(q / D + EPS)


@triton.jit
def _normalise(xc, mean, rstd, lnw_ptr, lnb_ptr, off: tl.constexpr):
    c = off + tl.arange(0, 128)
    return ((xc - mean[:, None]) * rstd[:, None] * tl.load(lnw_ptr + c)[None, :]
            + tl.load(lnb_ptr + c)[None, :]).to(tl.float16)


@triton.jit
def _sigmoid(x, FAST: tl.constexpr):
    """sigmoid(x) = (1 + tanh(x/2)) / 2; with FAST, tanh is the hardware's tanh.approx.f32 (one MUFU op,
    relative error about 2^-11, i.e. below the fp16 rounding of every value it feeds) instead of an
    exponential and a division; the interpreter (FAST off) has no inline PTX and uses tl.sigmoid."""
    if FAST:
        t = tl.inline_asm_elementwise("tanh.approx.f32 $0, $1;", "=f,f", [x * 0.5], dtype=tl.float32,
                                      is_pure=True, pack=1)
        return 0.5 * t + 0.5
    else:
        return tl.sigmoid(x)


@triton.jit
def _store_gated(acc, mval, lr_ptr, g, b, rin, N2, LR_STRIDE, H: tl.constexpr, BM: tl.constexpr,
                 FAST: tl.constexpr):
    pr, gt = tl.split(tl.reshape(acc, [BM, 64, 2]))
    val = pr * _sigmoid(gt, FAST) * mval[:, None]
    ch = (g % 2) * 64 + tl.arange(0, 64)
    off = (g // 2) * LR_STRIDE + (b * H + ch).to(tl.int64)[None, :] * N2 + rin[:, None]
    tl.store(lr_ptr + off, val.to(tl.float16))


@triton.jit
def _proj_rowres(x_ptr, mask_ptr, lnw_ptr, lnb_ptr, w_desc, ws_ptr, LR_OFF, N2, LR_STRIDE,
                 D: tl.constexpr, H: tl.constexpr, NCH: tl.constexpr, BM: tl.constexpr, EPS: tl.constexpr,
                 STAGES: tl.constexpr, FAST: tl.constexpr):
    # Offsets into the workspace rather than views of it, so this launch needs no split on the host.
    lr_ptr = ws_ptr + LR_OFF
    og_ptr = lr_ptr + 2 * LR_STRIDE  # the out gate follows left and right
    row0 = tl.program_id(0) * BM
    b = row0 // N2
    rin = row0 - b * N2 + tl.arange(0, BM)
    rows = (row0 + tl.arange(0, BM)).to(tl.int64)
    c = tl.arange(0, 128)
    xp = x_ptr + rows[:, None] * D + c[None, :]
    x0, x1, x2 = _load_rows(xp, NCH)
    mean, rstd = _row_stats(x0, x1, x2, D, NCH, EPS)
    xn0 = _normalise(x0, mean, rstd, lnw_ptr, lnb_ptr, 0)
    xn1 = xn0
    xn2 = xn0
    if NCH > 1:
        xn1 = _normalise(x1, mean, rstd, lnw_ptr, lnb_ptr, 128)
    if NCH > 2:
        xn2 = _normalise(x2, mean, rstd, lnw_ptr, lnb_ptr, 256)
    mval = tl.load(mask_ptr + rows)
    for g in tl.range(0, 4, num_stages=STAGES):  # weight tiles arrive by TMA, straight into shared memory
        acc = tl.dot(xn0, w_desc.load([0, g * 128]))
        if NCH > 1:
            acc = tl.dot(xn1, w_desc.load([128, g * 128]), acc)
        if NCH > 2:
            acc = tl.dot(xn2, w_desc.load([256, g * 128]), acc)
        _store_gated(acc, mval, lr_ptr, g, b, rin, N2, LR_STRIDE, H, BM, FAST)
    acc = tl.dot(xn0, w_desc.load([0, 512]))
    if NCH > 1:
        acc = tl.dot(xn1, w_desc.load([128, 512]), acc)
    if NCH > 2:
        acc = tl.dot(xn2, w_desc.load([256, 512]), acc)
    tl.store(og_ptr + rows[:, None] * H + c[None, :], _sigmoid(acc, FAST).to(tl.float16))


@triton.jit
def _layernorm_rows(x_ptr, lnw_ptr, lnb_ptr, xn_ptr, D: tl.constexpr, NCH: tl.constexpr, BM: tl.constexpr,
                    EPS: tl.constexpr):
    rows = (tl.program_id(0) * BM + tl.arange(0, BM)).to(tl.int64)
    c = tl.arange(0, 128)
    xp = x_ptr + rows[:, None] * D + c[None, :]
    op = xn_ptr + rows[:, None] * D + c[None, :]
    if NCH <= 3:  # whole rows in registers: one read of x
        x0, x1, x2 = _load_rows(xp, NCH)
        mean, rstd = _row_stats(x0, x1, x2, D, NCH, EPS)
        tl.store(op, _normalise(x0, mean, rstd, lnw_ptr, lnb_ptr, 0))
        if NCH > 1:
            tl.store(op + 128, _normalise(x1, mean, rstd, lnw_ptr, lnb_ptr, 128))
        if NCH > 2:
            tl.store(op + 256, _normalise(x2, mean, rstd, lnw_ptr, lnb_ptr, 256))
    else:  # wide rows: mean, centred variance, then normalise, re-reading the rows from cache
        s = tl.zeros([BM], dtype=tl.float32)
        for k in range(0, D, 128):
            s += tl.sum(tl.load(xp + k), 1)
        mean = s / D
        q = tl.zeros([BM], dtype=tl.float32)
        for k in range(0, D, 128):
            xc = tl.load(xp + k) - mean[:, None]
            q += tl.sum(xc * xc, 1)
        rstd = 1.0 / tl.sqrt(q / D + EPS)
        for k in range(0, D, 128):
            w = tl.load(lnw_ptr + k + c)
            bb = tl.load(lnb_ptr + k + c)
            xc = tl.load(xp + k) - mean[:, None]
            tl.store(op + k, (xc * rstd[:, None] * w[None, :] + bb[None, :]).to(tl.float16))


@triton.jit
def _proj_gemm(mask_ptr, xn_ptr, w_ptr, lr_desc, og_desc, N2, BS,
               D: tl.constexpr, H: tl.constexpr, BM: tl.constexpr, BK: tl.constexpr, FAST: tl.constexpr):
    # The tiles leave through TMA stores: lr_desc views left and right as one [2*bs*H, N*N] matrix,
    # og_desc the out gate as [bs*N*N, H].
    pid = tl.program_id(0)
    g = pid % 5
    row0 = (pid // 5) * BM
    b = row0 // N2
    rows = (row0 + tl.arange(0, BM)).to(tl.int64)
    kk = tl.arange(0, BK)
    c = tl.arange(0, 128)
    ap = xn_ptr + rows[:, None] * D + kk[None, :]
    bp = w_ptr + kk[:, None] * 640 + g * 128 + c[None, :]
    acc = tl.zeros([BM, 128], dtype=tl.float32)
    for _k in range(0, D, BK):
        acc = tl.dot(tl.load(ap), tl.load(bp), acc)
        ap += BK
        bp += BK * 640
    if g < 4:
        pr, gt = tl.split(tl.reshape(acc, [BM, 64, 2]))
        val = (pr * _sigmoid(gt, FAST) * tl.load(mask_ptr + rows)[:, None]).to(tl.float16)
        lr_desc.store([((g // 2) * BS + b) * H + (g % 2) * 64, row0 - b * N2], tl.trans(val))
    else:
        og_desc.store([row0, 0], _sigmoid(acc, FAST).to(tl.float16))


@triton.jit
def _triangle(l_ptr, r_ptr, p_ptr, N, BM: tl.constexpr, BN: tl.constexpr, BK: tl.constexpr, EVEN: tl.constexpr):
    pid = tl.program_id(0)
    ntj = tl.cdiv(N, BN)
    pi = pid // ntj
    pj = pid % ntj
    base = tl.program_id(1).to(tl.int64) * N * N
    ii = pi * BM + tl.arange(0, BM)
    jj = pj * BN + tl.arange(0, BN)
    kk = tl.arange(0, BK)
    ap = l_ptr + base + ii[:, None] * N + kk[None, :]
    bp = r_ptr + base + jj[None, :] * N + kk[:, None]
    acc = tl.zeros([BM, BN], dtype=tl.float32)
    if EVEN:
        for _k in range(0, N, BK):
            acc = tl.dot(tl.load(ap), tl.load(bp), acc)
            ap += BK
            bp += BK
        tl.store(p_ptr + base + ii[:, None] * N + jj[None, :], acc.to(tl.float16))
    else:
        for k in range(0, N, BK):
            kok = (k + kk) < N
            a = tl.load(ap, mask=(ii < N)[:, None] & kok[None, :], other=0.0)
            bt = tl.load(bp, mask=kok[:, None] & (jj < N)[None, :], other=0.0)
            acc = tl.dot(a, bt, acc)
            ap += BK
            bp += BK
        tl.store(p_ptr + base + ii[:, None] * N + jj[None, :], acc.to(tl.float16),
                 mask=(ii < N)[:, None] & (jj < N)[None, :])


@triton.jit
def _triangle_tma(l_desc, r_desc, p_ptr, N, BM: tl.constexpr, BN: tl.constexpr, BK: tl.constexpr):
    pid = tl.program_id(0)
    z = tl.program_id(1)
    ntj = N // BN
    pi = pid // ntj
    pj = pid % ntj
    ra = z * N + pi * BM
    rb = z * N + pj * BN
    acc = tl.zeros([BM, BN], dtype=tl.float32)
    for k in range(0, N, BK):
        acc = tl.dot(l_desc.load([ra, k]), r_desc.load([rb, k]).T, acc)
    ii = pi * BM + tl.arange(0, BM)
    jj = pj * BN + tl.arange(0, BN)
    tl.store(p_ptr + z.to(tl.int64) * N * N + ii[:, None] * N + jj[None, :], acc.to(tl.float16))


@triton.jit
def _output(lnw_ptr, lnb_ptr, out_ptr, p_ptr, og_ptr, wo_ptr, N2, D: tl.constexpr, H: tl.constexpr,
            BM: tl.constexpr, EPS: tl.constexpr):
    row0 = tl.program_id(0) * BM
    b = row0 // N2
    rin = row0 - b * N2 + tl.arange(0, BM)
    rows = (row0 + tl.arange(0, BM)).to(tl.int64)
    hh = tl.arange(0, H)
    p = tl.load(p_ptr + (b * H + hh).to(tl.int64)[None, :] * N2 + rin[:, None]).to(tl.float32)
    mean = tl.sum(p, 1) / H
    pc = p - mean[:, None]
    rstd = 1.0 / tl.sqrt(tl.sum(pc * pc, 1) / H + EPS)
    gate = tl.load(og_ptr + rows[:, None] * H + hh[None, :]).to(tl.float32)
    a = ((pc * rstd[:, None] * tl.load(lnw_ptr + hh)[None, :] + tl.load(lnb_ptr + hh)[None, :]) * gate)
    a = a.to(tl.float16)
    orow = out_ptr + rows[:, None] * D
    nn = tl.arange(0, 128)
    for n0 in range(0, D, 128):
        wt = tl.load(wo_ptr + hh[:, None] * D + n0 + nn[None, :])
        tl.store(orow + n0 + nn[None, :], tl.dot(a, wt))


class _Site:
    """One launch site for one shape: the kernel, its grid and compile-time options, fixed by the shape.

    ``kernel[grid](...)`` binds and specialises every argument and looks the kernel up again on each
    call (15-30 us of host time per launch on the H100 host), Triton's launcher then turns every tensor
    descriptor into a CUDA tensor map and asks the driver about every tensor pointer.  At N = 256 the
    launches of one call cost more host time than the GPU spends on them, and in GPUMode's protocol the
    GPU waits for them.  So a shape's first eligible call goes through the JIT (``jit``) and ``bind``
    keeps the compiled kernel's C launch function and, for the arguments that stay the same from call to
    call (workspace pointers, tensor maps over the workspace, sizes, compile-time options), their
    launch-ready form; a bound site's ``__call__`` takes only the arguments that change (the inputs' and
    the output's addresses, as integers) and launches.  Sound because everything the JIT specialises
    on is the same for every eligible call of a shape: dtypes (fp32 inputs, fp16 workspace), the
    integers (derived from the shape) and pointer alignment (``run`` checks every input on every call;
    a call with an unaligned input is not eligible and goes through the JIT).
    """

    __slots__ = ("kernel", "grid", "meta", "launch", "head", "tail")

    def __init__(self, kernel: Any, grid: tuple[int, ...], meta: dict[str, Any]) -> None:
        self.kernel, self.meta = kernel, meta
        self.grid = tuple(grid) + (1,) * (3 - len(grid))
        self.launch: Any = None
        self.head: tuple[Any, ...] = ()
        self.tail: tuple[Any, ...] = ()

    def jit(self, *args: Any) -> Any:
        """Launch through Triton's JIT; returns the compiled kernel."""
        return self.kernel[self.grid](*args, **self.meta)

    def bind(self, compiled: Any, args: tuple[Any, ...], changing: int) -> bool:
        """Keep ``compiled``'s raw launch with ``args[changing:]`` fixed; False where this Triton's launcher
        is not the one this was written against (the site then keeps launching through the JIT)."""
        compiled[self.grid]  # loads the module, so the launcher and function handle exist
        launcher = compiled.run
        launch = getattr(launcher, "launch", None)
        code = getattr(launch, "__code__", None)
        if code is not None:  # Triton's Python wrapper that expands tensor descriptors on every launch
            if "launcher" not in code.co_freevars or launch.__closure__ is None:
                return False
            launch = launch.__closure__[code.co_freevars.index("launcher")].cell_contents
        if (launch is None or hasattr(launch, "__code__") or getattr(launcher, "global_scratch_size", 1)
                or getattr(launcher, "profile_scratch_size", 1)):
            return False
        expand = _descriptor_expander()
        if expand is None:
            return False
        metas = list(getattr(compiled.metadata, "tensordesc_meta", None) or [])
        tail: list[Any] = []
        for a in args[changing:]:
            if isinstance(a, TensorDescriptor):
                tail.extend(expand(a, metas.pop(0) if metas else None))
            else:
                tail.append(a)
        tail.extend(self.meta[p.name] for p in self.kernel.params[len(args):])
        self.tail = tuple(v.data_ptr() if isinstance(v, torch.Tensor) else v for v in tail)
        self.head = (compiled.function, launcher.launch_cooperative_grid, launcher.launch_pdl, None, None,
                     compiled.packed_metadata, None, None, None)
        self.launch = launch
        return True

    def __call__(self, stream: int, *changing: int) -> None:
        g = self.grid
        self.launch(g[0], g[1], g[2], stream, *self.head, *changing, *self.tail)


def _descriptor_expander() -> Any:
    """Triton's own expansion of a host tensor descriptor into launch arguments (tensor map, sizes,
    strides), or None where this Triton has none.  Looked up after a launch, which loads the module."""
    driver = getattr(getattr(getattr(triton, "backends", None), "nvidia", None), "driver", None)
    return getattr(driver, "make_tensordesc_arg", None)


class _Plan:
    """Everything about a call that depends only on (shape, device): workspace layout, kernels, grids.

    Once bound (after the shape's first eligible call) the plan owns its fp16 workspace, so tensor maps
    over it are made once; it is rebound, with a fresh workspace, when a call comes on another stream.
    At most ``_MAX_BOUND`` plans hold a workspace at a time.
    """

    def __init__(self, bs: int, n: int, dim: int, device: torch.device) -> None:
        n2 = n * n
        m = bs * n2
        self.resident = _resident(dim, m)
        # Compiled for a GPU (not the interpreter): direct launches and the tanh.approx sigmoid are possible.
        compiled = device.type == "cuda" and isinstance(_output, triton.runtime.JITFunction)
        fast = compiled and FAST_SIGMOID
        # One fp16 workspace: [x normalised (wide dims only) |] w_cat | to_out^T | left | right | out gate | p.
        # The packer writes to_out^T right after w_cat; left and right are adjacent, so the
        # projections write right at left + bs*128*N*N.
        lr = bs * 128 * n2
        self.sizes = [dim * 640, 128 * dim, lr, lr, m * 128, lr]
        if not self.resident:
            self.sizes.insert(0, m * dim)
        self.elems = sum(self.sizes)
        self.shape = (bs, n, dim, n2, lr)
        self.out_shape = (bs, n, n, dim)
        self.device = device
        self.pack = _Site(_pack_weights, (6, triton.cdiv(dim, PACK_BLOCK_K)), {"BK": PACK_BLOCK_K, "num_warps": 4})
        self.proj = _Site(_proj_rowres, (m // K1R_BLOCK_M,), {
            "D": dim, "H": 128, "NCH": dim // 128, "BM": K1R_BLOCK_M, "EPS": LN_EPS, "STAGES": K1R_NUM_STAGES,
            "FAST": fast, "num_warps": K1R_NUM_WARPS, "maxnreg": K1R_MAXNREG})
        self.norm = _Site(_layernorm_rows, (m // LN_BLOCK_M,), {
            "D": dim, "NCH": dim // 128, "BM": LN_BLOCK_M, "EPS": LN_EPS, "num_warps": LN_NUM_WARPS})
        # left and right are adjacent: one [2*bs*128, N*N] matrix for the GEMM's TMA stores.
        self.lr_blocks = ([2 * bs * 128, n2], [n2, 1], [64, K1G_BLOCK_M])
        self.og_blocks = ([m, 128], [128, 1], [K1G_BLOCK_M, 128])
        self.gemm = _Site(_proj_gemm, (m // K1G_BLOCK_M * 5,), {
            "D": dim, "H": 128, "BM": K1G_BLOCK_M, "BK": K1G_BLOCK_K, "FAST": fast, "num_warps": K1G_NUM_WARPS,
            "num_stages": K1G_NUM_STAGES})
        if n <= K2_SMALL_N:
            bm, bn, warps = K2_SMALL_BLOCK_M, K2_SMALL_BLOCK_N, K2_SMALL_NUM_WARPS
        else:
            bm, bn, warps = K2_BLOCK_M, K2_BLOCK_N, K2_NUM_WARPS
        even = n % bm == 0 and n % bn == 0 and n % K2_BLOCK_K == 0
        self.tri_tma = even and K2_TMA and n > K2_SMALL_N
        self.tri_blocks = ([bs * 128 * n, n], [n, 1], [bm, K2_BLOCK_K], [bn, K2_BLOCK_K])
        tri_meta = {"BM": bm, "BN": bn, "BK": K2_BLOCK_K, "num_warps": warps, "num_stages": K2_NUM_STAGES}
        if self.tri_tma:
            self.tri = _Site(_triangle_tma, ((n // bm) * (n // bn), bs * 128), tri_meta)
        else:
            self.tri = _Site(_triangle, (triton.cdiv(n, bm) * triton.cdiv(n, bn), bs * 128), {**tri_meta, "EVEN": even})
        self.out = _Site(_output, (m // K3_BLOCK_M,), {
            "D": dim, "H": 128, "BM": K3_BLOCK_M, "EPS": LN_EPS, "num_warps": K3_NUM_WARPS,
            "num_stages": K3_NUM_STAGES, "maxnreg": K3_MAXNREG})
        # Direct launches need Triton's CUDA launcher; the interpreter launches through itself.
        self.direct = compiled and RAW_LAUNCH
        self.device_index = device.index if device.index is not None else 0
        self.stream = triton.runtime.driver.active.get_current_stream if compiled else None
        self.ws: torch.Tensor | None = None  # the bound workspace
        self.bound_stream: int | None = None

    def launch_jit(self, t: tuple[torch.Tensor, ...], ws: torch.Tensor) -> tuple[Any, ...]:
        """One call through the JIT with workspace ``ws``; returns (output, [(site, compiled, args, changing)])."""
        x, mask, ln_w, ln_b, lp, rp, lg, rg, og_w, oln_w, oln_b, to = t
        bs, n, dim, n2, lr = self.shape
        done = []
        if self.resident:
            a = (lp, lg, rp, rg, og_w, to, ws, dim)
            done.append((self.pack, self.pack.jit(*a), a, 6))
            a = (x, mask, ln_w, ln_b, TensorDescriptor(ws, [dim, 640], [640, 1], [128, 128]), ws, dim * 768, n2, lr)
            done.append((self.proj, self.proj.jit(*a), a, 4))
            w_cat, wo_t, left, right, og, p = ws.split(self.sizes)
        else:
            a = (x, ln_w, ln_b, ws)
            done.append((self.norm, self.norm.jit(*a), a, 3))
            xn, w_cat, wo_t, left, right, og, p = ws.split(self.sizes)
            a = (lp, lg, rp, rg, og_w, to, w_cat, dim)
            done.append((self.pack, self.pack.jit(*a), a, 6))
            a = (mask, xn, w_cat, TensorDescriptor(left, *self.lr_blocks), TensorDescriptor(og, *self.og_blocks), n2, bs)
            done.append((self.gemm, self.gemm.jit(*a), a, 1))
        if self.tri_tma:
            shape, strides, lblock, rblock = self.tri_blocks
            a = (TensorDescriptor(left, shape, strides, lblock), TensorDescriptor(right, shape, strides, rblock), p, n)
        else:
            a = (left, right, p, n)
        done.append((self.tri, self.tri.jit(*a), a, 0))
        out = torch.empty(self.out_shape, device=self.device, dtype=torch.float32)
        a = (oln_w, oln_b, out, p, og, wo_t, n2)
        done.append((self.out, self.out.jit(*a), a, 3))
        return out, done

    def launch_bound(self, stream: int, ptrs: list[int]) -> torch.Tensor:
        """One call through the bound sites: only the inputs' and the output's addresses are passed."""
        x, mask, ln_w, ln_b, lp, rp, lg, rg, og_w, oln_w, oln_b, to = ptrs
        if self.resident:
            self.pack(stream, lp, lg, rp, rg, og_w, to)
            self.proj(stream, x, mask, ln_w, ln_b)
        else:
            self.norm(stream, x, ln_w, ln_b)
            self.pack(stream, lp, lg, rp, rg, og_w, to)
            self.gemm(stream, mask)
        self.tri(stream)
        out = torch.empty(self.out_shape, device=self.device, dtype=torch.float32)
        self.out(stream, oln_w, oln_b, out.data_ptr())
        return out

    def bind(self, stream: int, ws: torch.Tensor, done: list[tuple[Any, ...]]) -> None:
        """Adopt ``ws`` as this plan's workspace and bind every site to it (for calls on ``stream``); if any
        site cannot be bound, the plan is left unbound (no mix of sites bound to different workspaces)."""
        self.unbind()
        if not all(site.bind(compiled, args, changing) for site, compiled, args, changing in done):
            return
        self.ws, self.bound_stream = ws, stream
        _BOUND.append(self)
        while len(_BOUND) > _MAX_BOUND:
            _BOUND[0].unbind()

    def unbind(self) -> None:
        """Drop the workspace and leave the bound set; calls go through the JIT until the plan is bound again."""
        self.ws, self.bound_stream = None, None
        if self in _BOUND:
            _BOUND.remove(self)


_PLANS: dict[tuple[Any, ...], _Plan] = {}
_BOUND: list[_Plan] = []
_MAX_BOUND = 2  # plans holding a workspace at once (about 1.9 GB each at N = 1024, dim 384)


def _resident(dim: int, m: int) -> bool:
    return dim <= ROWRES_MAX_DIM and dim // 128 <= 3 and m % K1R_BLOCK_M == 0


_RUNTIME_KNOBS = getattr(getattr(triton, "knobs", None), "runtime", None)


def _launch_hooks_set() -> bool:
    """A profiler (e.g. proton) listening to Triton launches: launch through the JIT so it sees them."""
    hook = getattr(_RUNTIME_KNOBS, "launch_enter_hook", None)
    return hook is not None and bool(getattr(hook, "calls", True))


def _direct_pointers(t: tuple[torch.Tensor, ...], device_index: int) -> list[int] | None:
    """The inputs' addresses when every input is fp32, contiguous, on the plan's GPU and 16-byte aligned
    (what the bound kernels were specialised for); otherwise None."""
    f32 = torch.float32
    ptrs = []
    for a in t:
        if a.dtype != f32 or not a.is_contiguous() or a.get_device() != device_index:
            return None
        p = a.data_ptr()
        if p % 16:
            return None
        ptrs.append(p)
    return ptrs


def run(
    x: torch.Tensor,
    mask: torch.Tensor,
    norm_weight: torch.Tensor,
    norm_bias: torch.Tensor,
    left_proj: torch.Tensor,
    right_proj: torch.Tensor,
    left_gate: torch.Tensor,
    right_gate: torch.Tensor,
    out_gate: torch.Tensor,
    to_out_norm_weight: torch.Tensor,
    to_out_norm_bias: torch.Tensor,
    to_out: torch.Tensor,
) -> torch.Tensor:
    """TriMul forward: x [bs, N, N, dim] fp32, mask [bs, N, N] -> out [bs, N, N, dim] fp32.

    Written for little host work before the first launch: in GPUMode's protocol the GPU idles until
    then.  At wide dims the LayerNorm pass (the longest kernel) goes first, so every later launch is
    issued while the GPU is busy.
    """
    t: tuple[torch.Tensor, ...] = (x, mask, norm_weight, norm_bias, left_proj, right_proj, left_gate, right_gate,
                                   out_gate, to_out_norm_weight, to_out_norm_bias, to_out)
    key = (x.shape, left_proj.shape, x.device)
    plan = _PLANS.get(key)
    if plan is None:
        bs, n, n_check, dim = x.shape
        if n != n_check or left_proj.shape[0] != 128 or dim % 128 or n % 16:
            raise ValueError(f"expects x [bs, N, N, dim] with N % 16 == 0, dim % 128 == 0 and hidden 128; "
                             f"got x {tuple(x.shape)}, hidden {left_proj.shape[0]}")
        plan = _PLANS[key] = _Plan(bs, n, dim, x.device)
    ptrs = _direct_pointers(t, plan.device_index) if plan.direct and not _launch_hooks_set() else None
    stream = plan.stream(plan.device_index) if plan.stream is not None else 0
    if ptrs is not None and plan.bound_stream == stream:
        return plan.launch_bound(stream, ptrs)
    if ptrs is None and not all(a.dtype == torch.float32 and a.is_contiguous() for a in t):
        t = tuple(a.contiguous().float() for a in t)
    ws = torch.empty(plan.elems, device=plan.device, dtype=torch.float16)
    out, done = plan.launch_jit(t, ws)
    if ptrs is not None:
        plan.bind(stream, ws, done)
    return out


def custom_kernel(data: tuple) -> torch.Tensor:
    """GPUMode entry point: data = (x, mask, weights, config)."""
    x, mask, weights, _config = data
    return run(
        x,
        mask,
        weights["norm.weight"],
        weights["norm.bias"],
        weights["left_proj.weight"],
        weights["right_proj.weight"],
        weights["left_gate.weight"],
        weights["right_gate.weight"],
        weights["out_gate.weight"],
        weights["to_out_norm.weight"],
        weights["to_out_norm.bias"],
        weights["to_out.weight"],
    )
