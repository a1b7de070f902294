"""Offline evaluation metrics."""

from mvvton.evaluation.metrics import psnr, ssim, ssim_map

__all__ = ["psnr", "ssim", "ssim_map"]
