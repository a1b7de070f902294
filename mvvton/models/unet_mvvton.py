"""The MV-VTON denoiser: an SD-1 UNet (9 input channels) whose decoder cross-attentions are joint attention blocks."""

from __future__ import annotations

from typing import Any

import torch
from diffusers.configuration_utils import register_to_config
from diffusers.models.modeling_utils import ModelMixin  # noqa: F401  (pipeline loading resolves base classes here)
from diffusers.models.unets.unet_2d_condition import UNet2DConditionModel, UNet2DConditionOutput

from mvvton.errors import MissingDependencyError
from mvvton.models.attention_processor import (
    GarmentTokens,
    JointAttnProcessor2_0,
    MVVTONAttnProcessor2_0,
    SlicedJointAttnProcessor,
    SlicedMVVTONAttnProcessor,
    XFormersJointAttnProcessor,
    XFormersMVVTONAttnProcessor,
    check_slice_size,
    xformers_ops,
)
from mvvton.models.precision import upcast_normalization_layers

LOCAL_TOKEN_INJECTION_MODES = ("cumulative", "per_level")


def decoder_token_levels(
    up_block_types: tuple[str, ...], layers_per_block: int, injection: str
) -> dict[tuple[int, int], tuple[int, ...]]:
    """Which garment-encoder levels each decoder attention layer `(up_block, layer)` attends to.

    The garment encoder yields one feature level per decoder layer, in encoder order (level 0 = finest); decoder
    layer `i` (flat index over up blocks) mirrors level `num_levels - 1 - i`, like a UNet skip connection.
    `"per_level"`: each layer sees its mirrored level (the paper's figure). `"cumulative"`: each layer also sees
    every level the previous attention layers saw (what the released checkpoints were trained with: the original
    UNet concatenates each new level onto the running context).
    """
    if injection not in LOCAL_TOKEN_INJECTION_MODES:
        raise ValueError(f"local_token_injection must be one of {LOCAL_TOKEN_INJECTION_MODES}, got {injection!r}")
    layers_per_up_block = layers_per_block + 1
    num_levels = len(up_block_types) * layers_per_up_block
    levels_by_layer: dict[tuple[int, int], tuple[int, ...]] = {}
    seen: list[int] = []
    for up_index, block_type in enumerate(up_block_types):
        for layer in range(layers_per_up_block):
            if "CrossAttn" not in block_type:
                continue
            level = num_levels - 1 - (up_index * layers_per_up_block + layer)
            seen.append(level)
            levels_by_layer[(up_index, layer)] = tuple(seen) if injection == "cumulative" else (level,)
    return levels_by_layer


