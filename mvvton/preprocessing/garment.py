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


def _squared_distance(lab: np.ndarray, colour: np.ndarray) -> np.ndarray:
    """`(H, W, 3)` Lab image, `(3,)` colour -> `(H, W)` squared Euclidean distance (no square root needed to threshold)."""
    difference = lab - colour
    return np.einsum("hwc,hwc->hw", difference, difference)


def estimate_background(image: np.ndarray, border: float = 0.02) -> tuple[np.ndarray, float]:
    """Background colour (Lab) and its spread from a border strip of the image.

    Returns:
        `(lab_colour (3,), noise)`: median Lab colour of the border, and the 90th percentile of border pixels'
        distance to it (how far from "plain" the background is).
    """
    height, width = image.shape[:2]
    b = max(2, int(round(border * min(height, width))))
    strip_rgb = np.concatenate(
        [
            image[:b].reshape(-1, 3),
            image[-b:].reshape(-1, 3),
            image[:, :b].reshape(-1, 3),
            image[:, -b:].reshape(-1, 3),
        ]
    )  # (N, 3) uint8: only the border is converted to Lab
    strip = cv2.cvtColor(strip_rgb[:, None, :], cv2.COLOR_RGB2LAB).reshape(-1, 3).astype(np.float32)
    colour = np.median(strip, axis=0)
    noise = float(np.percentile(np.linalg.norm(strip - colour, axis=1), 90))
    return colour, noise


@dataclass(frozen=True)
class MaskChecks:
    """Sanity measurements of a garment mask (see `check_garment_mask`).

    Attributes:
        area_fraction: mask area / image area.
        solidity: mask area / area of its convex hull (a flat top is > 0.6; a lone sleeve or a thin outline is not).
        hole_fraction: area that hole filling added / final area (a leaking outline fills the background).
        symmetry: IoU of the mask with its mirror image about the mask's vertical axis (flat garments are symmetric).
        border_fraction: fraction of the image border covered by the mask (the garment should not touch the frame).
        failures: the rules that failed, human readable; empty when the mask is plausible.
    """

    area_fraction: float
    solidity: float
    hole_fraction: float
    symmetry: float
    border_fraction: float
    failures: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.failures


# The sanity rules (documented in docs/preprocessing.md). A mask failing any of them is not trusted.
MIN_AREA_FRACTION = 0.03
MAX_AREA_FRACTION = 0.92
MIN_SOLIDITY = 0.6
MAX_HOLE_FRACTION = 0.08
MIN_SYMMETRY = 0.75
MAX_BORDER_FRACTION = 0.15


