"""The evaluation protocol `mvvton eval` follows by default (docs/evaluation.md gives the sources)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from mvvton.errors import InvalidArgumentError
from mvvton.evaluation.distribution import FID_RESIZE_MODES
from mvvton.evaluation.networks.lpips import TRUNKS

VIEWS = ("front", "side", "back")


@dataclass(frozen=True)
class EvalProtocol:
    """Settings of one evaluation.

    Args:
        size: `(height, width)` both images are resized to before SSIM / PSNR / LPIPS (bilinear, antialiased; masks
            nearest); None = the generated images' own size (references are resized to it if they differ).
        fid_resize: how images reach Inception's 299x299 input: "clean" (PIL bicubic, clean-fid) or "bilinear"
            (pytorch-fid).
        kid_subsets, kid_subset_size: KID mean/std over this many random subsets of this size (capped at the
            number of images), clean-fid's and torchmetrics' defaults.
        kid_scale: KID is reported multiplied by this (papers report KID x 1000).
        lpips_nets: LPIPS trunks to report ("alex" is LaDI-VTON's and so MV-VTON's; "vgg" also available).
        seed: seeds the KID subsets.
    """

    size: tuple[int, int] | None = None
    fid_resize: str = "clean"
    kid_subsets: int = 100
    kid_subset_size: int = 1000
    kid_scale: float = 1000.0
    lpips_nets: tuple[str, ...] = ("alex", "vgg")
    seed: int = 0

    def __post_init__(self) -> None:
        if self.size is not None and (len(self.size) != 2 or min(self.size) < 16):
            raise InvalidArgumentError(f"size must be (height, width) with both >= 16, got {self.size}")
        if self.fid_resize not in FID_RESIZE_MODES:
            raise InvalidArgumentError(f"fid_resize must be one of {FID_RESIZE_MODES}, got {self.fid_resize!r}")
        if self.kid_subsets < 1 or self.kid_subset_size < 2:
            raise InvalidArgumentError(
                f"need kid_subsets >= 1 and kid_subset_size >= 2, got {self.kid_subsets}, {self.kid_subset_size}"
            )
        unknown = [net for net in self.lpips_nets if net not in TRUNKS]
        if unknown:
            raise InvalidArgumentError(f"unknown LPIPS nets {unknown}; choose from {sorted(TRUNKS)}")

    def to_dict(self) -> dict:
        return asdict(self)
