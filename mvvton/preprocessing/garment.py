"""Garment masks and garment keypoints.

* Product photos on a plain / near-plain background (white-on-white included): background colour estimated from the
  border, Lab colour distance + edges + morphology + largest component + hole filling.
* Garment keypoints from the mask contour, also as a canonical OpenPose-18 "garment skeleton" (the pose of a person
  wearing it flat): mirrored for the back product photo, which shows the wearer's right side on the image right.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import cv2
import numpy as np

from mvvton.constants import COCO18_INDEX, GarmentView
from mvvton.errors import InvalidImageError, MissingDependencyError, NoGarmentDetectedError
from mvvton.preprocessing.masks import GARMENT_LABELS
from mvvton.preprocessing.pose import empty_keypoints

logger = logging.getLogger(__name__)


def _disk(radius: int) -> np.ndarray:
    radius = max(1, int(radius))
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))


def _fill_holes(mask: np.ndarray) -> np.ndarray:
    """Fill every background region not connected to the image border. uint8 {0,1} in/out."""
    height, width = mask.shape
    padded = np.zeros((height + 2, width + 2), dtype=np.uint8)
    padded[1:-1, 1:-1] = mask
    flood = padded.copy()
    ff_mask = np.zeros((height + 4, width + 4), dtype=np.uint8)
    cv2.floodFill(flood, ff_mask, (0, 0), 1)
    holes = flood[1:-1, 1:-1] == 0
    return (mask.astype(bool) | holes).astype(np.uint8)


def _largest_component(mask: np.ndarray) -> np.ndarray:
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    if count <= 1:
        return np.zeros_like(mask, dtype=np.uint8)
    best = int(np.argmax(stats[1:, cv2.CC_STAT_AREA])) + 1
    return (labels == best).astype(np.uint8)


def estimate_background(image: np.ndarray, border: float = 0.02) -> tuple[np.ndarray, float]:
    """Background colour (Lab) and its spread from a border strip of the image.

    Returns:
        `(lab_colour (3,), noise)`: median Lab colour of the border, and the 90th percentile of border pixels'
        distance to it (how far from "plain" the background is).
    """
    lab = cv2.cvtColor(image, cv2.COLOR_RGB2LAB).astype(np.float32)
    height, width = lab.shape[:2]
    b = max(2, int(round(border * min(height, width))))
    strip = np.concatenate(
        [lab[:b].reshape(-1, 3), lab[-b:].reshape(-1, 3), lab[:, :b].reshape(-1, 3), lab[:, -b:].reshape(-1, 3)]
    )
    colour = np.median(strip, axis=0)
    noise = float(np.percentile(np.linalg.norm(strip - colour, axis=1), 90))
    return colour, noise


def garment_mask(
    image: np.ndarray,
    *,
    color_threshold: float = 12.0,
    min_area_fraction: float = 0.02,
    max_area_fraction: float = 0.95,
    working_size: int = 640,
) -> np.ndarray:
    """Foreground mask of a garment product photo on a plain or near-plain background.

    Args:
        image: `(H, W, 3)` uint8 RGB product photo (garment roughly centred, background touching the border).
        color_threshold: minimal Lab distance to the background colour counted as garment; raised automatically
            for noisy backgrounds.
        min_area_fraction, max_area_fraction: plausible garment area range; outside it the photo is rejected.
        working_size: larger photos are segmented at this longest side and the mask is upsampled (speed).
    Returns:
        `(H, W)` float32 in {0, 1}, one connected component without holes.
    Raises:
        NoGarmentDetectedError: nothing separable from the background (or the whole photo is "garment").
    """
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise InvalidImageError(f"garment_mask needs an (H, W, 3) uint8 RGB image, got {image.shape} {image.dtype}")
    height, width = image.shape[:2]
    if max(height, width) > working_size:
        factor = working_size / max(height, width)
        small = cv2.resize(image, (max(1, round(width * factor)), max(1, round(height * factor))), interpolation=cv2.INTER_AREA)
        small_mask = garment_mask(small, color_threshold=color_threshold, min_area_fraction=min_area_fraction,
                                  max_area_fraction=max_area_fraction, working_size=working_size)  # fmt: skip
        full = cv2.resize(small_mask, (width, height), interpolation=cv2.INTER_LINEAR)
        return (full > 0.5).astype(np.float32)
    size = min(height, width)
    background, noise = estimate_background(image)
    lab = cv2.cvtColor(cv2.GaussianBlur(image, (0, 0), max(0.6, size / 700)), cv2.COLOR_RGB2LAB).astype(np.float32)
    distance = np.linalg.norm(lab - background, axis=2)
    threshold = max(color_threshold, 2.5 * noise)
    colour_fg = distance > threshold
    # Edges catch white-on-white garments whose body is background-coloured but outlined by seams and shading.
    gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    gray = cv2.GaussianBlur(gray, (0, 0), max(1.0, size / 400))
    edges = cv2.Canny(gray, 20, 50) > 0
    # Faint edges near a noisy border are most likely texture of the backdrop; edges count only away from it.
    margin = max(2, int(0.01 * size))
    edges[:margin], edges[-margin:], edges[:, :margin], edges[:, -margin:] = False, False, False, False
    fg = (colour_fg | edges).astype(np.uint8)
    fg = cv2.morphologyEx(fg, cv2.MORPH_CLOSE, _disk(max(2, size // 80)))
    fg = _fill_holes(fg)
    fg = cv2.morphologyEx(fg, cv2.MORPH_OPEN, _disk(max(1, size // 150)))
    fg = _largest_component(fg)
    fg = _fill_holes(fg)
    area = float(fg.mean())
    if area < min_area_fraction:
        raise NoGarmentDetectedError(
            f"no garment found (foreground covers {area:.1%} of the photo): use a product photo of the garment on a "
            "plain background, filling a good part of the frame, or pass the garment mask yourself."
        )
    if area > max_area_fraction:
        raise NoGarmentDetectedError(
            f"the garment cannot be separated from the background (foreground covers {area:.1%}): use a photo with "
            "a plain background around the garment, or pass the garment mask yourself."
        )
    return fg.astype(np.float32)


@dataclass
class GarmentLandmarks:
    """Garment landmarks in image coordinates (`(x, y)` pixels), named by their side in the IMAGE.

    `sleeve_*` are the sleeve ends (cuff centres); `hem_*` the bottom corners; `has_sleeves` is False for tank tops.
    """

    neck: np.ndarray
    shoulder_image_left: np.ndarray
    shoulder_image_right: np.ndarray
    sleeve_image_left: np.ndarray
    sleeve_image_right: np.ndarray
    hem_image_left: np.ndarray
    hem_image_right: np.ndarray
    has_sleeves: bool

    def to_openpose(self, view: GarmentView | str) -> np.ndarray:
        """Canonical garment skeleton in COCO-18 order: `(18, 3)` float32 pixels + confidence.

        neck → neck; shoulders → shoulders; sleeve ends → elbows; hem corners → hips; the rest missing. For the FRONT
        product photo the wearer's right side is on the image left (like a person facing the camera); for the BACK
        photo it is on the image right, so the assignment is mirrored.
        """
        view = GarmentView(view)
        right_on_left = view is GarmentView.FRONT
        kp = empty_keypoints()

        def put(name: str, point: np.ndarray, conf: float = 1.0) -> None:
            kp[COCO18_INDEX[name]] = (float(point[0]), float(point[1]), conf)

        near, far = ("right", "left") if right_on_left else ("left", "right")
        put("neck", self.neck)
        put(f"{near}_shoulder", self.shoulder_image_left)
        put(f"{far}_shoulder", self.shoulder_image_right)
        sleeve_conf = 1.0 if self.has_sleeves else 0.5
        put(f"{near}_elbow", self.sleeve_image_left, sleeve_conf)
        put(f"{far}_elbow", self.sleeve_image_right, sleeve_conf)
        put(f"{near}_hip", self.hem_image_left)
        put(f"{far}_hip", self.hem_image_right)
        return kp


def _row_span(mask: np.ndarray, row: int, x_center: int) -> tuple[int, int] | None:
    """The run of mask pixels on `row` that contains (or is nearest to) column `x_center`."""
    cols = np.flatnonzero(mask[row])
    if cols.size == 0:
        return None
    breaks = np.flatnonzero(np.diff(cols) > 1)
    starts = np.concatenate([[cols[0]], cols[breaks + 1]])
    ends = np.concatenate([cols[breaks], [cols[-1]]])
    inside = np.flatnonzero((starts <= x_center) & (ends >= x_center))
    index = int(inside[0]) if inside.size else int(np.argmin(np.minimum(abs(starts - x_center), abs(ends - x_center))))
    return int(starts[index]), int(ends[index])


def garment_landmarks(mask: np.ndarray) -> GarmentLandmarks:
    """Collar centre, shoulders, sleeve ends and hem corners from a garment mask (upright upper-body garment).

    Args:
        mask: `(H, W)` {0, 1} garment mask, garment upright (collar on top).
    Raises:
        NoGarmentDetectedError: empty mask.
    """
    m = np.asarray(mask) > 0.5
    ys, xs = np.nonzero(m)
    if ys.size == 0:
        raise NoGarmentDetectedError("empty garment mask: no landmarks")
    top, bottom = int(ys.min()), int(ys.max())
    left, right = int(xs.min()), int(xs.max())
    gh = bottom - top + 1
    # Vertical axis: centroid of the lower half (the body; sleeves are asymmetric-free there).
    lower = ys > top + 0.55 * gh
    x_mid = int(round(float(np.median(xs[lower])) if lower.any() else float(np.median(xs))))
    # Torso width: the run through the axis, measured at 75 % height (below short sleeves).
    torso_spans = [_row_span(m, int(top + f * gh), x_mid) for f in (0.7, 0.75, 0.8)]
    torso_spans = [s for s in torso_spans if s is not None]
    t_left = int(np.median([s[0] for s in torso_spans])) if torso_spans else left
    t_right = int(np.median([s[1] for s in torso_spans])) if torso_spans else right
    # Top profile: first mask row per column.
    has_pixel = m.any(axis=0)
    first_row = np.where(has_pixel, np.argmax(m, axis=0), bottom)

    def top_at(x: int) -> int:
        x = int(np.clip(x, left, right))
        window = first_row[max(left, x - 2) : min(right, x + 2) + 1]
        return int(np.min(window))

    # Collar: the neckline dip near the axis; take the deepest top-profile point within ±12 % of the width.
    half = max(2, int(0.12 * (t_right - t_left)))
    neck_cols = np.arange(max(left, x_mid - half), min(right, x_mid + half) + 1)
    neck_x = int(neck_cols[np.argmax(first_row[neck_cols])]) if neck_cols.size else x_mid
    neck = np.array([neck_x, top_at(neck_x)], dtype=np.float32)
    # Shoulders: on the top profile, a little inside the torso edges.
    inset = int(0.06 * (t_right - t_left))
    shoulder_l = np.array([t_left + inset, top_at(t_left + inset)], dtype=np.float32)
    shoulder_r = np.array([t_right - inset, top_at(t_right - inset)], dtype=np.float32)
    # Sleeves: the garment's extreme columns, if they stick out of the torso.
    sleeve_margin = 0.08 * (t_right - t_left)
    has_sleeves = (t_left - left) > sleeve_margin and (right - t_right) > sleeve_margin
    band = max(2, int(0.02 * (right - left)))

    def sleeve_end(extreme: int, side: int) -> np.ndarray:
        cols = slice(extreme, extreme + band + 1) if side < 0 else slice(max(0, extreme - band), extreme + 1)
        rows = np.flatnonzero(m[:, cols].any(axis=1))
        return np.array([extreme, float(np.median(rows))], dtype=np.float32)

    if has_sleeves:
        sleeve_l, sleeve_r = sleeve_end(left, -1), sleeve_end(right, +1)
    else:  # sleeveless: the armhole bottom, just below the shoulder
        drop = 0.3 * gh
        sleeve_l = np.array([t_left, min(bottom, shoulder_l[1] + drop)], dtype=np.float32)
        sleeve_r = np.array([t_right, min(bottom, shoulder_r[1] + drop)], dtype=np.float32)
    # Hem corners: extreme columns of the run through the axis, a little above the lowest row.
    hem_row = int(bottom - 0.03 * gh)
    span = _row_span(m, hem_row, x_mid) or (t_left, t_right)
    hem_l = np.array([span[0], hem_row], dtype=np.float32)
    hem_r = np.array([span[1], hem_row], dtype=np.float32)
    return GarmentLandmarks(neck, shoulder_l, shoulder_r, sleeve_l, sleeve_r, hem_l, hem_r, bool(has_sleeves))


def garment_keypoints(mask: np.ndarray, view: GarmentView | str = GarmentView.FRONT) -> np.ndarray:
    """Canonical OpenPose-18 garment skeleton `(18, 3)` (see `GarmentLandmarks.to_openpose`); back view mirrored."""
    return garment_landmarks(mask).to_openpose(view)


# --------------------------------------------------------------------------------------------------------------------
# Garment from a photo of someone wearing it (TryOnDiffusion's I_c).


@runtime_checkable
class HumanParser(Protocol):
    """A human-parsing model: RGB photo → per-pixel labels of `scheme` ("atr", "lip" or "vitonhd")."""

    scheme: str

    def __call__(self, image: np.ndarray) -> np.ndarray:
        """`image`: `(H, W, 3)` uint8 RGB → `(H, W)` integer label map."""
        ...


class OnnxHumanParser:
    """Human parser from a local ONNX file (e.g. an exported SCHP-ATR or LIP model), run with onnxruntime.

    The model must take `(1, 3, h, w)` float32 normalised RGB and return `(1, C, h', w')` logits (or `(1, h', w')`
    labels). Nothing is downloaded; `model_path` must exist.

    Args:
        model_path: path to the `.onnx` file.
        scheme: label scheme of the model's classes.
        input_size: `(h, w)` the model expects.
        mean, std: per-channel normalisation of [0, 1] RGB input.
    """

    def __init__(
        self,
        model_path: str | Path,
        *,
        scheme: str = "atr",
        input_size: tuple[int, int] = (512, 512),
        mean: tuple[float, float, float] = (0.485, 0.456, 0.406),
        std: tuple[float, float, float] = (0.229, 0.224, 0.225),
    ) -> None:
        self.model_path = Path(model_path)
        if not self.model_path.is_file():
            raise FileNotFoundError(f"human-parsing model not found: {self.model_path}")
        if scheme not in GARMENT_LABELS:
            raise ValueError(f"unknown parsing scheme {scheme!r}; expected one of {sorted(GARMENT_LABELS)}")
        self.scheme = scheme
        self.input_size = input_size
        self.mean = np.asarray(mean, dtype=np.float32)
        self.std = np.asarray(std, dtype=np.float32)
        self._session: Any = None

    def _load(self) -> Any:
        try:
            import onnxruntime  # noqa: PLC0415 - optional backend
        except ImportError as exc:
            raise MissingDependencyError(
                "OnnxHumanParser needs onnxruntime: pip install onnxruntime (CPU build is enough)"
            ) from exc
        return onnxruntime.InferenceSession(str(self.model_path), providers=["CPUExecutionProvider"])

    def __call__(self, image: np.ndarray) -> np.ndarray:
        if self._session is None:
            self._session = self._load()
        height, width = image.shape[:2]
        h, w = self.input_size
        x = cv2.resize(image, (w, h), interpolation=cv2.INTER_LINEAR).astype(np.float32) / 255.0
        x = ((x - self.mean) / self.std).transpose(2, 0, 1)[None]
        name = self._session.get_inputs()[0].name
        out = np.asarray(self._session.run(None, {name: x})[0])
        labels = out[0].argmax(axis=0) if out.ndim == 4 else out[0]
        return cv2.resize(labels.astype(np.uint8), (width, height), interpolation=cv2.INTER_NEAREST).astype(np.int64)
