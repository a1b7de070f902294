"""FID and KID between two sets of images, from Inception pool3 features, with torchmetrics' statistics.

Features are extracted once per image (`inception_features`) and fed to torchmetrics' `FrechetInceptionDistance` /
`KernelInceptionDistance` through `PrecomputedFeatures`, so per-view subsets reuse them without running the network
again. The Frechet distance and the polynomial-kernel MMD are torchmetrics' (maintained) code, not ours.
"""

from __future__ import annotations

import numpy as np
import PIL.Image
import torch
from torch import nn

from mvvton.errors import InvalidArgumentError
from mvvton.evaluation.networks.inception import FID_INPUT_SIZE, FIDInceptionV3

FID_RESIZE_MODES = ("clean", "bilinear")


class PrecomputedFeatures(nn.Module):
    """The torchmetrics "feature extractor" for features computed beforehand: `(N, D)` features pass through.

    torchmetrics probes a custom extractor once with a dummy `(1, 3, 299, 299)` uint8 image to learn the feature
    size; that probe (any 4-D input) gets zeros of shape `(B, D)`.
    """

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.num_features = num_features

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        if inputs.ndim == 4:
            return torch.zeros(inputs.shape[0], self.num_features, dtype=torch.float64)
        if inputs.ndim != 2 or inputs.shape[1] != self.num_features:
            raise InvalidArgumentError(
                f"expected features of shape (N, {self.num_features}), got {tuple(inputs.shape)}"
            )
        return inputs.double()


def resize_for_inception(images: torch.Tensor, mode: str = "clean") -> torch.Tensor:
    """`(B, 3, H, W)` in [0, 1] -> `(B, 3, 299, 299)` in [0, 1], the Inception input.

    Args:
        mode: "clean": each channel of the uint8 image resized as a float image with PIL bicubic (antialiased), as
            clean-fid's "clean" mode (used by LaDI-VTON, whose tools MV-VTON uses); "bilinear": `F.interpolate`
            bilinear without antialiasing, pytorch-fid's default (the network's own `resize_input`).
    """
    if mode not in FID_RESIZE_MODES:
        raise InvalidArgumentError(f"fid resize mode must be one of {FID_RESIZE_MODES}, got {mode!r}")
    if mode == "bilinear":
        return torch.nn.functional.interpolate(
            images.float(), size=(FID_INPUT_SIZE, FID_INPUT_SIZE), mode="bilinear", align_corners=False
        )
    quantized = np.round(images.clamp(0, 1).cpu().numpy() * 255).astype(np.float32)  # (B, 3, H, W) in [0, 255]
    resized = np.empty((*quantized.shape[:2], FID_INPUT_SIZE, FID_INPUT_SIZE), dtype=np.float32)
    for index in np.ndindex(*quantized.shape[:2]):
        channel = PIL.Image.fromarray(quantized[index], mode="F")
        resized[index] = np.asarray(channel.resize((FID_INPUT_SIZE, FID_INPUT_SIZE), PIL.Image.Resampling.BICUBIC))
    return torch.from_numpy(np.clip(resized, 0, 255) / 255.0)


@torch.no_grad()
def inception_features(model: FIDInceptionV3, images: torch.Tensor, resize: str = "clean") -> torch.Tensor:
    """Pool3 features `(B, 2048)` float64 of images `(B, 3, H, W)` in [0, 1]."""
    device = next(model.parameters()).device
    inputs = resize_for_inception(images, resize).to(device)
    resize_input = model.resize_input
    model.resize_input = False  # already 299x299
    try:
        return model(inputs).double().cpu()
    finally:
        model.resize_input = resize_input


def frechet_distance(real_features: torch.Tensor, fake_features: torch.Tensor) -> float:
    """FID between two feature sets `(N, D)` (each N >= 2), computed by torchmetrics."""
    from torchmetrics.image.fid import FrechetInceptionDistance

    for name, features in (("real", real_features), ("generated", fake_features)):
        if features.ndim != 2 or features.shape[0] < 2:
            raise InvalidArgumentError(
                f"FID needs at least 2 {name} feature vectors (N, D), got {tuple(features.shape)}"
            )
    metric = FrechetInceptionDistance(feature=PrecomputedFeatures(real_features.shape[1]))
    metric.update(real_features.double(), real=True)
    metric.update(fake_features.double(), real=False)
    return float(metric.compute())


def kernel_inception_distance(
    real_features: torch.Tensor,
    fake_features: torch.Tensor,
    *,
    subsets: int = 100,
    subset_size: int = 1000,
    seed: int = 0,
) -> tuple[float, float, int]:
    """KID mean and std over `subsets` random subsets (cubic polynomial kernel), computed by torchmetrics.

    The subset size is `min(subset_size, N_real, N_fake)` (as clean-fid does); the subsets are drawn with a
    generator seeded by `seed` (torchmetrics draws from the global RNG, which is forked and restored here).
    Returns `(mean, std, used_subset_size)`.
    """
    from torchmetrics.image.kid import KernelInceptionDistance

    size = min(subset_size, real_features.shape[0], fake_features.shape[0])
    if size < 2:
        raise InvalidArgumentError(
            f"KID needs at least 2 samples per set, got {real_features.shape[0]} and {fake_features.shape[0]}"
        )
    metric = KernelInceptionDistance(
        feature=PrecomputedFeatures(real_features.shape[1]), subsets=subsets, subset_size=size
    )
    metric.update(real_features.double(), real=True)
    metric.update(fake_features.double(), real=False)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        mean, std = metric.compute()
    return float(mean), float(std), size
