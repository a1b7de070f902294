from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import PIL.Image
import torch
from diffusers.utils import BaseOutput


@dataclass
class MVVTONPipelineOutput(BaseOutput):
    """
    Args:
        images: the try-on results, `B * num_images_per_prompt` of them (PIL, `(N, H, W, 3)` numpy in [0, 1], or a
            `(N, 3, H, W)` tensor in [0, 1], by `output_type`; latents for `output_type="latent"`).
        intermediates: with `return_intermediates=True`, one dict per input sample: the routed garment view, the
            person view, and the images the model was conditioned on (skeletons, inpaint mask, warped composite...).
    """

    images: list[PIL.Image.Image] | np.ndarray | torch.Tensor
    intermediates: list[dict[str, Any]] | None = None
