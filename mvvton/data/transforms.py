"""Paired geometric transforms: one random draw applied identically to every person-frame array of a sample.

Person frame = `person`, `inpaint_image`, `agnostic`, `inpaint_mask`, `skeleton_person`, `person_keypoints`.
Garment frame = each garment image with its mask and skeleton; garments are only resized (and mirrored when the
flip fires) because product photos do not share the person's geometry.

Pixel convention: keypoint `(x, y)` is the centre of pixel column `x`, row `y` (OpenPose / OpenCV); a resize by
`s` maps `x -> (x + 0.5) * s - 0.5`, exactly what `cv2.resize` does to the pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from mvvton.constants import COCO18_INDEX
from mvvton.data.sample import RawSample
from mvvton.preprocessing.pose import render_skeleton

# COCO-18 (right, left) index pairs swapped by a horizontal flip.
LEFT_RIGHT_PAIRS: tuple[tuple[int, int], ...] = tuple(
    (COCO18_INDEX[f"right_{part}"], COCO18_INDEX[f"left_{part}"])
    for part in ("shoulder", "elbow", "wrist", "hip", "knee", "ankle", "eye", "ear")
)
_SWAP = {**dict(LEFT_RIGHT_PAIRS), **{left: right for right, left in LEFT_RIGHT_PAIRS}}
FLIP_PERMUTATION: tuple[int, ...] = tuple(_SWAP.get(index, index) for index in range(len(COCO18_INDEX)))


def resize_array(array: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize an image `(h, w[, c])` (uint8 or float32) to `(height, width[, c])`; area filter when shrinking."""
    if array.shape[:2] == (height, width):
        return array
    shrink = height < array.shape[0] or width < array.shape[1]
    return cv2.resize(array, (width, height), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


def transform_keypoints(
    keypoints: np.ndarray, box: tuple[int, int, int, int], height: int, width: int, flip: bool
) -> np.ndarray:
    """Map `(18, 3)` pixel keypoints through crop `box = (x0, y0, box_w, box_h)`, a resize to `(height, width)` and
    an optional horizontal flip (which also swaps left/right joints). Points leaving the frame get confidence 0."""
    x0, y0, box_w, box_h = box
    out = np.array(keypoints, dtype=np.float32, copy=True)
    known = out[:, 2] > 0
    out[:, 0] = (out[:, 0] - x0 + 0.5) * (width / box_w) - 0.5
    out[:, 1] = (out[:, 1] - y0 + 0.5) * (height / box_h) - 0.5
    if flip:
        out[:, 0] = width - 1 - out[:, 0]
        out = out[list(FLIP_PERMUTATION)]
        known = known[list(FLIP_PERMUTATION)]
    inside = (out[:, 0] >= -0.5) & (out[:, 0] <= width - 0.5) & (out[:, 1] >= -0.5) & (out[:, 1] <= height - 0.5)
    lost = ~(known & inside)
    out[lost] = 0.0
    return out


@dataclass
class PairedTransform:
    """Resize a :class:`RawSample` to `(height, width)`, with optional random crop-resize and horizontal flip.

    Args:
        height, width: output size in pixels.
        crop_scale: `(min, max)` fraction of the person image side kept by a random crop (aspect kept), or None.
        flip_prob: probability of a horizontal flip. Default 0: a mirror image swaps the person's left and right
            and mirrors garment prints, which changes what "front garment" means; enable only knowingly.
    """

    height: int
    width: int
    crop_scale: tuple[float, float] | None = None
    flip_prob: float = 0.0

    def sample_box(self, height: int, width: int, rng: np.random.Generator | None) -> tuple[int, int, int, int]:
        """Draw the crop box `(x0, y0, w, h)` in a `(height, width)` person image (full image without crop)."""
        if self.crop_scale is None or rng is None:
            return 0, 0, width, height
        scale = float(rng.uniform(*self.crop_scale))
        box_w = max(1, min(width, round(width * scale)))
        box_h = max(1, min(height, round(height * scale)))
        x0 = int(rng.integers(0, width - box_w + 1))
        y0 = int(rng.integers(0, height - box_h + 1))
        return x0, y0, box_w, box_h

    def __call__(self, raw: RawSample, rng: np.random.Generator | None = None) -> RawSample:
        """Apply the transform; `rng` drives the random parts (None = deterministic resize only)."""
        box = self.sample_box(*raw.person.shape[:2], rng)
        flip = bool(rng is not None and self.flip_prob > 0 and rng.random() < self.flip_prob)

        def person_frame(array: np.ndarray | None) -> np.ndarray | None:
            if array is None:
                return None
            x0, y0, box_w, box_h = box
            out = resize_array(np.ascontiguousarray(array[y0 : y0 + box_h, x0 : x0 + box_w]), self.height, self.width)
            return np.ascontiguousarray(out[:, ::-1]) if flip else out

        def garment_frame(array: np.ndarray | None) -> np.ndarray | None:
            if array is None:
                return None
            out = resize_array(array, self.height, self.width)
            return np.ascontiguousarray(out[:, ::-1]) if flip else out

        keypoints = raw.person_keypoints
        if keypoints is not None:
            keypoints = transform_keypoints(keypoints, box, self.height, self.width, flip)
        skeleton_person = person_frame(raw.skeleton_person)
        if flip and keypoints is not None and np.any(keypoints[:, 2] > 0):
            # A mirrored render would carry the left-arm colours on the right arm: redraw from the flipped joints.
            skeleton_person = render_skeleton(keypoints, self.height, self.width)
        return raw.replace(
            person=person_frame(raw.person),
            inpaint_image=person_frame(raw.inpaint_image),
            inpaint_mask=person_frame(raw.inpaint_mask.astype(np.float32)),
            agnostic=person_frame(raw.agnostic),
            skeleton_person=skeleton_person,
            person_keypoints=keypoints,
            garment_front=garment_frame(raw.garment_front),
            garment_back=garment_frame(raw.garment_back),
            garment_front_mask=(garment_frame(raw.garment_front_mask.astype(np.float32)) > 0.5).astype(np.float32),
            garment_back_mask=(garment_frame(raw.garment_back_mask.astype(np.float32)) > 0.5).astype(np.float32),
            skeleton_front=garment_frame(raw.skeleton_front),
            skeleton_back=garment_frame(raw.skeleton_back),
        )
