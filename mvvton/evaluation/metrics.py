"""Image-quality metrics that run offline (no downloaded backbones): PSNR and SSIM, whole image or region-masked.

Images are `(B, 3, H, W)` float tensors in [0, 1]; masks `(B, 1, H, W)` in {0, 1} select the region (e.g. the
garment region = the regenerated area). SSIM uses an 11x11 Gaussian window (sigma 1.5), K1 = 0.01, K2 = 0.03 on the
[0, 1] range, averaged over channels, like scikit-image's `structural_similarity(gaussian_weights=True)`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from mvvton.utils.image_filters import detail_energy, gaussian_kernel_1d


def _check(prediction: torch.Tensor, target: torch.Tensor) -> None:
    if prediction.shape != target.shape or prediction.ndim != 4:
        raise ValueError(f"expected two (B, C, H, W) tensors of one shape, got {prediction.shape} and {target.shape}")


def psnr(prediction: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Per-sample PSNR in dB `(B,)`; with `mask`, the MSE is averaged over masked pixels only."""
    _check(prediction, target)
    error = (prediction.float() - target.float()) ** 2  # (B, C, H, W)
    if mask is None:
        mse = error.mean(dim=(1, 2, 3))
    else:
        weights = mask.float().expand_as(error)
        mse = (error * weights).sum(dim=(1, 2, 3)) / weights.sum(dim=(1, 2, 3)).clamp_min(1.0)
    return 10.0 * torch.log10(1.0 / mse.clamp_min(1e-10))


def _gaussian_window(size: int, sigma: float, channels: int, device, dtype) -> torch.Tensor:
    kernel_1d = gaussian_kernel_1d(size, sigma, device, dtype)
    kernel_2d = kernel_1d[:, None] * kernel_1d[None, :]
    return kernel_2d.expand(channels, 1, size, size).contiguous()  # (C, 1, k, k) depthwise


def ssim_map(prediction: torch.Tensor, target: torch.Tensor, window_size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """Local SSIM `(B, 1, H', W')` (valid region, channel mean) between images in [0, 1]."""
    _check(prediction, target)
    x, y = prediction.double(), target.double()
    channels = x.shape[1]
    window = _gaussian_window(window_size, sigma, channels, x.device, x.dtype)

    def blur(image: torch.Tensor) -> torch.Tensor:
        return F.conv2d(image, window, groups=channels)

    mu_x, mu_y = blur(x), blur(y)
    # sample covariance normalisation as scikit-image (N / (N - 1) with N = window pixels)
    correction = window_size * window_size / (window_size * window_size - 1)
    var_x = (blur(x * x) - mu_x**2) * correction
    var_y = (blur(y * y) - mu_y**2) * correction
    cov_xy = (blur(x * y) - mu_x * mu_y) * correction
    c1, c2 = 0.01**2, 0.03**2
    ssim = ((2 * mu_x * mu_y + c1) * (2 * cov_xy + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return ssim.mean(dim=1, keepdim=True).float()


def ssim(
    prediction: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None, window_size: int = 11
) -> torch.Tensor:
    """Per-sample SSIM `(B,)`; with `mask`, the local SSIM map is averaged where the (cropped) mask is set."""
    local = ssim_map(prediction, target, window_size)  # (B, 1, H - k + 1, W - k + 1)
    if mask is None:
        return local.mean(dim=(1, 2, 3))
    crop = (window_size - 1) // 2
    region = mask.float()[:, :, crop : crop + local.shape[-2], crop : crop + local.shape[-1]]
    return (local * region).sum(dim=(1, 2, 3)) / region.sum(dim=(1, 2, 3)).clamp_min(1.0)


def detail_ratio(prediction: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Per-sample fine-detail energy of the prediction relative to the target's `(B,)`, over `mask` if given.

    The energy is the local RMS of the high-pass band (`mvvton.utils.image_filters.detail_energy`: image minus its
    1-pixel blur, over a 2-pixel window). 1.0 keeps as much fine detail (print edges, stripes, letters) as the target;
    a smear scores well below 1, added noise above. Not alignment-sensitive: read it next to PSNR / SSIM.
    """
    _check(prediction, target)
    predicted, reference = detail_energy(prediction.float()), detail_energy(target.float())  # (B, 1, H, W)
    if mask is None:
        return predicted.mean(dim=(1, 2, 3)) / reference.mean(dim=(1, 2, 3)).clamp_min(1e-6)
    region = mask.float()
    return (predicted * region).sum(dim=(1, 2, 3)) / (reference * region).sum(dim=(1, 2, 3)).clamp_min(1e-6)
