"""FlashInfer's batch decode with a paged KV cache as the opponent of gqa_paged_decode_h32_kv4_d128_ps1.

``BatchDecodeWithPagedKVCacheWrapper`` (NHD layout, tensor-core path) planned for 32 query heads, 4 KV heads,
head dim 128 and page size 1; ``run(..., return_lse=True)`` returns the output and a base-2 log-sum-exp, as
the definition asks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from ksearch_agent.opponents import import_flashinfer, library_version

WORKSPACE_BYTES = 128 * 1024 * 1024


class GqaPagedDecode:
    def __init__(self, name: str, device: torch.device, use_tensor_cores: bool = True) -> None:
        fi = import_flashinfer()
        self.name = name
        self.library = library_version("flashinfer-python")
        self.device = device
        self.workspace = torch.empty(WORKSPACE_BYTES, dtype=torch.uint8, device=device)
        self.wrapper = fi.BatchDecodeWithPagedKVCacheWrapper(
            self.workspace, "NHD", use_tensor_cores=use_tensor_cores
        )

    def plan(self, inputs: dict[str, Any]) -> Callable[[], Any]:
        indptr, indices = inputs["kv_indptr"], inputs["kv_indices"]
        q, k_cache, v_cache = inputs["q"], inputs["k_cache"], inputs["v_cache"]
        last_page_len = torch.ones(indptr.numel() - 1, dtype=torch.int32, device=self.device)
        self.wrapper.plan(
            indptr,
            indices,
            last_page_len,
            q.shape[1],
            k_cache.shape[2],
            q.shape[2],
            k_cache.shape[1],
            pos_encoding_mode="NONE",
            q_data_type=q.dtype,
            kv_data_type=k_cache.dtype,
            sm_scale=float(inputs["sm_scale"]),
        )
        wrapper = self.wrapper
        return lambda: wrapper.run(q, (k_cache, v_cache), return_lse=True)


def make(name: str, device: torch.device) -> GqaPagedDecode:
    return GqaPagedDecode(name, device)
