"""Tensor-side image helpers shared by the pipeline and the trainer (torch only; no torchvision)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from mvvton.models.image_encoder import CLIP_IMAGE_MEAN, CLIP_IMAGE_STD

# MV-VTON enlarges the garment bounding box by a random factor in [0.1, 0.2) before the CLIP crop, even at test
# time; mvvton uses the midpoint at inference (deterministic) and the random range in training.
CLIP_CROP_MARGIN = 0.15


def garment_bounding_box(mask: torch.Tensor, margin: float) -> tuple[int, int, int, int]:
    """Box `(top, left, bottom, right)` (exclusive) of a `(1, H, W)` or `(H, W)` mask, grown by `margin` of its size
    about its centre and clipped to the image; the whole image when the mask is empty."""
    mask = mask.reshape(mask.shape[-2:])
    height, width = mask.shape
    rows = torch.nonzero(mask.amax(dim=1) > 0.5).flatten()
    cols = torch.nonzero(mask.amax(dim=0) > 0.5).flatten()
    if rows.numel() == 0 or cols.numel() == 0:
        return 0, 0, height, width
    top, bottom = int(rows[0]), int(rows[-1]) + 1
    left, right = int(cols[0]), int(cols[-1]) + 1
    grow_y, grow_x = (bottom - top) * margin / 2, (right - left) * margin / 2
    return (
        max(0, int(top - grow_y)),
        max(0, int(left - grow_x)),
        min(height, int(bottom + grow_y + 0.5)),
        min(width, int(right + grow_x + 0.5)),
    )


def crop_garment_for_clip(
    garment: torch.Tensor, mask: torch.Tensor | None, size: int, margin: float | torch.Tensor = CLIP_CROP_MARGIN
) -> torch.Tensor:
    """Garment crop for the global (CLIP) branch.

    Args:
        garment: `(B, 3, H, W)` in [-1, 1] (the unmasked product image).
        mask: `(B, 1, H, W)` garment mask in [0, 1], or `None` for the whole image.
        size: CLIP input size (square; the aspect ratio is not kept, as in MV-VTON).
        margin: box enlargement, one value or one per sample `(B,)` (training draws it in [0.1, 0.2)).
    Returns:
        `(B, 3, size, size)` CLIP-normalised.
    """
    margins = torch.as_tensor(margin, dtype=torch.float32).flatten().expand(garment.shape[0])
    crops = []
    for index in range(garment.shape[0]):
        image = garment[index]
        if mask is not None:
            top, left, bottom, right = garment_bounding_box(mask[index], float(margins[index]))
            image = image[:, top:bottom, left:right]
        image = F.interpolate(image[None].float(), size=(size, size), mode="bicubic", align_corners=False)[0]
        crops.append(image)
    crops = (torch.stack(crops).clamp(-1, 1) + 1) / 2  # (B, 3, S, S) in [0, 1]
    mean = torch.tensor(CLIP_IMAGE_MEAN, device=crops.device).view(1, 3, 1, 1)
    std = torch.tensor(CLIP_IMAGE_STD, device=crops.device).view(1, 3, 1, 1)
    return ((crops - mean) / std).to(garment.dtype)
