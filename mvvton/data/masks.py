"""Small mask helpers the loaders need when a dataset ships no inpaint mask (numpy / OpenCV)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import cv2
import numpy as np

from mvvton.constants import COCO18_INDEX
from mvvton.errors import DatasetError

# The official rule works at 1024 px height: dilate with a 10x10 kernel 3 times, erode once (spec §8).
PARSE_REFERENCE_HEIGHT = 1024
PARSE_KERNEL = 10
PARSE_DILATE_ITERATIONS = 3
PARSE_ERODE_ITERATIONS = 1
# Garment-mask estimation: a pixel is garment when it differs from the border colour by more than this (0..441).
BACKGROUND_DISTANCE = 30.0


def read_label_map(path: str | Path, height: int, width: int) -> np.ndarray:
    """Read a parsing label map (palette / grey PNG) resized by nearest neighbour to `(height, width)` uint8."""
    labels = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if labels is None:
        raise DatasetError(f"cannot read label map {path} (run `mvvton data check`)")
    if labels.ndim == 3:
        labels = labels[..., 0]
    return cv2.resize(labels, (width, height), interpolation=cv2.INTER_NEAREST_EXACT)


def parse_region_mask(labels: np.ndarray, label_ids: Iterable[int]) -> np.ndarray:
    """VITON-HD / DCI-VTON inpaint mask from a human-parsing label map.

    Args:
        labels: `(h, w)` integer label map.
        label_ids: labels to regenerate (e.g. upper clothes and arms).
    Returns:
        `(h, w)` float32 {0, 1}, 1 = regenerate; kernel scaled with the image height.
    """
    region = np.isin(labels, list(label_ids)).astype(np.uint8)
    size = max(2, round(PARSE_KERNEL * labels.shape[0] / PARSE_REFERENCE_HEIGHT))
    kernel = np.ones((size, size), np.uint8)
    region = cv2.dilate(region, kernel, iterations=PARSE_DILATE_ITERATIONS)
    region = cv2.erode(region, kernel, iterations=PARSE_ERODE_ITERATIONS)
    return region.astype(np.float32)


def pose_upper_body_mask(keypoints: np.ndarray, height: int, width: int) -> np.ndarray:
    """Coarse upper-body + arms mask from COCO-18 keypoints `(18, 3)` (pixels) when no parsing is available.

    Returns `(h, w)` float32 {0, 1}: the shoulder-hip quadrilateral widened by 15 %, plus thick arm strokes.
    All zeros when shoulders are missing.
    """
    mask = np.zeros((height, width), np.uint8)
    k = {name: keypoints[index] for name, index in COCO18_INDEX.items()}
    if k["right_shoulder"][2] <= 0 or k["left_shoulder"][2] <= 0:
        return mask.astype(np.float32)
    rs, ls = k["right_shoulder"][:2], k["left_shoulder"][:2]
    shoulder_width = float(np.linalg.norm(rs - ls)) + 1.0
    torso_length = 1.6 * shoulder_width
    rh = k["right_hip"][:2] if k["right_hip"][2] > 0 else rs + np.array([0.0, torso_length])
    lh = k["left_hip"][:2] if k["left_hip"][2] > 0 else ls + np.array([0.0, torso_length])
    quad = np.array([rs, ls, lh, rh], np.float32)
    center = quad.mean(axis=0)
    quad = center + (quad - center) * 1.15
    cv2.fillConvexPoly(mask, np.round(quad).astype(np.int32), 1)
    thickness = max(2, round(0.28 * shoulder_width))
    for side in ("right", "left"):
        chain = [k[f"{side}_shoulder"], k[f"{side}_elbow"], k[f"{side}_wrist"]]
        for start, end in zip(chain[:-1], chain[1:]):
            if start[2] > 0 and end[2] > 0:
                p0 = tuple(int(round(v)) for v in start[:2])
                p1 = tuple(int(round(v)) for v in end[:2])
                cv2.line(mask, p0, p1, 1, thickness)
    return mask.astype(np.float32)


def estimate_garment_mask(image: np.ndarray) -> np.ndarray:
    """Mask of a product photo on a plain background: pixels far from the median border colour, closed and
    hole-filled. `(h, w, 3)` uint8 -> `(h, w)` float32 {0, 1}."""
    border = np.concatenate([image[0], image[-1], image[:, 0], image[:, -1]]).astype(np.float32)
    background = np.median(border, axis=0)
    distance = np.linalg.norm(image.astype(np.float32) - background, axis=-1)
    mask = (distance > BACKGROUND_DISTANCE).astype(np.uint8)
    size = max(3, round(0.01 * image.shape[0]) | 1)
    mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, np.ones((size, size), np.uint8))
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    filled = np.zeros_like(mask)
    cv2.drawContours(filled, contours, -1, 1, thickness=-1)
    return filled.astype(np.float32)
