"""Small differentiable image filters shared by training terms and evaluation metrics (no PIL, no OpenCV)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def gaussian_kernel_1d(size: int, sigma: float, device=None, dtype=None) -> torch.Tensor:
    """Normalised 1-D Gaussian `(size,)` centred on the middle tap (offsets -(size-1)/2 ... (size-1)/2)."""
    offsets = torch.arange(size, device=device, dtype=dtype) - (size - 1) / 2
    kernel = torch.exp(-0.5 * (offsets / sigma) ** 2)
    return kernel / kernel.sum()


def gaussian_blur(images: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur with reflect padding. `(B, C, H, W)` in, same out; `sigma` in pixels (0: identity)."""
    if sigma <= 0:
        return images
    radius = max(1, math.ceil(3 * sigma))
    kernel = gaussian_kernel_1d(2 * radius + 1, sigma, images.device, images.dtype)
    channels = images.shape[1]
    # reflect padding must be smaller than the side: clamp the radius on tiny images (the kernel is cut to match)
    pad_h, pad_w = min(radius, images.shape[-2] - 1), min(radius, images.shape[-1] - 1)
    padded = F.pad(images, (pad_w, pad_w, pad_h, pad_h), mode="reflect")
    horizontal = kernel[radius - pad_w : radius + pad_w + 1].view(1, 1, 1, -1).expand(channels, 1, 1, -1)
    vertical = kernel[radius - pad_h : radius + pad_h + 1].view(1, 1, -1, 1).expand(channels, 1, -1, 1)
    blurred = F.conv2d(padded, horizontal.contiguous(), groups=channels)
    return F.conv2d(blurred, vertical.contiguous(), groups=channels)


def detail_energy(images: torch.Tensor, highpass_sigma: float = 1.0, window_sigma: float = 2.0) -> torch.Tensor:
    """Local RMS of the high-pass band (image minus its `highpass_sigma` blur) over a Gaussian window of
    `window_sigma` pixels, averaged over colour channels. `(B, C, H, W)` in, `(B, 1, H, W)` out (>= 0, same units
    as the images)."""
    high = images - gaussian_blur(images, highpass_sigma)
    power = gaussian_blur(high.pow(2).mean(dim=1, keepdim=True), window_sigma)
    return (power + 1e-6).sqrt()
