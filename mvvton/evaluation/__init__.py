"""Offline evaluation: PSNR / SSIM (`metrics`), the paper metrics SSIM, LPIPS, FID, KID per view (`paper_eval`,
run by `mvvton eval`) with their feature networks (`networks`), and the garment-region study of `tryon_eval`."""

from mvvton.evaluation.metrics import detail_ratio, psnr, ssim, ssim_map
from mvvton.evaluation.paper_eval import EvalReport, FeatureNetworks, evaluate
from mvvton.evaluation.protocol import EvalProtocol

__all__ = ["EvalProtocol", "EvalReport", "FeatureNetworks", "detail_ratio", "evaluate", "psnr", "ssim", "ssim_map"]
