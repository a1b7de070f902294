"""Alignment-tolerant pixel terms for the warped-start x̂0 loss.

A plain MSE against the ground truth rewards blur wherever the pre-warp puts a print a few pixels off: the mean of the
possible positions is a smear. These terms split the comparison in two: the low frequencies are compared directly
(a shift of a few pixels barely moves them), and the high frequencies only through their local energy, so a sharp
print near the right place costs less than no print at all.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def gaussian_blur(images: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur with reflect padding. `(B, C, H, W)` in, same out; `sigma` in pixels (0: identity)."""
    if sigma <= 0:
        return images
    radius = max(1, math.ceil(3 * sigma))
    offsets = torch.arange(-radius, radius + 1, device=images.device, dtype=images.dtype)
    kernel = torch.exp(-0.5 * (offsets / sigma) ** 2)
    kernel = kernel / kernel.sum()
    channels = images.shape[1]
    # reflect padding needs the pad to be smaller than the side; clamp for tiny images
    pad_h, pad_w = min(radius, images.shape[-2] - 1), min(radius, images.shape[-1] - 1)
    padded = F.pad(images, (pad_w, pad_w, pad_h, pad_h), mode="reflect")
    horizontal = kernel[radius - pad_w : radius + pad_w + 1].view(1, 1, 1, -1).expand(channels, 1, 1, -1)
    vertical = kernel[radius - pad_h : radius + pad_h + 1].view(1, 1, -1, 1).expand(channels, 1, -1, 1)
    blurred = F.conv2d(padded, horizontal.contiguous(), groups=channels)
    return F.conv2d(blurred, vertical.contiguous(), groups=channels)


def lowpass_mse(prediction: torch.Tensor, target: torch.Tensor, sigma: float) -> torch.Tensor:
    """MSE between the two images blurred by `sigma` pixels. `(B, 3, H, W)` in [-1, 1]; scalar out."""
    return F.mse_loss(gaussian_blur(prediction, sigma), gaussian_blur(target, sigma))


def detail_energy(images: torch.Tensor, highpass_sigma: float, window_sigma: float) -> torch.Tensor:
    """Local RMS of the high-pass band (image minus its `highpass_sigma` blur), averaged over a Gaussian window of
    `window_sigma` pixels and over the colour channels. `(B, C, H, W)` in, `(B, 1, H, W)` out (>= 0)."""
    high = images - gaussian_blur(images, highpass_sigma)
    power = gaussian_blur(high.pow(2).mean(dim=1, keepdim=True), window_sigma)
    return (power + 1e-6).sqrt()


def detail_energy_loss(
    prediction: torch.Tensor, target: torch.Tensor, highpass_sigma: float = 1.0, window_sigma: float = 2.0
) -> torch.Tensor:
    """L1 distance between the local detail energies of prediction and target (`detail_energy`): low for any sharp
    pattern near the right place, high for a smear where the target has a print. `(B, 3, H, W)` in; scalar out."""
    return F.l1_loss(
        detail_energy(prediction, highpass_sigma, window_sigma), detail_energy(target, highpass_sigma, window_sigma)
    )
