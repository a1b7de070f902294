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
    prediction: torch.Tensor, target: torch.Tensor, highpass_sigma: float = 1.0, window_sigma: float = 2.0
) -> torch.Tensor:
    """L1 distance between the local detail energies of prediction and target (`detail_energy`): low for any sharp
    pattern near the right place, high for a smear where the target has a print. `(B, 3, H, W)` in; scalar out."""
    return F.l1_loss(
        detail_energy(prediction, highpass_sigma, window_sigma), detail_energy(target, highpass_sigma, window_sigma)
    )
