"""mvvton.training.vae_loss: the AutoencoderKL objective."""

import torch

from mvvton.training.vae_loss import vae_training_loss


def test_vae_loss_backpropagates(tiny_components):
    vae = tiny_components["vae"]
    vae.requires_grad_(True)
    images = torch.rand(2, 3, 32, 32) * 2 - 1
    out = vae_training_loss(vae, images, "l1", 1e-6, torch.Generator().manual_seed(0))
    out["loss"].backward()
    assert vae.encoder.conv_in.weight.grad is not None and out["kl_loss"] > 0
    vae.requires_grad_(False)
