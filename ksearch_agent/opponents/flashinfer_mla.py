"""FlashInfer's MLA paged attention as the opponent of the MLA decode and causal prefill definitions.

``flashinfer.mla.BatchMLAPagedAttentionWrapper`` planned with 16 heads, ckv 512, kpe 64, page size 1; for
decode every sequence has one query (``qo_indptr = 0..B``), for prefill the definition's ``qo_indptr`` and a
causal mask. ``run(..., return_lse=True)`` gives the output and the base-2 log-sum-exp.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from ksearch_agent.opponents import import_flashinfer, library_version

WORKSPACE_BYTES = 128 * 1024 * 1024


class MlaPaged:
    def __init__(self, name: str, device: torch.device) -> None:
        fi = import_flashinfer()
        self.name = name
        self.causal = name.endswith("prefill")
        self.library = library_version("flashinfer-python")
        self.device = device
        self.workspace = torch.empty(WORKSPACE_BYTES, dtype=torch.uint8, device=device)
        self.wrapper = fi.mla.BatchMLAPagedAttentionWrapper(self.workspace, backend="auto")

    def plan(self, inputs: dict[str, Any]) -> Callable[[], Any]:
        q_nope, q_pe = inputs["q_nope"], inputs["q_pe"]
        ckv, kpe = inputs["ckv_cache"], inputs["kpe_cache"]
        kv_indptr, kv_indices = inputs["kv_indptr"], inputs["kv_indices"]
        if self.causal:
            qo_indptr = inputs["qo_indptr"]
        else:
            qo_indptr = torch.arange(kv_indptr.numel(), dtype=torch.int32, device=self.device)
        kv_len = (kv_indptr[1:] - kv_indptr[:-1]).to(torch.int32)
        self.wrapper.plan(
            qo_indptr,
            kv_indptr,
            kv_indices,
            kv_len,
            q_nope.shape[1],
            q_nope.shape[2],
            q_pe.shape[2],
            ckv.shape[1],
            self.causal,
            float(inputs["sm_scale"]),
            q_nope.dtype,
            ckv.dtype,
            lse_mode="base2",
        )
        wrapper = self.wrapper
        return lambda: wrapper.run(q_nope, q_pe, ckv, kpe, return_lse=True)


def make(name: str, device: torch.device) -> MlaPaged:
    return MlaPaged(name, device)
