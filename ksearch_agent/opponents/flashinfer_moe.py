"""FlashInfer's FP8 block-scale MoE as the opponent of moe_fp8_block_scale_ds_routing_topk8_ng8_kg4_e32_h7168_i2048.

FIB's library baseline, ``flashinfer.fused_moe.trtllm_fp8_block_scale_moe``, runs only on Blackwell (sm_100
and later). On Hopper no FlashInfer call computing this definition has been checked yet, so the opponent is
unavailable there and the report says so (the candidate is then compared with the reference only).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from ksearch_agent.opponents import OpponentUnavailable, import_flashinfer, library_version


class MoeFp8BlockScale:
    def __init__(self, name: str, device: torch.device) -> None:
        major, minor = torch.cuda.get_device_capability(device)
        if major < 10:
            raise OpponentUnavailable(
                f"{name}: FIB's library kernel trtllm_fp8_block_scale_moe needs Blackwell (sm_100+); this "
                f"GPU is sm_{major}{minor}, so no library opponent runs and the reference is the only baseline"
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


def make(name: str, device: torch.device) -> MoeFp8BlockScale:
    return MoeFp8BlockScale(name, device)
