"""Alignment-tolerant pixel terms for the warped-start x̂0 loss.

A plain MSE against the ground truth rewards blur wherever the pre-warp puts a print a few pixels off: the mean of the
possible positions is a smear. These terms split the comparison in two: the low frequencies are compared directly
(a shift of a few pixels barely moves them), and the high frequencies only through their local energy, so a sharp
print near the right place costs less than no print at all.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from mvvton.utils.image_filters import detail_energy, gaussian_blur


def lowpass_mse(prediction: torch.Tensor, target: torch.Tensor, sigma: float) -> torch.Tensor:
    """MSE between the two images blurred by `sigma` pixels. `(B, 3, H, W)` in [-1, 1]; scalar out."""
    return F.mse_loss(gaussian_blur(prediction, sigma), gaussian_blur(target, sigma))


def detail_energy_loss(
    prediction: torch.Tensor,
    target: torch.Tensor,
    highpass_sigma: float = 1.0,
    window_sigma: float = 2.0,
    weight: torch.Tensor | None = None,
) -> torch.Tensor:
    """L1 distance between the local detail energies of prediction and target (`detail_energy`): low for any sharp
    pattern near the right place, high for a smear where the target has a print. `(B, 3, H, W)` in; scalar out.
    `weight` `(B, 1, H, W)` in [0, 1] averages the distance over the weighted pixels only (None: every pixel)."""
    distance = (
        detail_energy(prediction, highpass_sigma, window_sigma) - detail_energy(target, highpass_sigma, window_sigma)
    ).abs()  # (B, 1, H, W)
    if weight is None:
        return distance.mean()
    return (distance * weight).sum() / weight.sum().clamp_min(1.0)


def prewarp_hole_weight(
    prewarp: torch.Tensor, agnostic: torch.Tensor, inpaint_mask: torch.Tensor, grow: int = 2
) -> torch.Tensor:
    """0 on the pre-warp's holes (pixels of the inpaint mask the pre-warp left as the agnostic grey) grown by `grow`
    pixels, 1 elsewhere. `(B, 3, H, W)` images in [-1, 1] and `(B, 1, H, W)` mask in; `(B, 1, H, W)` out.

    The detail term should not pay for the hard edges around such a hole: near the ground truth's arm or shoulder
    edges they would count as detail and teach the model to keep the grey."""
    unchanged = (prewarp - agnostic).abs().amax(dim=1, keepdim=True) < 2.0 / 255  # (B, 1, H, W)
    holes = (unchanged & (inpaint_mask > 0.5)).float()
    if grow > 0:
        holes = F.max_pool2d(holes, kernel_size=2 * grow + 1, stride=1, padding=grow)
    return 1.0 - holes
