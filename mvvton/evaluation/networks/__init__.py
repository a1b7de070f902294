"""Feature networks of the paper metrics (FID/KID Inception-v3, LPIPS), torch only, loaded from local files."""

from mvvton.evaluation.networks.inception import FIDInceptionV3, random_init_
from mvvton.evaluation.networks.lpips import LPIPS, random_init_lpips_

__all__ = ["FIDInceptionV3", "LPIPS", "random_init_", "random_init_lpips_"]
