"""MV-VTON pose encoder: a skeleton image -> pose tokens (one module shared by the person and both garment views)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn

from mvvton.models.embeddings import flatten_tokens, space_to_depth
from mvvton.models.precision import upcast_normalization_layers


class PoseEncoderModel(ModelMixin, ConfigMixin):
    """Skeleton render `(B, 3, H, W)` in [-1, 1] -> pose tokens `(B, (H/32)(W/32), D)`.

    conv3x3 -> GELU -> space-to-depth 4 -> conv3x3 -> GELU -> space-to-depth 4 -> conv3x3 -> GELU -> space-to-depth 2
    -> Linear -> LayerNorm.

    Args:
        in_channels: skeleton image channels.
        base_channels: channels of the first conv (4 in the released model); the widths then grow by 16, 256, 1024.
        cross_attention_dim: token width D (768 in the released model).
        sample_size: `(H, W)` the skeleton is resized to first (bilinear), or `None` to keep the input size. The
            released model saw 512x512 skeletons.
    """

    @register_to_config
    def __init__(
        self,
        in_channels: int = 3,
        base_channels: int = 4,
        cross_attention_dim: int = 768,
        sample_size: tuple[int, int] | None = None,
    ):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, base_channels, kernel_size=3, padding=1)
        self.conv2 = nn.Conv2d(base_channels * 16, base_channels * 16, kernel_size=3, padding=1)
        self.conv3 = nn.Conv2d(base_channels * 256, base_channels * 256, kernel_size=3, padding=1)
        self.linear = nn.Linear(base_channels * 1024, cross_attention_dim)
        self.layer_norm = nn.LayerNorm(cross_attention_dim)
        for layer in (self.conv1, self.conv2, self.conv3, self.linear):
            nn.init.xavier_uniform_(layer.weight)
        upcast_normalization_layers(self)  # LayerNorm in fp32 under half precision

    def forward(self, skeleton: torch.Tensor) -> torch.Tensor:
        """`(B, 3, H, W)` [-1, 1] -> `(B, (H/32)(W/32), D)`; H and W must be multiples of 32 (after resizing)."""
        if self.config.sample_size is not None:
            skeleton = F.interpolate(skeleton, size=tuple(self.config.sample_size), mode="bilinear", align_corners=False)
        hidden = space_to_depth(F.gelu(self.conv1(skeleton)), 4)  # (B, 16c, H/4, W/4)
        hidden = space_to_depth(F.gelu(self.conv2(hidden)), 4)  # (B, 256c, H/16, W/16)
        hidden = space_to_depth(F.gelu(self.conv3(hidden)), 2)  # (B, 1024c, H/32, W/32)
        return self.layer_norm(self.linear(flatten_tokens(hidden)))  # (B, N_pose, D)
