"""Small layers shared by the MV-VTON encoders."""

from __future__ import annotations

import torch
from einops import rearrange


def space_to_depth(features: torch.Tensor, factor: int) -> torch.Tensor:
    """Fold `factor x factor` pixel blocks into channels: `(B, C, H, W) -> (B, factor² C, H/f, W/f)`.

    Output channel `(dy * factor + dx) * C + c` holds input channel `c` at offset `(dy, dx)` of each block (the
    layout MV-VTON's tokenizers were trained with).
    """
    height, width = features.shape[-2:]
    if height % factor or width % factor:
        raise ValueError(f"space_to_depth: spatial size {height}x{width} is not divisible by {factor}")
    return rearrange(features, "b c (h dy) (w dx) -> b (dy dx c) h w", dy=factor, dx=factor)


def flatten_tokens(features: torch.Tensor) -> torch.Tensor:
    """`(B, C, H, W) -> (B, H*W, C)` tokens in row-major order."""
    return rearrange(features, "b c h w -> b (h w) c")
