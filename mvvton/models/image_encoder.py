"""Global garment encoder: CLIP vision tower + Paint-by-Example mapper -> one garment token.

pooler output `(B, W_clip)` -> mapper (5 pre-norm residual blocks over a single token) -> LayerNorm -> Linear -> `(B, 1, D)`.
Also holds the unconditional vector used for classifier-free guidance (the released model's `learnable_vector`).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn
from transformers import CLIPVisionConfig, CLIPVisionModel

from mvvton.models.precision import upcast_normalization_layers

CLIP_VIT_L14_VISION_CONFIG: dict = {
    "hidden_size": 1024,
    "intermediate_size": 4096,
    "num_hidden_layers": 24,
    "num_attention_heads": 16,
    "image_size": 224,
    "patch_size": 14,
    "hidden_act": "quick_gelu",
    "layer_norm_eps": 1e-5,
    "projection_dim": 768,
}
CLIP_IMAGE_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_IMAGE_STD = (0.26862954, 0.26130258, 0.27577711)


class MapperAttention(nn.Module):
    """Multi-head self-attention with a fused qkv projection split per head (`heads` heads over `width`)."""

    def __init__(self, width: int, heads: int):
        super().__init__()
        self.heads = heads
        self.c_qkv = nn.Linear(width, 3 * width)
        self.c_proj = nn.Linear(width, width)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        batch_size, num_tokens, width = hidden.shape
        qkv = self.c_qkv(hidden).view(batch_size, num_tokens, self.heads, -1)  # (B, N, heads, 3 * head_dim)
        query, key, value = qkv.split(width // self.heads, dim=-1)  # each (B, N, heads, head_dim)
        scale = 1.0 / math.sqrt(math.sqrt(width // self.heads))
        # fp32 island: logits and softmax in float32 whatever the model dtype
        weights = torch.einsum("bthc,bshc->bhts", query.float() * scale, key.float() * scale)  # (B, heads, N, N)
        weights = torch.softmax(weights, dim=-1).to(hidden.dtype)
        attended = torch.einsum("bhts,bshc->bthc", weights, value).reshape(batch_size, num_tokens, width)
        return self.c_proj(attended)


class MapperMLP(nn.Module):
    def __init__(self, width: int):
        super().__init__()
        self.c_fc = nn.Linear(width, 4 * width)
        self.c_proj = nn.Linear(4 * width, width)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.c_proj(F.gelu(self.c_fc(hidden)))


class MapperBlock(nn.Module):
    """Pre-norm residual block: `x += attn(ln_1 x); x += mlp(ln_2 x)`."""

    def __init__(self, width: int, heads: int):
        super().__init__()
        self.ln_1 = nn.LayerNorm(width)
        self.attn = MapperAttention(width, heads)
        self.ln_2 = nn.LayerNorm(width)
        self.mlp = MapperMLP(width)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        hidden = hidden + self.attn(self.ln_1(hidden))
        return hidden + self.mlp(self.ln_2(hidden))


class GarmentImageEncoderModel(ModelMixin, ConfigMixin):
    """Garment crop (CLIP-normalised, `(B, 3, S, S)`) -> global garment token `(B, 1, D)`.

    Args:
        vision_config: `transformers.CLIPVisionConfig` arguments; default = CLIP ViT-L/14 (built from config, no
            download; load real weights with `from_pretrained` of a converted checkpoint).
        mapper_layers / mapper_heads: the Paint-by-Example mapper (5 blocks, 1 head).
        projection_dim: token width D (768).
    """

    @register_to_config
    def __init__(
        self,
        vision_config: dict | None = None,
        mapper_layers: int = 5,
        mapper_heads: int = 1,
        projection_dim: int = 768,
    ):
        super().__init__()
        vision_config = dict(CLIP_VIT_L14_VISION_CONFIG if vision_config is None else vision_config)
        self.vision_model = CLIPVisionModel(CLIPVisionConfig(**vision_config))
        width = vision_config["hidden_size"]
        self.mapper = nn.ModuleList([MapperBlock(width, mapper_heads) for _ in range(mapper_layers)])
        self.final_layer_norm = nn.LayerNorm(width)
        self.proj_out = nn.Linear(width, projection_dim)
        self.uncond_vector = nn.Parameter(torch.randn(1, 1, projection_dim))
        upcast_normalization_layers(self)  # CLIP, mapper and final LayerNorms in fp32 under half precision

    @property
    def image_size(self) -> int:
        return int(self.config.vision_config["image_size"] if self.config.vision_config else 224)

    def map_pooled(self, pooled: torch.Tensor) -> torch.Tensor:
        """CLIP pooler output `(B, W)` -> mapped, normalised `(B, 1, W)` (before the projection)."""
        hidden = pooled.unsqueeze(1)  # (B, 1, W)
        for block in self.mapper:
            hidden = block(hidden)
        return self.final_layer_norm(hidden)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """`(B, 3, S, S)` CLIP-normalised -> `(B, 1, D)` global token."""
        pooled = self.vision_model(pixel_values=pixel_values).pooler_output  # (B, W)
        return self.proj_out(self.map_pooled(pooled))

    def enable_layerwise_casting(
        self,
        storage_dtype: torch.dtype = torch.float8_e4m3fn,
        compute_dtype: torch.dtype | None = None,
        skip_modules_pattern: tuple[str, ...] | None = None,
        skip_modules_classes: tuple[type[nn.Module], ...] | None = None,
        non_blocking: bool = False,
    ) -> None:
        """diffusers' layerwise casting with two fixes for this model. CLIP casts the pixels to its patch embedding's
        weight dtype before any hook could upcast that weight, so the patch embedding (0.6 M parameters) is kept in
        the compute dtype instead. Default skip patterns: only normalisation layers (fp32 islands); diffusers'
        defaults would also skip `proj_out`, leaving it in the storage dtype while its input is in compute dtype."""
        patterns = tuple(skip_modules_pattern or ("norm",)) + ("patch_embedding",)
        super().enable_layerwise_casting(storage_dtype, compute_dtype, patterns, skip_modules_classes, non_blocking)
        self.vision_model.get_input_embeddings().to(compute_dtype or self.dtype)  # CLIP's patch embedding

    def unconditional_embeds(self, batch_size: int) -> torch.Tensor:
        """The unconditional token repeated: `(B, 1, D)`."""
        return self.uncond_vector.expand(batch_size, -1, -1)
