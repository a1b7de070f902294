"""MV-VTON garment encoder: local garment features, tokenised per level, with pose-driven soft selection.

A ControlNet-style copy of the denoiser's encoder (time embedding, down blocks) fed by a small conv embedding of the
garment image. Each of its feature levels (the embedding output, then every resnet/attention layer and downsampler
output) is folded 2x2 into channels, flattened to tokens and projected to the token width D. With soft selection,
each view's tokens are mixed channel-wise by `softmax(P_hᵀ · P_v)`, a D x D matrix comparing the person's pose
tokens with that garment view's pose tokens; the views are then concatenated along tokens (front first).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.attention_processor import Attention
from diffusers.models.controlnets.controlnet import ControlNetConditioningEmbedding
from diffusers.models.embeddings import TimestepEmbedding, Timesteps
from diffusers.models.modeling_utils import ModelMixin
from diffusers.models.unets.unet_2d_blocks import get_down_block
from diffusers.models.unets.unet_2d_condition import UNet2DConditionModel
from diffusers.utils import BaseOutput
from einops import rearrange, repeat
from torch import nn

from mvvton.models.attention_processor import check_slice_size
from mvvton.models.embeddings import flatten_tokens, space_to_depth
from mvvton.models.precision import upcast_normalization_layers


@dataclass
class GarmentEncoderOutput(BaseOutput):
    """
    Args:
        garment_tokens: per level `k`, `(B, V * N_k, D)` local tokens, views concatenated along tokens (front first).
        premix_tokens: per level, `(B, V, N_k, D)` projected tokens before soft selection (only on request).
        person_pose_projections / garment_pose_projections: per level, `(B, N_pose, D)` and `(B, V, N_pose, D)`
            (only on request, with soft selection).
    """

    garment_tokens: tuple[torch.Tensor, ...]
    premix_tokens: tuple[torch.Tensor, ...] | None = None
    person_pose_projections: tuple[torch.Tensor, ...] | None = None
    garment_pose_projections: tuple[torch.Tensor, ...] | None = None


class GarmentEncoderModel(ModelMixin, ConfigMixin):
    """Garment images of V views -> local garment tokens for the denoiser's joint attention.

    Args:
        in_channels: channels of the denoiser input (only used by `conv_in`, see `use_noisy_latent`).
        conditioning_channels: garment image channels.
        conditioning_embedding_out_channels: widths of the garment-image conv embedding (ControlNet's).
        block_out_channels, down_block_types, layers_per_block, attention_head_dim, cross_attention_dim, ...:
            the denoiser encoder geometry this encoder copies (`from_unet`).
        token_dim: width D of the produced tokens (the denoiser's cross-attention width).
        num_views: garment views per sample (2: front, back; 1: the frontal-only variant).
        use_soft_selection: mix each view's tokens with the pose-driven D x D selection (needs pose tokens).
        share_garment_pose_projection: one projection for both garment views' poses (released model) or one per view.
        scale_soft_selection_logits: divide the selection logits by sqrt(N_pose); the released model does not.
        use_noisy_latent: also feed the noisy latent through `conv_in`, added to the garment embedding as ControlNet
            does. The released model computes `conv_in` and discards it (its encoder sees only the garment and t).
        garment_sample_size: `(H, W)` garment images are resized to first (bicubic); released model: 512x512.
    """

    _supports_gradient_checkpointing = True

    @register_to_config
    def __init__(
        self,
        in_channels: int = 9,
        conditioning_channels: int = 3,
        conditioning_embedding_out_channels: tuple[int, ...] = (16, 32, 96, 256),
        block_out_channels: tuple[int, ...] = (320, 640, 1280, 1280),
        down_block_types: tuple[str, ...] = (
            "CrossAttnDownBlock2D",
            "CrossAttnDownBlock2D",
            "CrossAttnDownBlock2D",
            "DownBlock2D",
        ),
        layers_per_block: int = 2,
        downsample_padding: int = 1,
        act_fn: str = "silu",
        norm_num_groups: int = 32,
        norm_eps: float = 1e-5,
        cross_attention_dim: int = 768,
        attention_head_dim: int = 8,
        flip_sin_to_cos: bool = True,
        freq_shift: int = 0,
        use_linear_projection: bool = False,
        upcast_attention: bool = False,
        token_dim: int = 768,
        num_views: int = 2,
        use_soft_selection: bool = True,
        share_garment_pose_projection: bool = True,
        scale_soft_selection_logits: bool = False,
        use_noisy_latent: bool = False,
        garment_sample_size: tuple[int, int] | None = (512, 512),
    ):
        super().__init__()
        if use_soft_selection and num_views < 1:
            raise ValueError("num_views must be >= 1")
        self.gradient_checkpointing = False
        time_embed_dim = block_out_channels[0] * 4
        self.conv_in = nn.Conv2d(in_channels, block_out_channels[0], kernel_size=3, padding=1)
        self.time_proj = Timesteps(block_out_channels[0], flip_sin_to_cos, freq_shift)
        self.time_embedding = TimestepEmbedding(block_out_channels[0], time_embed_dim, act_fn=act_fn)
        self.garment_embedding = ControlNetConditioningEmbedding(
            conditioning_embedding_channels=block_out_channels[0],
            conditioning_channels=conditioning_channels,
            block_out_channels=tuple(conditioning_embedding_out_channels),
        )
        self.garment_embedding.conv_out.reset_parameters()  # MV-VTON's embedding output is not zero-initialised

        self.down_blocks = nn.ModuleList()
        level_channels = [block_out_channels[0]]
        output_channel = block_out_channels[0]
        for index, block_type in enumerate(down_block_types):
            input_channel, output_channel = output_channel, block_out_channels[index]
            is_final_block = index == len(block_out_channels) - 1
            self.down_blocks.append(
                get_down_block(
                    block_type,
                    num_layers=layers_per_block,
                    in_channels=input_channel,
                    out_channels=output_channel,
                    temb_channels=time_embed_dim,
                    add_downsample=not is_final_block,
                    resnet_eps=norm_eps,
                    resnet_act_fn=act_fn,
                    resnet_groups=norm_num_groups,
                    cross_attention_dim=cross_attention_dim,
                    num_attention_heads=attention_head_dim,  # diffusers' SD-1 convention: this is the head count
                    attention_head_dim=output_channel // attention_head_dim,
                    downsample_padding=downsample_padding,
                    use_linear_projection=use_linear_projection,
                    upcast_attention=upcast_attention,
                )
            )
            level_channels += [output_channel] * layers_per_block
            if not is_final_block:
                level_channels.append(output_channel)

        # Per-level tokenizers (2x2 space-to-depth -> Linear) and soft-selection pose projections.
        self.token_projections = nn.ModuleList([nn.Linear(4 * channels, token_dim) for channels in level_channels])
        if use_soft_selection:
            self.person_pose_projections = nn.ModuleList([nn.Linear(token_dim, token_dim) for _ in level_channels])
            self.garment_pose_projections = nn.ModuleList([nn.Linear(token_dim, token_dim) for _ in level_channels])
            if not share_garment_pose_projection:
                # one extra set per additional view (views 1..V-1); view 0 uses `garment_pose_projections`
                self.extra_view_pose_projections = nn.ModuleList(
                    [
                        nn.ModuleList([nn.Linear(token_dim, token_dim) for _ in level_channels])
                        for _ in range(num_views - 1)
                    ]
                )
        upcast_normalization_layers(self)  # GroupNorm / LayerNorm in fp32 under half precision

    @property
    def num_levels(self) -> int:
        return len(self.token_projections)

    def set_attention_slice(self, slice_size: str | int | None = "auto") -> None:
        """Sliced attention in every attention layer (diffusers' `SlicedAttnProcessor`), or back to SDPA with `None`.

        `"auto"`: half the heads per chunk, `"max"`: one, or an int number of (batch x head) rows per chunk.
        """
        if slice_size is not None and slice_size not in ("auto", "max"):
            check_slice_size(slice_size)
        for module in self.modules():
            if isinstance(module, Attention):
                rows = {"auto": max(1, module.heads // 2), "max": 1}.get(slice_size, slice_size)
                module.set_attention_slice(None if rows is None else min(rows, module.sliceable_head_dim))

    # ----------------------------------------------------------------------------------------------------------

    @classmethod
    def from_unet(cls, unet: UNet2DConditionModel, **overrides) -> GarmentEncoderModel:
        """Copy the encoder half (conv_in, time embedding, down blocks) of `unet`; new layers get default inits."""
        config = unet.config
        attention_head_dim = config.attention_head_dim
        if not isinstance(attention_head_dim, int):
            raise ValueError("from_unet expects an SD-1 UNet with an int attention_head_dim")
        kwargs = dict(
            in_channels=config.in_channels,
            block_out_channels=tuple(config.block_out_channels),
            down_block_types=tuple(config.down_block_types),
            layers_per_block=config.layers_per_block,
            downsample_padding=config.downsample_padding,
            act_fn=config.act_fn,
            norm_num_groups=config.norm_num_groups,
            norm_eps=config.norm_eps,
            cross_attention_dim=config.cross_attention_dim,
            attention_head_dim=attention_head_dim,
            flip_sin_to_cos=config.flip_sin_to_cos,
            freq_shift=config.freq_shift,
            use_linear_projection=config.use_linear_projection,
            upcast_attention=config.upcast_attention,
            token_dim=config.cross_attention_dim,
        )
        kwargs.update(overrides)
        encoder = cls(**kwargs)
        encoder.load_unet_encoder(unet)
        return encoder.to(unet.device) if unet.dtype == encoder.dtype else encoder.to(unet.device, unet.dtype)

    def load_unet_encoder(self, unet: UNet2DConditionModel) -> None:
        """Copy `unet`'s encoder half (conv_in, time embedding, down blocks) into this encoder (the paper's init)."""
        for name in ("conv_in", "time_proj", "time_embedding", "down_blocks"):
            getattr(self, name).load_state_dict(getattr(unet, name).state_dict())

    # ----------------------------------------------------------------------------------------------------------

    def _soft_select(
        self,
        tokens: torch.Tensor,
        level: int,
        person_pose_embeds: torch.Tensor,
        garment_pose_embeds: torch.Tensor,
        num_views: int,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """tokens `(B*V, N, D)`, person pose `(B, Np, D)`, garment pose `(B*V, Np, D)` -> mixed `(B*V, N, D)`."""
        person_projection = self.person_pose_projections[level](person_pose_embeds)  # (B, Np, D)
        garment_projection = self.garment_pose_projections[level](garment_pose_embeds)  # (B*V, Np, D)
        if not self.config.share_garment_pose_projection and num_views > 1:
            per_view = rearrange(garment_pose_embeds, "(b v) n d -> b v n d", v=num_views)
            projected = [self.garment_pose_projections[level](per_view[:, 0])]
            for view in range(1, num_views):
                projected.append(self.extra_view_pose_projections[view - 1][level](per_view[:, view]))
            garment_projection = rearrange(torch.stack(projected, dim=1), "b v n d -> (b v) n d")
        person_repeated = repeat(person_projection, "b n d -> (b v) n d", v=num_views)
        # fp32 island: the unscaled logits sum N_pose products and reach magnitudes where half precision's rounding
        # would move the softmax
        logits = torch.bmm(person_repeated.transpose(1, 2).float(), garment_projection.float())  # (B*V, D, D)
        if self.config.scale_soft_selection_logits:
            logits = logits / person_pose_embeds.shape[1] ** 0.5
        selection = torch.softmax(logits, dim=-1).to(tokens.dtype)  # Σ_n P_h[n,i] P_g[n,j], softmax over j
        return torch.bmm(tokens, selection), person_projection, garment_projection  # (B*V, N, D)

    def forward(
        self,
        garment_images: torch.Tensor,
        timestep: torch.Tensor | float | int,
        person_pose_embeds: torch.Tensor | None = None,
        garment_pose_embeds: torch.Tensor | None = None,
        noisy_latents: torch.Tensor | None = None,
        return_intermediates: bool = False,
        return_dict: bool = True,
    ) -> GarmentEncoderOutput | tuple:
        """Encode garment views into local tokens.

        Args:
            garment_images: `(B, V, 3, H, W)` in [-1, 1] (front first), or `(B, 3, H, W)` for one view.
            timestep: scalar or `(B,)`; the released sampler uses 999 for the garment encoder.
            person_pose_embeds: `(B, N_pose, D)` from `PoseEncoderModel` of the person skeleton.
            garment_pose_embeds: `(B, V, N_pose, D)` pose tokens of each garment view's skeleton.
            noisy_latents: `(B, C_in, h, w)` denoiser input; used only with `use_noisy_latent=True`.
        Returns:
            `GarmentEncoderOutput` with `garment_tokens[k]` of shape `(B, V * N_k, D)`.
        """
        if garment_images.ndim == 4:
            garment_images = garment_images.unsqueeze(1)  # (B, 1, 3, H, W)
        batch_size, num_views = garment_images.shape[:2]
        if num_views != self.config.num_views:
            raise ValueError(f"expected {self.config.num_views} garment view(s), got {num_views}")
        images = rearrange(garment_images, "b v c h w -> (b v) c h w")  # (B*V, 3, H, W)
        if self.config.garment_sample_size is not None:
            images = F.interpolate(
                images, size=tuple(self.config.garment_sample_size), mode="bicubic", align_corners=False
            )

        timesteps = torch.as_tensor(timestep, device=images.device).flatten()
        if timesteps.numel() == 1:
            timesteps = timesteps.expand(batch_size)
        timesteps = repeat(timesteps, "b -> (b v)", v=num_views)
        time_features = self.time_proj(timesteps).to(dtype=images.dtype)
        time_embedding = self.time_embedding(time_features)

        sample = self.garment_embedding(images)  # (B*V, C0, H/8, W/8)
        if self.config.use_noisy_latent:
            if noisy_latents is None:
                raise ValueError("use_noisy_latent=True needs `noisy_latents`")
            latent_features = self.conv_in(repeat(noisy_latents, "b c h w -> (b v) c h w", v=num_views))
            sample = sample + F.interpolate(latent_features, size=sample.shape[-2:], mode="bilinear")
        # The released encoder's cross-attention sees a single all-zero token.
        null_context = sample.new_zeros(sample.shape[0], 1, self.config.cross_attention_dim)

        features = [sample]
        for block in self.down_blocks:
            if getattr(block, "has_cross_attention", False):
                sample, residuals = block(sample, time_embedding, encoder_hidden_states=null_context)
            else:
                sample, residuals = block(sample, time_embedding)
            features.extend(residuals)

        use_selection = self.config.use_soft_selection
        if use_selection and (person_pose_embeds is None or garment_pose_embeds is None):
            raise ValueError("soft selection needs `person_pose_embeds` and `garment_pose_embeds`")
        if use_selection:
            garment_pose_embeds = rearrange(garment_pose_embeds, "b v n d -> (b v) n d")

        garment_tokens, premix, person_projections, garment_projections = [], [], [], []
        for level, feature in enumerate(features):
            tokens = self.token_projections[level](flatten_tokens(space_to_depth(feature, 2)))  # (B*V, N_k, D)
            if return_intermediates:
                premix.append(rearrange(tokens, "(b v) n d -> b v n d", v=num_views))
            if use_selection:
                tokens, person_projection, garment_projection = self._soft_select(
                    tokens, level, person_pose_embeds, garment_pose_embeds, num_views
                )
                if return_intermediates:
                    person_projections.append(person_projection)
                    garment_projections.append(rearrange(garment_projection, "(b v) n d -> b v n d", v=num_views))
            garment_tokens.append(rearrange(tokens, "(b v) n d -> b (v n) d", v=num_views))  # views along tokens

        output = GarmentEncoderOutput(
            garment_tokens=tuple(garment_tokens),
            premix_tokens=tuple(premix) if return_intermediates else None,
            person_pose_projections=tuple(person_projections) if return_intermediates and use_selection else None,
            garment_pose_projections=tuple(garment_projections) if return_intermediates and use_selection else None,
        )
        return output if return_dict else (output.garment_tokens,)
