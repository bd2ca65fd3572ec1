"""PyTorch reference for softmax over the last dimension (fp32)."""

import torch


def run(x: torch.Tensor) -> torch.Tensor:
    return torch.softmax(x, dim=-1)
