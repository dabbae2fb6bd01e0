"""Attention for padding-free batches that attends within each example only.

A padding-free batch lays its examples end to end in one row. PyTorch's SDPA over that row with a
block-diagonal mask still computes every (query, key) pair of the whole row: (sum of lengths)^2 work, most of it
masked away. Running SDPA once per example, causal and unmasked, costs the sum of squared lengths instead, less
than a padded batch's batch x longest^2, and lets PyTorch pick its fused kernels. The boundaries come from
`cu_seq_lens_q`, which TRL's padding-free collator already passes to the model.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel
from transformers import AttentionInterface, AttentionMaskInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import sdpa_mask

NAME = "workbench_varlen_sdpa"
# Not cuDNN's attention, which PyTorch prefers for bf16 on Hopper: it builds an execution plan for every new shape,
# and per-example lengths make nearly every call new. On an H200 that cost 2.8 ms of CPU per call, 1.1 s of a
# 1.6 s step of a 1B LoRA (bench/gpu_profile.py); the GPU itself was busy for 65 ms.
_BACKENDS = [SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH]


def varlen_sdpa_forward(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    dropout: float = 0.0,
    scaling: float | None = None,
    cu_seq_lens_q: torch.Tensor | None = None,
    **kwargs,
) -> tuple[torch.Tensor, None]:
    # Anything but a packed single row (generation, padded evaluation) takes the ordinary SDPA path.
    if cu_seq_lens_q is None or query.shape[0] != 1 or key.shape[2] != query.shape[2]:
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout, scaling, **kwargs)
    bounds = cu_seq_lens_q.tolist()
    with sdpa_kernel(_BACKENDS):
        parts = _per_example(query, key, value, bounds, dropout, scaling)
    return torch.cat(parts, dim=2).transpose(1, 2).contiguous(), None


def _per_example(query, key, value, bounds: list[int], dropout: float, scaling: float | None) -> list[torch.Tensor]:
    return [
        F.scaled_dot_product_attention(
            query[:, :, start:end],
            key[:, :, start:end],
            value[:, :, start:end],
            dropout_p=dropout,
            scale=scaling,
            is_causal=True,
            enable_gqa=key.shape[1] != query.shape[1],
        )
        for start, end in zip(bounds[:-1], bounds[1:], strict=True)
        if end > start
    ]


AttentionInterface.register(NAME, varlen_sdpa_forward)
AttentionMaskInterface.register(NAME, sdpa_mask)  # the fallback path needs SDPA's masks
