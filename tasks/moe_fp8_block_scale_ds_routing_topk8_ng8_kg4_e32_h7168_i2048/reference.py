"""PyTorch reference for moe_fp8_block_scale_ds_routing_topk8_ng8_kg4_e32_h7168_i2048 (our own, from the text).

DeepSeek-V3 routing without auxiliary loss: s = sigmoid(logits); experts are ranked by s + bias; the 256
experts form 8 groups of 32, a group's score is the sum of its two best; the best 4 groups are kept and the
best 8 experts inside them are chosen; their weights are s (without bias) normalised over the 8 and scaled by
routed_scaling_factor. This rank computes only its 32 local experts (global ids local_expert_offset ...
+31): per chosen local expert, GEMM1 (gate and up, 4096 rows), SwiGLU silu(up half) * gate half, GEMM2 back
to the hidden size, weighted and summed per token. FP8 values times their 128x128 block scales (the hidden
states' scales are stored [hidden blocks, tokens]); fp32 math; bf16 output. Shapes are read from the tensors,
so the same code checks a shrunken problem.
"""

import torch

BLOCK = 128
TOP_K, N_GROUP, TOPK_GROUP = 8, 8, 4


def route(routing_logits, routing_bias, routed_scaling_factor):
    """(topk_idx [T, 8] global expert ids, weights [T, 8]) of every token."""
    s = torch.sigmoid(routing_logits.float())
    biased = s + routing_bias.float()
    tokens, experts = biased.shape
    groups = biased.view(tokens, N_GROUP, experts // N_GROUP)
    group_score = groups.topk(2, dim=2).values.sum(dim=2)
    keep = torch.zeros_like(group_score).scatter_(1, group_score.topk(TOPK_GROUP, dim=1).indices, 1.0)
    masked = biased.masked_fill(keep.repeat_interleave(experts // N_GROUP, dim=1) == 0, float("-inf"))
    topk_idx = masked.topk(TOP_K, dim=1).indices
    w = s.gather(1, topk_idx)
    return topk_idx, w / (w.sum(dim=1, keepdim=True) + 1e-20) * routed_scaling_factor


def dequant(weights, scales):
    """fp8 [E?, rows, cols] times its [rows/128, cols/128] block scales, in fp32."""
    w = weights.float()
    s = scales.float().repeat_interleave(BLOCK, dim=-2).repeat_interleave(BLOCK, dim=-1)
    return w * s


@torch.no_grad()
def run(
    routing_logits,
    routing_bias,
    hidden_states,
    hidden_states_scale,
    gemm1_weights,
    gemm1_weights_scale,
    gemm2_weights,
    gemm2_weights_scale,
    local_expert_offset,
    routed_scaling_factor,
):
    tokens, hidden = hidden_states.shape
    local = gemm1_weights.shape[0]
    inter = gemm2_weights.shape[2]
    a = hidden_states.float() * hidden_states_scale.float().T.repeat_interleave(BLOCK, dim=1)
    topk_idx, weights = route(routing_logits, routing_bias, routed_scaling_factor)
    out = torch.zeros(tokens, hidden, dtype=torch.float32, device=hidden_states.device)
    for le in range(local):
        chosen = topk_idx == (local_expert_offset + le)  # [T, 8]
        token_ids = chosen.any(dim=1).nonzero().squeeze(1)
        if token_ids.numel() == 0:
            continue
        w13 = dequant(gemm1_weights[le], gemm1_weights_scale[le])  # [2I, H]
        w2 = dequant(gemm2_weights[le], gemm2_weights_scale[le])  # [H, I]
        g1 = a[token_ids] @ w13.T
        c = torch.nn.functional.silu(g1[:, inter:]) * g1[:, :inter]
        o = c @ w2.T
        scale = (weights * chosen).sum(dim=1)[token_ids]
        out.index_add_(0, token_ids, o * scale[:, None])
    return out.to(torch.bfloat16)
