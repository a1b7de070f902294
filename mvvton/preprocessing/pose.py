"""Keypoints in OpenPose COCO-18 order and their skeleton renders (numpy / OpenCV only).

Keypoint arrays are `(18, 3)` float32: `x, y` in pixels and a confidence; confidence `0` means "not detected".
"""

from __future__ import annotations

import cv2
import numpy as np

from mvvton.constants import NUM_KEYPOINTS

# Limbs as (start, end) keypoint indices, in the order of the OpenPose body renderer (17 drawn limbs).
OPENPOSE_LIMBS: tuple[tuple[int, int], ...] = (
    (1, 2), (1, 5), (2, 3), (3, 4), (5, 6), (6, 7), (1, 8), (8, 9), (9, 10),
    (1, 11), (11, 12), (12, 13), (1, 0), (0, 14), (14, 16), (0, 15), (15, 17),
)  # fmt: skip
# OpenPose palette, one colour per keypoint / limb, as the renderer's (B, G, R) tuples: the original renders were
# drawn with these values into an OpenCV BGR canvas, so read as RGB they appear channel-reversed. MV-VTON's pose
# encoder was trained on that appearance; `render_skeleton` reproduces it.
OPENPOSE_COLORS_BGR: tuple[tuple[int, int, int], ...] = (
    (255, 0, 0), (255, 85, 0), (255, 170, 0), (255, 255, 0), (170, 255, 0), (85, 255, 0),
    (0, 255, 0), (0, 255, 85), (0, 255, 170), (0, 255, 255), (0, 170, 255), (0, 85, 255),
    (0, 0, 255), (85, 0, 255), (170, 0, 255), (255, 0, 255), (255, 0, 170), (255, 0, 85),
)  # fmt: skip


def empty_keypoints() -> np.ndarray:
    """An all-missing `(18, 3)` keypoint array."""
    return np.zeros((NUM_KEYPOINTS, 3), dtype=np.float32)


def render_skeleton(
    keypoints: np.ndarray,
    height: int,
    width: int,
    *,
    stick_width: int | None = None,
    min_confidence: float = 0.05,
) -> np.ndarray:
    """Draw an OpenPose-style skeleton on black.

    Args:
        keypoints: `(18, 3)` pixel coordinates + confidence, in the image of size `(height, width)`.
        stick_width: limb half-thickness in pixels; default scales with the image (4 px at 512 px height).
    Returns:
        `(height, width, 3)` uint8 RGB image, channel order as the original MV-VTON skeleton files read as RGB.
    """
    keypoints = np.asarray(keypoints, dtype=np.float32)
    if keypoints.shape != (NUM_KEYPOINTS, 3):
        raise ValueError(f"keypoints must have shape ({NUM_KEYPOINTS}, 3), got {keypoints.shape}")
    scale = height / 512.0
    stick = stick_width if stick_width is not None else max(1, round(4 * scale))
    radius = max(1, round(4 * scale))
    canvas = np.zeros((height, width, 3), dtype=np.uint8)  # drawn as BGR, like the original renderer
    visible = keypoints[:, 2] > min_confidence
    for index in range(NUM_KEYPOINTS):
        if visible[index]:
            center = (int(round(keypoints[index, 0])), int(round(keypoints[index, 1])))
            cv2.circle(canvas, center, radius, OPENPOSE_COLORS_BGR[index], thickness=-1)
    for limb_index, (start, end) in enumerate(OPENPOSE_LIMBS):
        if not (visible[start] and visible[end]):
            continue
        limb_layer = canvas.copy()
        (x0, y0), (x1, y1) = keypoints[start, :2], keypoints[end, :2]
        length = float(np.hypot(x1 - x0, y1 - y0))
        angle = float(np.degrees(np.arctan2(y1 - y0, x1 - x0)))
        center = (int(round((x0 + x1) / 2)), int(round((y0 + y1) / 2)))
        polygon = cv2.ellipse2Poly(center, (max(1, int(length / 2)), stick), int(angle), 0, 360, 1)
        cv2.fillConvexPoly(limb_layer, polygon, OPENPOSE_COLORS_BGR[limb_index])
        canvas = cv2.addWeighted(canvas, 0.4, limb_layer, 0.6, 0)
    return np.ascontiguousarray(canvas[..., ::-1])  # BGR canvas -> RGB array


def normalize_keypoints(keypoints: np.ndarray, height: int, width: int) -> np.ndarray:
    """Pixel keypoints -> `(18, 3)` with x, y in [0, 1] (TryOnDiffusion's J_p / J_g); missing points stay 0."""
    normalized = np.array(keypoints, dtype=np.float32, copy=True)
    normalized[:, 0] /= max(width - 1, 1)
    normalized[:, 1] /= max(height - 1, 1)
    normalized[normalized[:, 2] <= 0, :2] = 0.0
    return normalized


def scale_keypoints(keypoints: np.ndarray, scale_x: float, scale_y: float) -> np.ndarray:
    """Rescale pixel keypoints after a resize; confidences unchanged."""
    scaled = np.array(keypoints, dtype=np.float32, copy=True)
    scaled[:, 0] *= scale_x
    scaled[:, 1] *= scale_y
    return scaled
