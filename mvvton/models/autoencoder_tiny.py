"""A tiny deterministic image autoencoder (TAESD family) used like any diffusers VAE.

The architecture follows madebyollin/taesd's encoder/decoder (two `nn.Sequential`s of 3x3 convolutions, ReLU residual
blocks, stride-2 convolutions down and nearest upsampling up; the decoder starts with a soft clamp of the latent), so a
TAESD-family state dict loads after prefixing its keys with `encoder.` / `decoder.` (see
`TinyAutoencoderModel.from_taesd_state_dicts`). The lowest-resolution blocks may carry a per-pixel "pool" branch
(1x1 conv -> GroupNorm -> ReLU -> 1x1 conv) added to the block input, as the FLUX.2 distillation (taef2) does.

Unlike `AutoencoderKL` the latent is deterministic. `encode` returns both `latents` and a `latent_dist` whose `sample`
and `mode` give those latents, so code written for either diffusers convention (`latent_dist.sample(generator)`,
`latent_dist.mode()`, `.latents`) works unchanged. Images are in [-1, 1] on both sides, as for `AutoencoderKL`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from diffusers.utils import BaseOutput
from torch import nn


class DeterministicLatentDistribution:
    """A point mass at `latents` with the `DiagonalGaussianDistribution` interface the pipelines and trainer use."""

    def __init__(self, latents: torch.Tensor) -> None:
        self.mean = latents
        self.std = torch.zeros_like(latents)
        self.var = self.std
        self.logvar = torch.full_like(latents, float("-inf"))

    def sample(self, generator: torch.Generator | list[torch.Generator] | None = None) -> torch.Tensor:
        """The latents themselves; `generator` is accepted for interface parity and not drawn from."""
        return self.mean

    def mode(self) -> torch.Tensor:
        return self.mean

    def kl(self, other: object | None = None) -> torch.Tensor:
        """Zero per sample `(B,)`: a deterministic encoder has no KL term to train."""
        return self.mean.new_zeros(self.mean.shape[0])


@dataclass
class TinyAutoencoderEncoderOutput(BaseOutput):
    """
    Args:
        latents: `(B, latent_channels, H / 8, W / 8)` unscaled latents (multiply by `config.scaling_factor`).
        latent_dist: the same latents as a point-mass distribution (`sample()` / `mode()`).
    """

    latents: torch.Tensor
    latent_dist: DeterministicLatentDistribution


@dataclass
class TinyAutoencoderDecoderOutput(BaseOutput):
    """
    Args:
        sample: `(B, 3, H, W)` decoded image, nominally in [-1, 1] (not clamped).
    """

    sample: torch.Tensor


class SoftClamp(nn.Module):
    """`limit * tanh(x / limit)`: smooth clamp of the latent at the decoder input."""

    def __init__(self, limit: float) -> None:
        super().__init__()
        self.limit = limit

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return torch.tanh(hidden_states / self.limit) * self.limit


class TinyResidualBlock(nn.Module):
    """`relu(conv3(relu(conv2(relu(conv1(x))))) + skip(x))`, optionally after `x += pool(x)` (1x1 bottleneck)."""

    def __init__(self, in_channels: int, out_channels: int, pool_channels: int = 0, pool_groups: int = 4) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(out_channels, out_channels, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(out_channels, out_channels, 3, padding=1),
        )
        self.skip = nn.Conv2d(in_channels, out_channels, 1, bias=False) if in_channels != out_channels else None
        self.pool = None
        if pool_channels > 0:
            self.pool = nn.Sequential(
                nn.Conv2d(in_channels, pool_channels, 1, bias=False),
                nn.GroupNorm(pool_groups, pool_channels),
                nn.ReLU(),
                nn.Conv2d(pool_channels, in_channels, 1, bias=False),
            )
        self.fuse = nn.ReLU()

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        if self.pool is not None:
            hidden_states = hidden_states + self.pool(hidden_states)
        skip = hidden_states if self.skip is None else self.skip(hidden_states)
        return self.fuse(self.conv(hidden_states) + skip)


def _conv(in_channels: int, out_channels: int, stride: int = 1, bias: bool = True) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=bias)


class TinyAutoencoderModel(ModelMixin, ConfigMixin):
    r"""Tiny deterministic autoencoder: image `(B, 3, H, W)` in [-1, 1] <-> latent `(B, C, H / 2^k, W / 2^k)`.

    Args:
        in_channels / out_channels: image channels.
        latent_channels: channels C of the latent (taef2: 32).
        block_out_channels: convolution width per resolution, finest first (taef2: `(64, 64, 64, 64)`); a stride-2
            convolution separates stages, so the latent is `2 ** (len - 1)` times smaller than the image (as
            diffusers pipelines compute `vae_scale_factor`).
        encoder_blocks_per_stage: residual blocks per resolution, finest first (taef2: `(1, 3, 3, 3)`).
        decoder_blocks_per_stage: residual blocks per resolution, coarsest first (taef2: `(3, 3, 3, 1)`).
        pool_channels: width of the pool branch of the coarsest stage's blocks (0: none; taef2: 256).
        latent_clamp: soft-clamp limit applied to the latent at the decoder input (taef2: 3).
        scaling_factor: multiply `encode`'s latents by this before diffusion (unit variance on the training data).
        image_range_input: `"zero_one"`: the wrapped networks work on [0, 1] images (TAESD) and `encode`/`decode`
            convert from/to [-1, 1]; `"minus_one_one"`: no conversion.
    """

    _supports_gradient_checkpointing = False

    @register_to_config
    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        latent_channels: int = 32,
        block_out_channels: tuple[int, ...] = (64, 64, 64, 64),
        encoder_blocks_per_stage: tuple[int, ...] = (1, 3, 3, 3),
        decoder_blocks_per_stage: tuple[int, ...] = (3, 3, 3, 1),
        pool_channels: int = 256,
        latent_clamp: float = 3.0,
        scaling_factor: float = 1.0,
        image_range_input: str = "zero_one",
    ) -> None:
        super().__init__()
        num_stages = len(block_out_channels)
        if not len(encoder_blocks_per_stage) == len(decoder_blocks_per_stage) == num_stages:
            raise ValueError(
                "block_out_channels, encoder_blocks_per_stage and decoder_blocks_per_stage need one entry per stage"
            )
        if image_range_input not in ("zero_one", "minus_one_one"):
            raise ValueError(f"image_range_input must be 'zero_one' or 'minus_one_one', got {image_range_input!r}")

        # the indices of each nn.Sequential match TAESD's state-dict keys
        widths = list(block_out_channels)
        encoder: list[nn.Module] = [_conv(in_channels, widths[0])]
        for stage, num_blocks in enumerate(encoder_blocks_per_stage):
            if stage > 0:
                encoder.append(_conv(widths[stage - 1], widths[stage], stride=2, bias=False))
            pool = pool_channels if stage == num_stages - 1 else 0
            encoder.extend(TinyResidualBlock(widths[stage], widths[stage], pool) for _ in range(num_blocks))
        encoder.append(_conv(widths[-1], latent_channels))
        self.encoder = nn.Sequential(*encoder)

        widths.reverse()  # decoder: coarsest first
        decoder: list[nn.Module] = [SoftClamp(latent_clamp), _conv(latent_channels, widths[0]), nn.ReLU()]
        for stage, num_blocks in enumerate(decoder_blocks_per_stage):
            if stage > 0:
                decoder.extend([nn.Upsample(scale_factor=2), _conv(widths[stage - 1], widths[stage], bias=False)])
            pool = pool_channels if stage == 0 else 0
            decoder.extend(TinyResidualBlock(widths[stage], widths[stage], pool) for _ in range(num_blocks))
        decoder.append(_conv(widths[-1], out_channels))
        self.decoder = nn.Sequential(*decoder)

    def encode(self, x: torch.Tensor, return_dict: bool = True) -> TinyAutoencoderEncoderOutput | tuple:
        """`(B, 3, H, W)` in [-1, 1] -> latents `(B, C, H / 8, W / 8)` (unscaled; H, W multiples of 8)."""
        if self.config.image_range_input == "zero_one":
            x = (x + 1) / 2
        latents = self.encoder(x)
        if not return_dict:
            return (latents,)
        return TinyAutoencoderEncoderOutput(latents=latents, latent_dist=DeterministicLatentDistribution(latents))

    def decode(
        self, z: torch.Tensor, generator: torch.Generator | None = None, return_dict: bool = True
    ) -> TinyAutoencoderDecoderOutput | tuple:
        """Unscaled latents `(B, C, h, w)` -> image `(B, 3, 8h, 8w)` in about [-1, 1]; `generator` is unused."""
        image = self.decoder(z)
        if self.config.image_range_input == "zero_one":
            image = image * 2 - 1
        if not return_dict:
            return (image,)
        return TinyAutoencoderDecoderOutput(sample=image)

    def forward(self, sample: torch.Tensor, return_dict: bool = True) -> TinyAutoencoderDecoderOutput | tuple:
        """Reconstruction `decode(encode(sample))`."""
        reconstruction = self.decode(self.encode(sample).latents).sample
        if not return_dict:
            return (reconstruction,)
        return TinyAutoencoderDecoderOutput(sample=reconstruction)

    @classmethod
    def from_taesd_state_dicts(
        cls,
        encoder_state_dict: dict[str, torch.Tensor],
        decoder_state_dict: dict[str, torch.Tensor],
        **config: object,
    ) -> TinyAutoencoderModel:
        """Build the model from TAESD-layout `nn.Sequential` state dicts (e.g. `torch.load("taef2_encoder.pth", weights_only=True)`).

        Every key must match (strict load); the weights are cast to float32.
        """
        model = cls(**config)
        state_dict = {f"encoder.{key}": value.float() for key, value in encoder_state_dict.items()}
        state_dict.update({f"decoder.{key}": value.float() for key, value in decoder_state_dict.items()})
        model.load_state_dict(state_dict, strict=True)
        return model


def load_autoencoder(path: str, subfolder: str | None = None) -> ModelMixin:
    """Load a saved autoencoder folder as the class its `config.json` names (`AutoencoderKL` or
    `TinyAutoencoderModel`), so code that takes "a VAE folder" accepts either."""
    from diffusers import AutoencoderKL

    classes = {cls.__name__: cls for cls in (AutoencoderKL, TinyAutoencoderModel)}
    class_name = TinyAutoencoderModel.load_config(path, subfolder=subfolder).get("_class_name", "AutoencoderKL")
    if class_name not in classes:
        raise ValueError(f"{path}: autoencoder class {class_name!r} is not one of {sorted(classes)}")
    return classes[class_name].from_pretrained(path, subfolder=subfolder)