def check_garment_mask(mask: np.ndarray, holes_filled: np.ndarray | None = None) -> MaskChecks:
    """Measure a garment mask against the sanity rules.

    Args:
        mask: `(H, W)` {0, 1} final mask.
        holes_filled: optional `(H, W)` {0, 1} pixels added by hole filling (for `hole_fraction`).
    """
    m = (np.asarray(mask) > 0.5).astype(np.uint8)
    area = float(m.sum())
    total = float(m.size)
    failures = []
    if area == 0:
        return MaskChecks(0.0, 0.0, 0.0, 0.0, 0.0, ("empty mask",))
    contours, _ = cv2.findContours(m, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    hull_area = float(cv2.contourArea(cv2.convexHull(np.concatenate(contours)))) if contours else 0.0
    solidity = area / max(hull_area, 1.0)
    holes = 0.0 if holes_filled is None else float((np.asarray(holes_filled) > 0.5).sum()) / area
    xs = np.flatnonzero(m.any(axis=0))
    ys_cols = np.nonzero(m)[1]
    axis = float(np.mean(ys_cols))
    shift = int(round(2 * axis)) - (m.shape[1] - 1)  # mirror about x = axis
    mirrored = np.roll(m[:, ::-1], shift, axis=1)
    if shift > 0:
        mirrored[:, :shift] = 0
    elif shift < 0:
        mirrored[:, shift:] = 0
    symmetry = float((m & mirrored).sum()) / max(float((m | mirrored).sum()), 1.0)
    border = np.concatenate([m[0], m[-1], m[:, 0], m[:, -1]])
    border_fraction = float(border.mean())
    fraction = area / total
    if fraction < MIN_AREA_FRACTION:
        failures.append(f"covers only {fraction:.1%} of the photo (< {MIN_AREA_FRACTION:.0%})")
    if fraction > MAX_AREA_FRACTION:
        failures.append(f"covers {fraction:.1%} of the photo (> {MAX_AREA_FRACTION:.0%}): background not separated")
    if solidity < MIN_SOLIDITY:
        failures.append(f"solidity {solidity:.2f} < {MIN_SOLIDITY} (fragment or outline, not a garment)")
    if holes > MAX_HOLE_FRACTION:
        failures.append(f"hole filling added {holes:.0%} of the area (> {MAX_HOLE_FRACTION:.0%}): the outline leaked")
    if symmetry < MIN_SYMMETRY:
        failures.append(f"left-right symmetry {symmetry:.2f} < {MIN_SYMMETRY} (a sleeve or half of the garment)")
    if border_fraction > MAX_BORDER_FRACTION:
        failures.append(f"touches {border_fraction:.0%} of the photo border (> {MAX_BORDER_FRACTION:.0%})")
    del xs
    return MaskChecks(fraction, solidity, holes, symmetry, border_fraction, tuple(failures))


@dataclass
class GarmentSegmentation:
    """Result of `segment_garment`: the mask, which method produced it, its sanity checks and warnings."""

    mask: np.ndarray
    method: str
    checks: MaskChecks
    warnings: list[str]


def _resize_for_work(image: np.ndarray, working_size: int) -> np.ndarray:
    height, width = image.shape[:2]
    if max(height, width) <= working_size:
        return image
    factor = working_size / max(height, width)
    size = (max(1, round(width * factor)), max(1, round(height * factor)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def _finish(fg: np.ndarray, open_radius: int) -> tuple[np.ndarray, np.ndarray]:
    """Largest component, holes filled, small spurs opened away. Returns `(mask, holes_added)` uint8."""
    fg = _largest_component(fg)
    filled = _fill_holes(fg)
    holes = filled & (1 - fg)
    filled = cv2.morphologyEx(filled, cv2.MORPH_OPEN, _disk(open_radius))
    filled = _largest_component(filled)
    return filled, holes & filled


def _colour_edge_mask(image: np.ndarray, color_threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Method 1: Lab distance to the border colour, union Canny edges, closing, hole filling."""
    size = min(image.shape[:2])
    background, noise = estimate_background(image)
    lab = cv2.cvtColor(cv2.GaussianBlur(image, (0, 0), max(0.6, size / 700)), cv2.COLOR_RGB2LAB).astype(np.float32)
    colour_fg = _squared_distance(lab, background) > max(color_threshold, 2.5 * noise) ** 2
    gray = cv2.GaussianBlur(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY), (0, 0), max(1.0, size / 400))
    edges = cv2.Canny(gray, 20, 50) > 0
    margin = max(2, int(0.01 * size))
    edges[:margin], edges[-margin:], edges[:, :margin], edges[:, -margin:] = False, False, False, False
    fg = (colour_fg | edges).astype(np.uint8)
    fg = cv2.morphologyEx(fg, cv2.MORPH_CLOSE, _disk(max(2, size // 80)))
    return _finish(fg, max(1, size // 150))


def _border_flood_mask(image: np.ndarray, tolerance: float) -> tuple[np.ndarray, np.ndarray]:
    """Method 2: grow the background from the border through pixels close to the border colour, stopped by edges.

    Low-contrast garments (white on white) are outlined by faint shading that a global colour threshold misses but a
    flood fill, which only needs a closed rim of slightly different pixels, respects. Edges are dilated so small gaps
    in the rim do not let the fill leak in.
    """
    size = min(image.shape[:2])
    background, _ = estimate_background(image)
    smooth = cv2.GaussianBlur(image, (0, 0), max(0.8, size / 500))
    lab = cv2.cvtColor(smooth, cv2.COLOR_RGB2LAB).astype(np.float32)
    near_bg = _squared_distance(lab, background) <= tolerance**2
    gray = cv2.cvtColor(smooth, cv2.COLOR_RGB2GRAY)
    edges = cv2.Canny(gray, 8, 24)
    edges = cv2.dilate(edges, _disk(max(1, size // 250))) > 0
    passable = (near_bg & ~edges).astype(np.uint8)
    height, width = passable.shape
    count, labels = cv2.connectedComponents(passable, connectivity=4)
    border_labels = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    border_labels = border_labels[border_labels > 0]
    background_region = np.isin(labels, border_labels)
    # Give back the dilated rim to the background side where it is background-coloured.
    background_region = cv2.dilate(background_region.astype(np.uint8), _disk(max(1, size // 250))) > 0
    background_region &= near_bg | (labels > 0)
    fg = (~background_region).astype(np.uint8)
    fg = cv2.morphologyEx(fg, cv2.MORPH_OPEN, _disk(max(1, size // 200)))
    del count, height, width
    return _finish(fg, max(1, size // 150))


def _grabcut_mask(image: np.ndarray, seed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Method 3: GrabCut initialised from a rough mask (probable foreground) and the border (sure background)."""
    size = min(image.shape[:2])
    labels = np.full(image.shape[:2], cv2.GC_PR_BGD, np.uint8)
    rough = seed > 0
    labels[rough] = cv2.GC_PR_FGD
    core = cv2.erode(rough.astype(np.uint8), _disk(max(2, size // 40))) > 0
    labels[core] = cv2.GC_FGD
    b = max(2, size // 100)
    labels[:b], labels[-b:], labels[:, :b], labels[:, -b:] = cv2.GC_BGD, cv2.GC_BGD, cv2.GC_BGD, cv2.GC_BGD
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    cv2.grabCut(cv2.cvtColor(image, cv2.COLOR_RGB2BGR), labels, None, bgd, fgd, 3, cv2.GC_INIT_WITH_MASK)
    fg = np.isin(labels, (cv2.GC_FGD, cv2.GC_PR_FGD)).astype(np.uint8)
    return _finish(fg, max(1, size // 150))


def segment_garment(
    image: np.ndarray,
    *,
    color_threshold: float = 12.0,
    working_size: int = 512,
    strict: bool = True,
) -> GarmentSegmentation:
    """Garment mask of a product photo with sanity checks and fallbacks.

    Methods, in order, each kept only if it passes `check_garment_mask`: (1) colour distance to the border colour +
    edges + morphology; (2) flood fill of the background from the border, stopped by (faint) edges — for low-contrast
    garments; (3) GrabCut seeded by the best of the two. When none passes: with `strict`, `NoGarmentDetectedError`
    if the best mask is not even a plausible area, otherwise the mask with the fewest failed rules and a warning
    that says what to do.

    Args:
        image: `(H, W, 3)` uint8 RGB product photo (garment roughly centred, background touching the border).
        color_threshold: minimal Lab distance to the background colour counted as garment (method 1).
        working_size: segmentation runs at this longest side; the mask is upsampled to the photo.
        strict: raise instead of warning when every method fails the area rule.
    Raises:
        InvalidImageError: not an `(H, W, 3)` uint8 array.
        NoGarmentDetectedError: nothing separable from the background.
    """
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise InvalidImageError(f"garment masks need an (H, W, 3) uint8 RGB image, got {image.shape} {image.dtype}")
    height, width = image.shape[:2]
    small = _resize_for_work(image, working_size)
    candidates: list[tuple[str, np.ndarray, MaskChecks]] = []

    def attempt(name: str, result: tuple[np.ndarray, np.ndarray]) -> bool:
        mask, holes = result
        checks = check_garment_mask(mask, holes)
        candidates.append((name, mask, checks))
        return checks.ok

    done = attempt("colour+edges", _colour_edge_mask(small, color_threshold))
    if not done:
        done = attempt("border flood fill", _border_flood_mask(small, tolerance=max(3.0, color_threshold / 3)))
    if not done:
        seed = max(candidates, key=lambda c: (-len(c[2].failures), c[2].symmetry))[1]
        if seed.any():
            done = attempt("grabcut", _grabcut_mask(small, seed))
    best = min(candidates, key=lambda c: (len(c[2].failures), -c[2].symmetry))
    name, mask, checks = candidates[-1] if done else best
    notes: list[str] = []
    if not done:
        area_failed = not MIN_AREA_FRACTION <= checks.area_fraction <= MAX_AREA_FRACTION
        advice = (
            "photograph the garment flat on a plain background that contrasts with it, not touching the frame, or "
            "pass `garment_front_mask` / `garment_back_mask` (white = garment)"
        )
        if strict and area_failed:
            raise NoGarmentDetectedError(
                f"no garment found in the product photo (best mask {name}: {'; '.join(checks.failures)}): {advice}."
            )
        notes.append(f"garment mask is unreliable ({name}: {'; '.join(checks.failures)}): {advice}")
    elif name != "colour+edges":
        logger.info("garment mask from the fallback method %s", name)
    if mask.shape != (height, width):
        mask = cv2.resize(mask.astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR) > 0.5
    return GarmentSegmentation(np.asarray(mask, dtype=np.float32), name, checks, notes)


def garment_mask(
    image: np.ndarray,
    *,
    color_threshold: float = 12.0,
    min_area_fraction: float = MIN_AREA_FRACTION,
    max_area_fraction: float = MAX_AREA_FRACTION,
    working_size: int = 512,
) -> np.ndarray:
    """Foreground mask of a garment product photo on a plain or near-plain background (`segment_garment`'s mask).

    Args:
        image: `(H, W, 3)` uint8 RGB product photo.
        color_threshold: minimal Lab distance to the background colour counted as garment.
        min_area_fraction, max_area_fraction: plausible garment area range; outside it the photo is rejected.
        working_size: segmentation runs at this longest side.
    Returns:
        `(H, W)` float32 in {0, 1}, one connected component without holes.
    Raises:
        NoGarmentDetectedError: nothing separable from the background (or the whole photo is "garment").
    """
    result = segment_garment(image, color_threshold=color_threshold, working_size=working_size, strict=True)
    area = float(result.mask.mean())
    if not min_area_fraction <= area <= max_area_fraction:
        raise NoGarmentDetectedError(
            f"no garment found (foreground covers {area:.1%} of the photo): use a product photo of the garment on a "
            "plain background, filling a good part of the frame, or pass the garment mask yourself."
        )
    for note in result.warnings:
        logger.warning(note)
    return result.mask


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
    # Long sleeves hanging beside the body merge with it at 75 % height; near the hem they have ended, so the hem
    # run bounds the torso when it is clearly narrower.
    hem_spans = [_row_span(m, int(top + f * gh), x_mid) for f in (0.9, 0.93, 0.96)]
    hem_spans = [s for s in hem_spans if s is not None and s[1] - s[0] > 0.4 * (t_right - t_left)]
    if hem_spans:
        h_left, h_right = int(np.median([s[0] for s in hem_spans])), int(np.median([s[1] for s in hem_spans]))
        if h_right - h_left < 0.85 * (t_right - t_left):
            t_left, t_right = max(t_left, h_left), min(t_right, h_right)
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

    tolerance = max(1, int(0.03 * (t_right - t_left)))
    column = np.arange(m.shape[1])[None, :]

    def sleeve_end(extreme: int, side: int, shoulder: np.ndarray) -> np.ndarray:
        # The cuff: in the part of the mask beside the torso band (the sleeve that starts near the shoulders), the
        # pixels farthest from the shoulder. Long sleeves hang down, so the extreme column alone stops at the elbow.
        beside = m & ((column < t_left - tolerance) if side < 0 else (column > t_right + tolerance))
        count, labels, stats, _ = cv2.connectedComponentsWithStats(beside.astype(np.uint8), connectivity=8)
        upper = [k for k in range(1, count) if stats[k, cv2.CC_STAT_TOP] < top + 0.4 * gh]
        if not upper:
            cols = slice(extreme, extreme + band + 1) if side < 0 else slice(max(0, extreme - band), extreme + 1)
            rows = np.flatnonzero(m[:, cols].any(axis=1))
            return np.array([extreme, float(np.median(rows))], dtype=np.float32)
        best = max(upper, key=lambda k: stats[k, cv2.CC_STAT_AREA])
        py, px = np.nonzero(labels == best)
        distance = np.hypot(px - shoulder[0], py - shoulder[1])
        far = distance >= 0.92 * distance.max()
        return np.array([float(px[far].mean()), float(py[far].mean())], dtype=np.float32)

    if has_sleeves:
        sleeve_l, sleeve_r = sleeve_end(left, -1, shoulder_l), sleeve_end(right, +1, shoulder_r)
    else:  # sleeveless: the armhole bottom, just below the shoulder
        drop = 0.3 * gh
        sleeve_l = np.array([t_left, min(bottom, shoulder_l[1] + drop)], dtype=np.float32)
        sleeve_r = np.array([t_right, min(bottom, shoulder_r[1] + drop)], dtype=np.float32)
    # Hem corners: extreme columns of the run through the axis, a little above the lowest row.
    hem_row = int(bottom - 0.03 * gh)
    span = _row_span(m, hem_row, x_mid)
    if span is None or span[1] - span[0] < 0.5 * (t_right - t_left):  # a ragged or rounded hem: go up a little
        hem_row = int(bottom - 0.08 * gh)
        span = _row_span(m, hem_row, x_mid) or (t_left, t_right)
    hem_l = np.array([span[0], hem_row], dtype=np.float32)
    hem_r = np.array([span[1], hem_row], dtype=np.float32)
    return GarmentLandmarks(neck, shoulder_l, shoulder_r, sleeve_l, sleeve_r, hem_l, hem_r, bool(has_sleeves))


# Sleeve reach (shoulder → sleeve end) per shoulder width separating short from long sleeves.
LONG_SLEEVE_REACH = 1.05


def sleeve_length(landmarks: GarmentLandmarks) -> str:
    """Sleeve length ("sleeveless", "short" or "long") from the landmarks: sleeve reach (shoulder → cuff, mean of both sides) over
    the shoulder width; "long" from `LONG_SLEEVE_REACH` (3/4 sleeves count as long: they cover the forearm)."""
    if not landmarks.has_sleeves:
        return "sleeveless"
    width = float(np.hypot(*(landmarks.shoulder_image_right - landmarks.shoulder_image_left)))
    reach = np.mean([
        np.hypot(*(landmarks.sleeve_image_left - landmarks.shoulder_image_left)),
        np.hypot(*(landmarks.sleeve_image_right - landmarks.shoulder_image_right)),
    ])  # fmt: skip
    return "long" if reach / max(width, 1e-6) >= LONG_SLEEVE_REACH else "short"


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
