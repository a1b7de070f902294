"""Training a small AutoencoderKL (`training/train_vae.py`): its objective, the posterior initialisation, and the
latent `scaling_factor` fitted to data (also used by `training/init_latent_space.py`)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mvvton.errors import InvalidArgumentError


def vae_training_loss(
    vae: nn.Module,
    images: torch.Tensor,
    reconstruction: str = "l1",
    kl_weight: float = 1e-6,
    generator: torch.Generator | None = None,
) -> dict[str, torch.Tensor]:
    """AutoencoderKL objective: reconstruction (L1 or MSE, pixels in [-1, 1]) + `kl_weight` · KL(q(z|x) ‖ N(0, I)).

    Args:
        images: `(B, 3, H, W)` in [-1, 1].
    Returns:
        `loss` (differentiable), detached `reconstruction_loss`, `kl_loss` (mean over latent elements).
    """
    posterior = vae.encode(images).latent_dist
    latents = posterior.sample(generator)
    decoded = vae.decode(latents).sample
    if reconstruction == "l1":
        reconstruction_loss = F.l1_loss(decoded, images)
    elif reconstruction == "mse":
        reconstruction_loss = F.mse_loss(decoded, images)
    else:
        raise InvalidArgumentError(f"reconstruction must be l1 or mse, got {reconstruction!r}")
    kl_loss = posterior.kl().mean() / latents[0].numel()
    loss = reconstruction_loss + kl_weight * kl_loss
    return {"loss": loss, "reconstruction_loss": reconstruction_loss.detach(), "kl_loss": kl_loss.detach()}


@torch.no_grad()
def init_posterior_logvar(vae: nn.Module, logvar: float) -> None:
    """Make a fresh AutoencoderKL's posterior start with `log σ² = logvar` for every input.

    With the default init the posterior std is ~1 while the latent means are small, so the decoder first sees mostly
    noise and learns a grey average; a tiny KL weight takes very long to shrink σ. Zeroing the log-variance half of
    `quant_conv` and setting its bias fixes σ at the start; the KL term can still raise it during training.
    """
    channels = vae.quant_conv.out_channels // 2
    vae.quant_conv.weight[channels:].zero_()
    vae.quant_conv.bias[channels:].fill_(logvar)


@torch.no_grad()
def latent_scaling_factor(vae: nn.Module, images: torch.Tensor) -> float:
    """`1 / std` of the posterior means of `images` `(B, 3, H, W)`: the `scaling_factor` giving unit-variance latents."""
    latents = vae.encode(images).latent_dist.mode()
    return float(1.0 / latents.flatten().std().clamp_min(1e-6))
