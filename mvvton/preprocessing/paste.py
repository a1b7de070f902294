"""Working-size try-on result → the user's original photo at its own resolution (crop box + feathered mask)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import cv2
import numpy as np
from PIL import Image

from mvvton.errors import InvalidArgumentError

if TYPE_CHECKING:
    from mvvton.preprocessing.preprocessor import CropBox


def feathered_mask(mask: np.ndarray, feather: float) -> np.ndarray:
    """Soft version of a {0, 1} mask whose ramp lies INSIDE the mask: 0 everywhere the mask is 0.

    Args:
        mask: `(H, W)` in [0, 1].
        feather: ramp width in pixels (0 = hard edge).
    Returns:
        `(H, W)` float32 in [0, 1].
    """
    hard = (np.asarray(mask, dtype=np.float32) > 0.5).astype(np.float32)
    radius = int(round(feather))
    if radius < 1 or not hard.any():
        return hard
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * (radius // 2) + 1, 2 * (radius // 2) + 1))
    inner = cv2.erode(hard, kernel)
    soft = cv2.GaussianBlur(inner, (0, 0), max(radius / 2.5, 0.5))
    return np.clip(soft, 0.0, 1.0) * hard


def paste_into_original(
    result: np.ndarray | Image.Image,
    original: np.ndarray | Image.Image,
    crop_box: CropBox,
    mask: np.ndarray,
    *,
    feather: float | None = None,
) -> np.ndarray:
    """Put the working-canvas try-on `result` back into `original`, at the original photo's resolution.

    The canvas region of the photo (`crop_box`) is resized back to the photo's size; only inside `mask` (the
    regenerated region, canvas-sized) are result pixels used, blended over a feathered edge; every pixel outside the
    mask keeps its original colour exactly.

    Args:
        result: `(height, width, 3)` uint8 canvas (or PIL image of that size).
        original: the person photo `(orig_h, orig_w, 3)` uint8 the crop box was made for.
        crop_box: `PreprocessedTryOn.crop_box`.
        mask: `(height, width)` in [0, 1], 1 = regenerated.
        feather: ramp width in ORIGINAL pixels; default 1.5 canvas pixels scaled to the original (at least 2).
    Returns:
        `(orig_h, orig_w, 3)` uint8 RGB.
    Raises:
        InvalidArgumentError: sizes that do not match the crop box.
    """
    canvas = np.asarray(result)
    base = np.asarray(original)
    orig_h, orig_w = crop_box.original_size
    if base.shape[:2] != (orig_h, orig_w) or base.ndim != 3:
        raise InvalidArgumentError(
            f"original photo has shape {base.shape}, the crop box was made for {(orig_h, orig_w)}: pass the same "
            "photo the preprocessor saw"
        )
    mask = np.asarray(mask, dtype=np.float32)
    if canvas.ndim != 3 or canvas.shape[:2] != mask.shape[:2]:
        raise InvalidArgumentError(f"result {canvas.shape} and mask {mask.shape} must share the working size")
    rows = slice(crop_box.top, crop_box.top + crop_box.box_height)
    cols = slice(crop_box.left, crop_box.left + crop_box.box_width)
    upsampling = crop_box.scale < 1
    interpolation = cv2.INTER_CUBIC if upsampling else cv2.INTER_AREA
    restored = cv2.resize(canvas[rows, cols, :3], (orig_w, orig_h), interpolation=interpolation)
    full_mask = cv2.resize(mask[rows, cols], (orig_w, orig_h), interpolation=cv2.INTER_LINEAR)
    if feather is None:
        feather = max(2.0, 1.5 / max(crop_box.scale, 1e-6))
    alpha = feathered_mask(full_mask, feather)[..., None]
    out = base[..., :3].astype(np.float32) * (1.0 - alpha) + restored.astype(np.float32) * alpha
    out = np.round(np.clip(out, 0, 255)).astype(np.uint8)
    outside = alpha[..., 0] <= 0
    out[outside] = base[..., :3][outside]
    return out


OUTPUT_SIZES = ("working", "original")


def check_output_size(output_size: object, output_type: object) -> None:
    """Validate the pipeline's `output_size` against its `output_type` before any work.

    Raises:
        InvalidArgumentError: unknown `output_size`, or "original" with a tensor / latent output (one tensor cannot
            hold photos of different sizes).
    """
    if output_size not in OUTPUT_SIZES:
        raise InvalidArgumentError(f"`output_size` must be one of {OUTPUT_SIZES}, got {output_size!r}")
    if output_size == "original" and output_type not in ("pil", "np"):
        raise InvalidArgumentError(
            f"`output_size='original'` needs output_type 'pil' or 'np' (got {output_type!r}): photos of different "
            "sizes do not fit one tensor; use output_size='working' for tensors"
        )


def paste_batch_into_originals(
    images: list[Image.Image] | np.ndarray,
    placements: list[tuple[CropBox, np.ndarray, np.ndarray] | None],
    num_images_per_prompt: int = 1,
) -> list[Image.Image] | list[np.ndarray]:
    """Paste each working-size output into its sample's original photo (`paste_into_original`).

    Args:
        images: the pipeline's postprocessed outputs, PIL images or `(N, H, W, 3)` floats in [0, 1]; `N` =
            samples × `num_images_per_prompt`, samples' images consecutive.
        placements: per sample `(crop_box, original photo uint8, inpaint mask)`, or None (prepared inputs: that
            sample stays at the working size).
    Returns:
        A list: PIL images for PIL input, `(orig_h, orig_w, 3)` float32 arrays in [0, 1] for array input.
    """
    as_pil = isinstance(images, list) and (not images or isinstance(images[0], Image.Image))
    out: list = []
    for index, image in enumerate(images):
        placement = placements[index // num_images_per_prompt]
        canvas = np.asarray(image) if as_pil else np.round(np.clip(np.asarray(image), 0, 1) * 255).astype(np.uint8)
        if placement is not None:
            crop_box, original, mask = placement
            canvas = paste_into_original(canvas, original, crop_box, mask)
        out.append(Image.fromarray(canvas) if as_pil else canvas.astype(np.float32) / 255.0)
    return out
