"""FlashInfer's FP8 block-scale MoE as the opponent of moe_fp8_block_scale_ds_routing_topk8_ng8_kg4_e32_h7168_i2048.

**Blackwell (sm_100+)**: FIB's own library baseline, ``flashinfer.fused_moe.trtllm_fp8_block_scale_moe``, on the
definition's inputs as they are (DeepSeek-V3 routing inside the call, ``routing_method_type=2``).

**Hopper (sm_90)**: that kernel does not run there, so the opponent is FlashInfer's Hopper pair, timed as one
call: ``fused_topk_deepseek`` (sigmoid + bias, 8 groups scored by their best two, top 4 groups, top 8 experts,
weights = sigmoid scores normalised over the 8 and times ``routed_scaling_factor``; float32 logits and the bf16
bias as given, int32 global expert ids and float32 weights into buffers made by ``plan``) then
``cutlass_fused_moe(..., use_deepseek_fp8_block_scale=True)`` with ``ep_size = 256 / 32`` and
``ep_rank = local_expert_offset / 32``, so only the 32 local experts are computed and the others add nothing.
What ``plan`` converts (once per set of inputs, outside the timed call):

- the weights go as they are: GEMM1 ``[32, 4096, 7168]`` FP8 with rows 0..2047 the linear half and 2048..4095
  the half that goes through SiLU (the kernel computes ``silu(gemm1[:, I:]) * gemm1[:, :I]``, FIB's order),
  GEMM2 ``[32, 7168, 2048]``; their block scales, ``[E, N/128, K/128]`` float32 row-major, are also the
  layout the kernel reads (``quant_scales = [gemm1_weights_scale, gemm2_weights_scale]``);
- the hidden states do not: with FP8 block-scale weights the kernel takes **bf16 activations only** and
  quantizes them itself (per token and 128 columns, scale = amax / 448). There is no entry for FP8 activations
  with given scales, so ``plan`` dequantizes FIB's FP8 hidden states with their ``[H/128, T]`` scales in fp32
  and rounds to bf16 (:func:`dequantize_hidden_states`), and the kernel re-quantizes them.

What differs from the definition (the reference computes in fp32 from the exact FP8 values):

- the activations the GEMM1 sees are re-quantized to FP8 on the kernel's own 1x128 scales: each element moves to
  the nearest point of a new FP8 grid (up to 2^-4 relative) unless its block's largest |FP8| value has mantissa
  1.75 (then the grids coincide); the bf16 rounding before it is below 2^-9 relative;
- the GEMM1 output and the SwiGLU output are rounded to bf16, and the SwiGLU output is quantized to FP8 (1x128)
  for GEMM2; the GEMM2 output is bf16 before the weighted sum (FIB's Blackwell baseline quantizes that
  intermediate to FP8 too);
- the routing computes the sigmoid as ``0.5 * tanh(x / 2) + 0.5``; ties between experts may break differently.

So the library's output is a different FP8 computation of the same operator, and the judge's check against the
reference (``library_status``, rtol = atol = 0.01 on every element) fails on these grounds alone: a torch
emulation of these numerics (``evals/moe_library_probe.py``) matches 52-68 % of the elements of FIB-sized
workloads, relative L2 error 4.4 % (H100, 2026-12-07); with FIB's exact FP8 activations and only the bf16 + FP8
intermediate (the Blackwell baseline's numerics) it is still about 69 % and 2.2 % (CPU, seq_len 7). The probe
also compares the library with that emulation, which tells a layout error from this precision difference.

Building: the Hopper CUTLASS MoE module (``fused_moe_90``) is not in the FlashInfer wheel. Without a prebuilt copy
(the flashinfer-jit-cache package) FlashInfer JIT-compiles it on first use: 248 CUTLASS objects. On an H100
machine with 16 cores (nvcc 13.0, 2026-12-07; ``evals/results/moe_library_probe_h100.json``) the build was
unfinished after 450 s, with 17 objects done after about 7.5 minutes by a listing of its folder: at that pace it
takes over an hour, more than a device call (10 minutes) or a held machine (30 minutes) allows. So that a judge never sits in that build, the opponent is unavailable unless the module
is already built (prebuilt, or JIT-built earlier into this machine's FlashInfer cache) or
``KSEARCH_FLASHINFER_MOE_JIT=1`` allows the build.

``local_expert_offset`` must be a multiple of the 32 local experts (every FIB workload's is): otherwise ``plan``
raises and the judge reports the library's RUNTIME_ERROR.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import torch

from ksearch_agent.opponents import OpponentUnavailable, import_flashinfer, library_version

BLOCK = 128
TOP_K, N_GROUP, TOPK_GROUP = 8, 8, 4
JIT_ENV = "KSEARCH_FLASHINFER_MOE_JIT"
"""Set to 1 to let FlashInfer JIT-build its sm90 CUTLASS MoE module when the opponent first runs."""


def expert_parallel_rank(num_experts: int, num_local: int, local_expert_offset: int) -> tuple[int, int]:
    """``(ep_size, ep_rank)`` for which CUTLASS's expert-parallel split computes exactly the global experts
    ``local_expert_offset .. local_expert_offset + num_local - 1`` on this rank."""
    if num_local <= 0 or num_experts % num_local:
        raise ValueError(f"{num_experts} experts do not split into ranks of {num_local} local experts")
    if local_expert_offset % num_local or not 0 <= local_expert_offset < num_experts:
        raise ValueError(
            f"local_expert_offset {local_expert_offset} is not a multiple of {num_local} below {num_experts}: "
            "cutlass_fused_moe places the local experts of rank r at r * num_local"
        )
    return num_experts // num_local, local_expert_offset // num_local


def dequantize_hidden_states(hidden_states: torch.Tensor, hidden_states_scale: torch.Tensor) -> torch.Tensor:
    """FP8 ``[T, H]`` times its block scales ``[H/128, T]`` (FIB's transposed layout), in fp32, as bf16."""
    tokens, hidden = hidden_states.shape
    blocks = hidden // BLOCK
    if hidden % BLOCK or tuple(hidden_states_scale.shape) != (blocks, tokens):
        raise ValueError(
            f"hidden_states {list(hidden_states.shape)} needs scales [{blocks}, {tokens}], "
            f"got {list(hidden_states_scale.shape)}"
        )
    values = hidden_states.float().view(tokens, blocks, BLOCK)
    scales = hidden_states_scale.float().t().unsqueeze(-1)  # [T, H/128, 1]
    return (values * scales).view(tokens, hidden).to(torch.bfloat16)


def cutlass_moe_build_problem() -> str | None:
    """None when FlashInfer's sm90 CUTLASS MoE module is prebuilt or already JIT-built here, else why not."""
    try:
        from flashinfer.jit.fused_moe import gen_cutlass_fused_moe_sm90_module

        spec = gen_cutlass_fused_moe_sm90_module()
        if spec.is_aot or spec.is_compiled:
            return None
        return (
            f"FlashInfer's sm90 CUTLASS MoE module {spec.name} is neither prebuilt (flashinfer-jit-cache) nor "
            f"JIT-built at {spec.jit_library_path}; building it compiles 248 CUTLASS objects"
        )
    except Exception as exc:  # noqa: BLE001 - an unexpected FlashInfer layout must not stop the judge
        return (
            f"cannot tell whether FlashInfer's sm90 CUTLASS MoE module is built ({type(exc).__name__}: {exc})"
        )


class MoeFp8BlockScale:
    """Blackwell: FIB's baseline ``trtllm_fp8_block_scale_moe``."""

    def __init__(self, name: str, device: torch.device) -> None:
        major, minor = torch.cuda.get_device_capability(device)
        if major < 10:
            raise OpponentUnavailable(
                f"{name}: FIB's library kernel trtllm_fp8_block_scale_moe needs Blackwell (sm_100+); this "
                f"GPU is sm_{major}{minor}"
            )
        self.fi = import_flashinfer()
        self.name = name
        self.library = library_version("flashinfer-python")
        self.device = device

    def plan(self, inputs: dict[str, Any]) -> Callable[[], Any]:
        fused_moe = self.fi.fused_moe
        args = dict(inputs)
        return lambda: fused_moe.trtllm_fp8_block_scale_moe(
            args["routing_logits"],
            args["routing_bias"],
            args["hidden_states"],
            args["hidden_states_scale"],
            args["gemm1_weights"],
            args["gemm1_weights_scale"],
            args["gemm2_weights"],
            args["gemm2_weights_scale"],
            256,
            8,
            8,
            4,
            2048,
            int(args["local_expert_offset"]),
            32,
            float(args["routed_scaling_factor"]),
            routing_method_type=2,
        )


class MoeFp8BlockScaleHopper:
    """Hopper: ``fused_topk_deepseek`` + ``cutlass_fused_moe(use_deepseek_fp8_block_scale=True)``."""

    def __init__(self, name: str, device: torch.device, allow_jit_build: bool | None = None) -> None:
        fi = import_flashinfer()
        fused_moe = getattr(fi, "fused_moe", None)
        missing = [f for f in ("fused_topk_deepseek", "cutlass_fused_moe") if not hasattr(fused_moe, f)]
        if missing:
            raise OpponentUnavailable(f"{name}: {library_version('flashinfer-python')} lacks {missing}")
        cuda = torch.version.cuda or "0"
        if tuple(int(p) for p in cuda.split(".")[:2]) < (12, 8):
            raise OpponentUnavailable(
                f"{name}: FlashInfer's FP8 block-scale CUTLASS MoE needs CUDA 12.8+ ({cuda})"
            )
        if allow_jit_build is None:
            allow_jit_build = os.environ.get(JIT_ENV) == "1"
        problem = None if allow_jit_build else cutlass_moe_build_problem()
        if problem:
            raise OpponentUnavailable(
                f"{name}: {problem} (over an hour on 16 cores). Install flashinfer-jit-cache, or build it into "
                "this machine's FlashInfer cache first (evals/moe_library_probe.py OUT --jit-seconds N; ninja "
                f"resumes where it stopped), or set {JIT_ENV}=1 to let the judge build it on first use; until "
                "then the reference is the only baseline"
            )
        self.fused_moe: Any = fused_moe
        self.name = name
        self.library = (
            f"{library_version('flashinfer-python')}: fused_topk_deepseek + cutlass_fused_moe (sm90, FP8 block "
            "scale, bf16 activations re-quantized by the kernel)"
        )
        self.device = device
        self.routing: tuple[torch.Tensor, torch.Tensor] | None = None
        """The last plan's routing buffers (weights, global expert ids), written by each call."""

    def plan(self, inputs: dict[str, Any]) -> Callable[[], Any]:
        logits, bias = inputs["routing_logits"], inputs["routing_bias"]
        w1, w1_scale = inputs["gemm1_weights"], inputs["gemm1_weights_scale"]
        w2, w2_scale = inputs["gemm2_weights"], inputs["gemm2_weights_scale"]
        tokens, num_experts = logits.shape
        ep_size, ep_rank = expert_parallel_rank(num_experts, w1.shape[0], int(inputs["local_expert_offset"]))
        hidden = dequantize_hidden_states(inputs["hidden_states"], inputs["hidden_states_scale"])
        weights = torch.empty(tokens, TOP_K, dtype=torch.float32, device=logits.device)
        ids = torch.empty(tokens, TOP_K, dtype=torch.int32, device=logits.device)
        self.routing = (weights, ids)
        scaling = float(inputs["routed_scaling_factor"])
        quant_scales = [w1_scale.float().contiguous(), w2_scale.float().contiguous()]
        fm = self.fused_moe

        def call() -> torch.Tensor:
            fm.fused_topk_deepseek(logits, bias, N_GROUP, TOPK_GROUP, TOP_K, scaling, weights, ids)
            out = fm.cutlass_fused_moe(
                hidden,
                ids,
                weights,
                w1,
                w2,
                torch.bfloat16,
                quant_scales,
                ep_size=ep_size,
                ep_rank=ep_rank,
                use_deepseek_fp8_block_scale=True,
            )
            result: torch.Tensor = out[0] if isinstance(out, list | tuple) else out
            return result

        return call


def make(name: str, device: torch.device) -> MoeFp8BlockScale | MoeFp8BlockScaleHopper:
    major, minor = torch.cuda.get_device_capability(device)
    if major >= 10:
        return MoeFp8BlockScale(name, device)
    if (major, minor) == (9, 0):
        return MoeFp8BlockScaleHopper(name, device)
    raise OpponentUnavailable(
        f"{name}: FlashInfer's FP8 block-scale MoE runs on Hopper (sm_90, cutlass_fused_moe) or Blackwell "
        f"(sm_100+, trtllm_fp8_block_scale_moe); this GPU is sm_{major}{minor}, so the reference is the only baseline"
    )