class MVVTONUNet2DConditionModel(UNet2DConditionModel):
    """SD-1 UNet with MV-VTON joint attention in the decoder.

    Same architecture and weights as `UNet2DConditionModel` plus, in each decoder cross-attention, the local branch
    `to_q_ip / to_k_ip / to_v_ip` and the zero-initialised per-channel gate `ip_scale` (held by the layer's
    `JointAttnProcessor2_0`). Extra config:

        local_token_injection: `"cumulative"` (released checkpoints) or `"per_level"` (the paper's figure).

    Call with `garment_tokens=[(B, N_k, D) per level]` (from `GarmentEncoderModel`); `None` runs the plain UNet.
    """

    @register_to_config
    def __init__(
        self,
        sample_size: int | tuple[int, int] | None = None,
        in_channels: int = 9,
        out_channels: int = 4,
        center_input_sample: bool = False,
        flip_sin_to_cos: bool = True,
        freq_shift: int = 0,
        down_block_types: tuple[str, ...] = (
            "CrossAttnDownBlock2D",
            "CrossAttnDownBlock2D",
            "CrossAttnDownBlock2D",
            "DownBlock2D",
        ),
        mid_block_type: str | None = "UNetMidBlock2DCrossAttn",
        up_block_types: tuple[str, ...] = ("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
        only_cross_attention: bool | tuple[bool] = False,
        block_out_channels: tuple[int, ...] = (320, 640, 1280, 1280),
        layers_per_block: int | tuple[int] = 2,
        downsample_padding: int = 1,
        mid_block_scale_factor: float = 1,
        dropout: float = 0.0,
        act_fn: str = "silu",
        norm_num_groups: int | None = 32,
        norm_eps: float = 1e-5,
        cross_attention_dim: int | tuple[int] = 768,
        transformer_layers_per_block: int | tuple[int] | tuple[tuple] = 1,
        reverse_transformer_layers_per_block: tuple[tuple[int]] | None = None,
        encoder_hid_dim: int | None = None,
        encoder_hid_dim_type: str | None = None,
        attention_head_dim: int | tuple[int] = 8,
        num_attention_heads: int | tuple[int] | None = None,
        dual_cross_attention: bool = False,
        use_linear_projection: bool = False,
        class_embed_type: str | None = None,
        addition_embed_type: str | None = None,
        addition_time_embed_dim: int | None = None,
        num_class_embeds: int | None = None,
        upcast_attention: bool = False,
        resnet_time_scale_shift: str = "default",
        resnet_skip_time_act: bool = False,
        resnet_out_scale_factor: float = 1.0,
        time_embedding_type: str = "positional",
        time_embedding_dim: int | None = None,
        time_embedding_act_fn: str | None = None,
        timestep_post_act: str | None = None,
        time_cond_proj_dim: int | None = None,
        conv_in_kernel: int = 3,
        conv_out_kernel: int = 3,
        projection_class_embeddings_input_dim: int | None = None,
        attention_type: str = "default",
        class_embeddings_concat: bool = False,
        mid_block_only_cross_attention: bool | None = None,
        cross_attention_norm: str | None = None,
        addition_embed_type_num_heads: int = 64,
        local_token_injection: str = "cumulative",
    ):
        super().__init__(
            sample_size=sample_size,
            in_channels=in_channels,
            out_channels=out_channels,
            center_input_sample=center_input_sample,
            flip_sin_to_cos=flip_sin_to_cos,
            freq_shift=freq_shift,
            down_block_types=down_block_types,
            mid_block_type=mid_block_type,
            up_block_types=up_block_types,
            only_cross_attention=only_cross_attention,
            block_out_channels=block_out_channels,
            layers_per_block=layers_per_block,
            downsample_padding=downsample_padding,
            mid_block_scale_factor=mid_block_scale_factor,
            dropout=dropout,
            act_fn=act_fn,
            norm_num_groups=norm_num_groups,
            norm_eps=norm_eps,
            cross_attention_dim=cross_attention_dim,
            transformer_layers_per_block=transformer_layers_per_block,
            reverse_transformer_layers_per_block=reverse_transformer_layers_per_block,
            encoder_hid_dim=encoder_hid_dim,
            encoder_hid_dim_type=encoder_hid_dim_type,
            attention_head_dim=attention_head_dim,
            num_attention_heads=num_attention_heads,
            dual_cross_attention=dual_cross_attention,
            use_linear_projection=use_linear_projection,
            class_embed_type=class_embed_type,
            addition_embed_type=addition_embed_type,
            addition_time_embed_dim=addition_time_embed_dim,
            num_class_embeds=num_class_embeds,
            upcast_attention=upcast_attention,
            resnet_time_scale_shift=resnet_time_scale_shift,
            resnet_skip_time_act=resnet_skip_time_act,
            resnet_out_scale_factor=resnet_out_scale_factor,
            time_embedding_type=time_embedding_type,
            time_embedding_dim=time_embedding_dim,
            time_embedding_act_fn=time_embedding_act_fn,
            timestep_post_act=timestep_post_act,
            time_cond_proj_dim=time_cond_proj_dim,
            conv_in_kernel=conv_in_kernel,
            conv_out_kernel=conv_out_kernel,
            projection_class_embeddings_input_dim=projection_class_embeddings_input_dim,
            attention_type=attention_type,
            class_embeddings_concat=class_embeddings_concat,
            mid_block_only_cross_attention=mid_block_only_cross_attention,
            cross_attention_norm=cross_attention_norm,
            addition_embed_type_num_heads=addition_embed_type_num_heads,
        )
        if not isinstance(layers_per_block, int) or not isinstance(cross_attention_dim, int):
            raise ValueError("MV-VTON needs an int `layers_per_block` and `cross_attention_dim` (SD-1 geometry)")
        self._install_processors(use_sdpa=True)
        upcast_normalization_layers(self)  # GroupNorm / LayerNorm in fp32 under half precision

    # ----------------------------------------------------------------------------------------------------------
    # processors

    @property
    def joint_attention_processors(self) -> dict[str, JointAttnProcessor2_0]:
        """Name -> joint processor of every decoder cross-attention."""
        return {
            name: processor
            for name, processor in self.attn_processors.items()
            if isinstance(processor, JointAttnProcessor2_0)
        }

    @property
    def num_garment_levels(self) -> int:
        """How many garment-encoder levels the decoder mirrors (12 for SD-1)."""
        return len(self.config.up_block_types) * (self.config.layers_per_block + 1)

    def _install_processors(self, use_sdpa: bool = True, slice_size=None, xformers: bool = False, attention_op=None):
        """(Re)install every processor with one attention kernel, keeping the joint-attention weights.

        Kernels: SDPA (`use_sdpa`), explicit math (`use_sdpa=False`), sliced (`slice_size`: None, "auto" = half the
        heads, "max" = 1, or an int number of (batch x head) rows per chunk) or xformers (`xformers=True`).
        """
        existing = self.joint_attention_processors
        levels_by_layer = decoder_token_levels(
            tuple(self.config.up_block_types), self.config.layers_per_block, self.config.local_token_injection
        )
        channels_by_up_block = list(reversed(self.config.block_out_channels))
        processors: dict[str, Any] = {}
        for name in self.attn_processors:
            heads = self.get_submodule(name.removesuffix(".processor")).heads
            rows = None
            if slice_size is not None and not xformers:
                rows = {"auto": max(1, heads // 2), "max": 1}.get(slice_size, slice_size)
            is_decoder_cross_attention = name.startswith("up_blocks.") and name.endswith("attn2.processor")
            if not is_decoder_cross_attention:
                if xformers:
                    processors[name] = XFormersMVVTONAttnProcessor(attention_op)
                elif rows is not None:
                    processors[name] = SlicedMVVTONAttnProcessor(rows)
                else:
                    processors[name] = MVVTONAttnProcessor2_0(use_sdpa=use_sdpa)
                continue
            parts = name.split(".")
            up_index, layer = int(parts[1]), int(parts[3])
            geometry = dict(
                hidden_size=channels_by_up_block[up_index],
                cross_attention_dim=self.config.cross_attention_dim,
                token_levels=levels_by_layer[(up_index, layer)],
            )
            # built on the meta device: an existing processor's weights are adopted, not copied
            with torch.device("meta" if name in existing else self.device):
                if xformers:
                    processor = XFormersJointAttnProcessor(**geometry, attention_op=attention_op)
                elif rows is not None:
                    processor = SlicedJointAttnProcessor(**geometry, slice_size=rows)
                else:
                    processor = JointAttnProcessor2_0(**geometry, use_sdpa=use_sdpa)
            if name in existing:
                processor.adopt_weights(existing[name])
            processors[name] = processor
        self.set_attn_processor(processors)

    def set_default_attn_processor(self) -> None:
        """Switch every processor to its explicit-math (non-SDPA) form, keeping the joint-attention weights."""
        self._install_processors(use_sdpa=False)

    def set_attention_slice(self, slice_size: str | int | None = "auto") -> None:
        """Compute every attention (joint blocks included) in chunks of (batch x head) rows, or undo with `None`.

        Args:
            slice_size: `"auto"` (half the heads per chunk), `"max"` (one row per chunk: least memory), an int
                (rows per chunk, at least 1) or `None` (back to the SDPA processors). Same result; on CPU or with
                SDPA's memory-efficient CUDA kernels slicing only costs time.
        """
        if slice_size is not None and slice_size not in ("auto", "max"):
            check_slice_size(slice_size)
        self._install_processors(use_sdpa=True, slice_size=slice_size)

    def set_use_memory_efficient_attention_xformers(self, valid: bool = True, attention_op=None) -> None:
        """Use xformers' memory-efficient attention in every processor (joint blocks included), or undo.

        Raises `MissingDependencyError` if xformers does not import or has no kernel for this model's device and
        dtype (it is checked with a small attention on the model's device before anything is replaced).
        """
        if valid:
            probe = torch.zeros(1, 2, 1, 8, device=self.device, dtype=self.dtype)  # (B, N, heads, d)
            try:
                xformers_ops().memory_efficient_attention(probe, probe, probe, op=attention_op)
            except MissingDependencyError:
                raise
            except Exception as error:  # xformers raises several types when no operator fits
                raise MissingDependencyError(
                    f"xformers has no memory-efficient attention kernel for {self.device} / {self.dtype} ({error}); "
                    "keep the default SDPA processors, or move the model to a CUDA device first"
                ) from error
        self._install_processors(use_sdpa=True, xformers=valid, attention_op=attention_op)

    # ----------------------------------------------------------------------------------------------------------
    # construction from a plain UNet

    @classmethod
    def from_unet(
        cls, unet: UNet2DConditionModel, local_token_injection: str = "cumulative"
    ) -> MVVTONUNet2DConditionModel:
        """Build from a plain (e.g. Paint-by-Example) UNet: same weights, fresh local branch with zero gates.

        At construction the result computes exactly what `unet` computes, with or without garment tokens.
        """
        config = {key: value for key, value in unet.config.items() if not key.startswith("_")}
        config["local_token_injection"] = local_token_injection
        model = cls.from_config(config)
        missing, unexpected = model.load_state_dict(unet.state_dict(), strict=False)
        if unexpected or any(".processor." not in key for key in missing):
            raise ValueError(f"from_unet: incompatible UNet (missing={missing[:5]}, unexpected={unexpected[:5]})")
        return model.to(device=unet.device) if unet.dtype == model.dtype else model.to(unet.device, unet.dtype)

    # ----------------------------------------------------------------------------------------------------------
    # forward

    def forward(
        self,
        sample: torch.Tensor,
        timestep: torch.Tensor | float | int,
        encoder_hidden_states: torch.Tensor,
        garment_tokens: list[torch.Tensor] | tuple[torch.Tensor, ...] | GarmentTokens | None = None,
        cross_attention_kwargs: dict[str, Any] | None = None,
        return_dict: bool = True,
        **kwargs: Any,
    ) -> UNet2DConditionOutput | tuple:
        """Predict the noise.

        Args:
            sample: `(B, 9, h, w)` = noisy latent (4), masked-image latent (4), keep-mask (1).
            timestep: `(B,)` or scalar.
            encoder_hidden_states: `(B, 1, D)` global garment token (or the unconditional vector).
            garment_tokens: per garment-encoder level `(B, N_k, D)` local tokens, or `None` (no local branch).
        """
        if garment_tokens is not None:
            if not isinstance(garment_tokens, GarmentTokens):
                garment_tokens = GarmentTokens(list(garment_tokens))
            cross_attention_kwargs = {**(cross_attention_kwargs or {}), "garment_tokens": garment_tokens}
        return super().forward(
            sample,
            timestep,
            encoder_hidden_states,
            cross_attention_kwargs=cross_attention_kwargs,
            return_dict=return_dict,
            **kwargs,
        )
