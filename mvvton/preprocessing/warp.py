"""Thin-plate-spline pre-warp of the routed garment onto the person (numpy TPS, `cv2.remap` sampling).

MV-VTON needs a pre-warped garment pasted into the agnostic person: it fills the UNet's masked-image channels and the
start latent x_T (mvvton-spec §1, §7). The original used PF-AFN / GP-VTON / StableVITON; this is a model-free stand-in
driven by keypoint correspondences (garment skeleton → person skeleton).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from mvvton.constants import COCO18_INDEX, NUM_KEYPOINTS
from mvvton.errors import InsufficientPoseError

_MIN_CONF = 0.1


def _tps_kernel(r2: np.ndarray) -> np.ndarray:
    """U(r) = r² log r², written on squared distances; U(0) = 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        out = r2 * np.log(r2)
    return np.nan_to_num(out, nan=0.0, posinf=0.0, neginf=0.0)


@dataclass
class ThinPlateSpline:
    """A 2-D thin-plate spline f: R² → R², `f(p) = A·[1, x, y] + Σ_i w_i U(|p − c_i|)`.

    Attributes:
        centers: `(N, 2)` control points (source space).
        weights: `(N, 2)` non-affine weights.
        affine: `(3, 2)` affine part.
    """

    centers: np.ndarray
    weights: np.ndarray
    affine: np.ndarray

    @classmethod
    def fit(cls, source: np.ndarray, target: np.ndarray, regularization: float = 0.0) -> ThinPlateSpline:
        """Fit f with f(source_i) ≈ target_i (exact when `regularization` is 0).

        Args:
            source, target: `(N, 2)` float point sets, N ≥ 3 and not all collinear (N < 3 falls back to a similarity
                / translation).
            regularization: λ added to the kernel diagonal (smoother, no longer interpolating).
        """
        src = np.asarray(source, dtype=np.float64).reshape(-1, 2)
        dst = np.asarray(target, dtype=np.float64).reshape(-1, 2)
        if src.shape != dst.shape or src.shape[0] == 0:
            raise ValueError(f"source and target must be matching (N, 2) arrays, got {src.shape} and {dst.shape}")
        n = src.shape[0]
        if n < 3:
            affine = np.zeros((3, 2))
            affine[1, 0] = affine[2, 1] = 1.0
            if n == 2:  # similarity from two points
                vs, vd = src[1] - src[0], dst[1] - dst[0]
                denom = max(float(vs @ vs), 1e-12)
                a = float(vs @ vd) / denom
                b = float(vs[0] * vd[1] - vs[1] * vd[0]) / denom
                rot = np.array([[a, b], [-b, a]])  # row-vector convention: p @ rot
                affine[1:] = rot
                affine[0] = dst[0] - src[0] @ rot
            else:
                affine[0] = dst[0] - src[0]
            return cls(src, np.zeros((n, 2)), affine)
        d2 = ((src[:, None, :] - src[None, :, :]) ** 2).sum(-1)
        kernel = _tps_kernel(d2) + regularization * np.eye(n)
        poly = np.hstack([np.ones((n, 1)), src])
        system = np.zeros((n + 3, n + 3))
        system[:n, :n] = kernel
        system[:n, n:] = poly
        system[n:, :n] = poly.T
        rhs = np.zeros((n + 3, 2))
        rhs[:n] = dst
        solution = np.linalg.lstsq(system, rhs, rcond=None)[0]
        return cls(src, solution[:n], solution[n:])

    def __call__(self, points: np.ndarray) -> np.ndarray:
        """Map `(..., 2)` points → `(..., 2)` float64."""
        pts = np.asarray(points, dtype=np.float64)
        flat = pts.reshape(-1, 2)
        out = self.affine[0] + flat @ self.affine[1:]
        if self.weights.any():
            d2 = ((flat[:, None, :] - self.centers[None, :, :]) ** 2).sum(-1)
            out = out + _tps_kernel(d2) @ self.weights
        return out.reshape(pts.shape)


def _point(kp: np.ndarray, name: str) -> np.ndarray | None:
    row = kp[COCO18_INDEX[name]]
    return row[:2].astype(np.float64) if row[2] > _MIN_CONF else None


def _along(chain: list[np.ndarray], length: float) -> np.ndarray:
    """The point at arc length `length` along a polyline (extrapolating past its end)."""
    for a, b in zip(chain[:-1], chain[1:]):
        seg = float(np.hypot(*(b - a)))
        if length <= seg or b is chain[-1]:
            return a + (b - a) * (length / max(seg, 1e-6))
        length -= seg
    return chain[-1]


def correspondences(garment_keypoints: np.ndarray, person_keypoints: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Matched control points (garment → person) for the TPS.

    Neck, shoulders and hem corners (→ hips, extended along the torso by the garment's own length ratio) map by name;
    sleeve ends (garment "elbows") are placed along the person's shoulder → elbow → wrist chain at the garment's sleeve
    length scaled to the person, so short sleeves stay short. Left/right come from the skeletons themselves: the back
    product photo's skeleton is already mirrored (`GarmentLandmarks.to_openpose`), matching a back-view person.

    Returns:
        `(garment_points (N, 2), person_points (N, 2))` float64 pixels.
    """
    g = np.asarray(garment_keypoints, dtype=np.float32)
    p = np.asarray(person_keypoints, dtype=np.float32)
    for kp in (g, p):
        if kp.shape != (NUM_KEYPOINTS, 3):
            raise ValueError(f"keypoints must have shape ({NUM_KEYPOINTS}, 3), got {kp.shape}")
    src: list[np.ndarray] = []
    dst: list[np.ndarray] = []
    g_rs, g_ls = _point(g, "right_shoulder"), _point(g, "left_shoulder")
    p_rs, p_ls = _point(p, "right_shoulder"), _point(p, "left_shoulder")
    # Scale garment px → person px from torso length (robust to side views, where shoulder width collapses).
    g_neck, p_neck = _point(g, "neck"), _point(p, "neck")
    if p_neck is None and (p_rs is None) != (p_ls is None):  # profile with one shoulder hidden: anchor on the other
        p_neck = p_rs if p_rs is not None else p_ls
    g_hips = [x for x in (_point(g, "right_hip"), _point(g, "left_hip")) if x is not None]
    p_hips = [x for x in (_point(p, "right_hip"), _point(p, "left_hip")) if x is not None]
    scale = 1.0
    p_torso = 0.0
    scale_x: float | None = None  # horizontal scale from shoulder widths (collapses for profile views, as it should)
    if g_rs is not None and g_ls is not None and p_rs is not None and p_ls is not None:
        scale = scale_x = float(np.hypot(*(p_rs - p_ls))) / max(float(np.hypot(*(g_rs - g_ls))), 1e-6)
    if g_neck is not None and p_neck is not None and g_hips and p_hips:
        g_len = float(np.hypot(*(np.mean(g_hips, 0) - g_neck)))
        p_len = p_torso = float(np.hypot(*(np.mean(p_hips, 0) - p_neck)))
        torso_scale = p_len / max(g_len, 1e-6) * 1.1  # garments usually end a bit below the hip joints
        scale = torso_scale if p_rs is None or p_ls is None else max(scale, 0.5 * torso_scale)
    if g_neck is not None and p_neck is not None:
        src.append(g_neck)
        dst.append(p_neck)
    profile = p_torso > 0 and (
        p_rs is None or p_ls is None or abs(float(p_ls[0] - p_rs[0])) < 0.3 * p_torso
    )  # side view: one shoulder hidden or both on top of each other
    if profile and p_neck is not None:
        _profile_targets(g, p_neck, p_hips, p_torso, src, dst)
    else:
        _frontal_targets(g, p, scale, scale_x, p_torso, src, dst)
    if not src:
        raise InsufficientPoseError(
            "the garment warp needs the neck or a shoulder visible in both the person photo and the garment photo, "
            "and none was found; use a person photo that shows the shoulders, or pass `warped_garment` yourself"
        )
    src_arr, dst_arr = np.array(src), np.array(dst)
    # Drop targets that collapse onto another one (e.g. both shoulders of a profile view): they would fold the warp.
    keep = [0]
    for i in range(1, len(dst_arr)):
        if np.min(np.hypot(*(dst_arr[keep] - dst_arr[i]).T)) > 2.0:
            keep.append(i)
    return src_arr[keep], dst_arr[keep]


def _frontal_targets(
    g: np.ndarray,
    p: np.ndarray,
    scale: float,
    scale_x: float | None,
    p_torso: float,
    src: list[np.ndarray],
    dst: list[np.ndarray],
) -> None:
    """Shoulders by name; sleeve ends along the arm chain; hem corners around the (extended) hip line."""
    for side in ("right", "left"):
        g_sh, p_sh = _point(g, f"{side}_shoulder"), _point(p, f"{side}_shoulder")
        if g_sh is None or p_sh is None:
            continue
        src.append(g_sh)
        dst.append(p_sh)
        g_sleeve = _point(g, f"{side}_elbow")
        p_chain = [x for x in (p_sh, _point(p, f"{side}_elbow"), _point(p, f"{side}_wrist")) if x is not None]
        if g_sleeve is not None and len(p_chain) >= 2:
            length = float(np.hypot(*(g_sleeve - g_sh))) * scale
            src.append(g_sleeve)
            dst.append(_along(p_chain, length))
    # Hem corners: vertical position from the shoulder→hip line stretched by the garment's own length ratio, centred
    # on the hips; half-width from the garment's hem width scaled like its shoulders (hip joints lie inside the body
    # outline, so at least 1.1 × the hip half-distance).
    names = ("right_shoulder", "left_shoulder", "right_hip", "left_hip")
    g_pts = [_point(g, n) for n in names]
    p_pts = [_point(p, n) for n in names]
    if any(x is None for x in g_pts + p_pts):
        return
    g_rs, g_ls, g_rh, g_lh = g_pts
    p_rs, p_ls, p_rh, p_lh = p_pts
    p_top, p_bottom = (p_rs + p_ls) / 2, (p_rh + p_lh) / 2
    g_drop = float(np.hypot(*((g_rh + g_lh) / 2 - (g_rs + g_ls) / 2))) * scale
    p_drop = float(np.hypot(*(p_bottom - p_top)))
    ratio = float(np.clip(g_drop / max(p_drop, 1e-6), 0.85, 1.3))
    center = p_top + (p_bottom - p_top) * ratio
    axis = p_lh - p_rh
    p_half = float(np.hypot(*axis)) / 2
    axis = axis / max(2 * p_half, 1e-6)
    width_scale = scale_x if scale_x is not None else scale
    half = max(float(np.hypot(*(g_lh - g_rh))) / 2 * width_scale, 1.1 * p_half, 0.2 * p_torso)
    src.extend([g_rh, g_lh])
    dst.extend([center - axis * half, center + axis * half])


def _profile_targets(
    g: np.ndarray, p_neck: np.ndarray, p_hips: list[np.ndarray], p_torso: float, src: list[np.ndarray],
    dst: list[np.ndarray],
) -> None:
    """Side view: the garment is squeezed to the body's depth (≈ 0.6 × torso length), keeping its left/right order."""
    g_rs, g_ls = _point(g, "right_shoulder"), _point(g, "left_shoulder")
    g_rh, g_lh = _point(g, "right_hip"), _point(g, "left_hip")
    half = 0.3 * p_torso
    sign = 1.0 if g_rs is None or g_ls is None or g_ls[0] >= g_rs[0] else -1.0
    axis = np.array([sign, 0.0])
    hip_mid = np.mean(p_hips, axis=0) if p_hips else p_neck + np.array([0.0, p_torso])
    hem_center = p_neck + (hip_mid - p_neck) * 1.05
    drop = 0.08 * p_torso
    for g_pt, target in (
        (g_rs, p_neck - axis * half + [0.0, drop]),
        (g_ls, p_neck + axis * half + [0.0, drop]),
        (g_rh, hem_center - axis * half),
        (g_lh, hem_center + axis * half),
    ):
        if g_pt is not None:
            src.append(g_pt)
            dst.append(target)


def warp_garment(
    garment: np.ndarray,
    garment_mask: np.ndarray,
    garment_keypoints: np.ndarray,
    person_keypoints: np.ndarray,
    output_size: tuple[int, int],
    *,
    clip_mask: np.ndarray | None = None,
    regularization: float = 1e-3,
) -> tuple[np.ndarray, np.ndarray]:
    """Warp a garment image + mask onto the person's pose with a thin-plate spline.

    The TPS is fitted backwards (person → garment) so every output pixel samples the garment with `cv2.remap`.

    Args:
        garment: `(h, w, 3)` uint8 RGB garment image (the routed view).
        garment_mask: `(h, w)` {0, 1}.
        garment_keypoints: `(18, 3)` canonical garment skeleton of that view, garment pixels.
        person_keypoints: `(18, 3)` person keypoints in output pixels.
        output_size: `(height, width)` of the person canvas.
        clip_mask: optional `(height, width)` {0, 1} region the garment may occupy (the agnostic mask).
        regularization: TPS smoothing λ.
    Returns:
        `(warped (height, width, 3) uint8 RGB, white outside the garment; warped_mask (height, width) float32 {0, 1})`.
    """
    height, width = output_size
    src, dst = correspondences(garment_keypoints, person_keypoints)
    backward = ThinPlateSpline.fit(dst, src, regularization=regularization)
    # Evaluate on a coarse grid and interpolate bilinearly: the spline is smooth, so the error is sub-pixel.
    step = 4
    gy, gx = np.mgrid[0 : height + step : step, 0 : width + step : step].astype(np.float64)
    coarse = backward(np.stack([gx, gy], axis=-1))
    map_x, map_y = _exact_maps(coarse, step, height, width)
    warped = cv2.remap(garment, map_x, map_y, interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                       borderValue=(255, 255, 255))  # fmt: skip
    mask = cv2.remap(np.asarray(garment_mask, dtype=np.float32), map_x, map_y, interpolation=cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_CONSTANT, borderValue=0)  # fmt: skip
    mask = (mask > 0.5).astype(np.float32)
    if clip_mask is not None:
        mask *= (np.asarray(clip_mask) > 0.5).astype(np.float32)
    warped = np.where(mask[..., None] > 0, warped, np.uint8(255)).astype(np.uint8)
    return warped, mask


def _exact_maps(coarse: np.ndarray, step: int, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Bilinear interpolation of a grid sampled every `step` px (grid node k at pixel k·step) → full-res maps."""
    ys = np.arange(height, dtype=np.float64) / step
    xs = np.arange(width, dtype=np.float64) / step
    y0 = np.floor(ys).astype(int)
    x0 = np.floor(xs).astype(int)
    fy = (ys - y0)[:, None, None]
    fx = (xs - x0)[None, :, None]
    y1 = np.minimum(y0 + 1, coarse.shape[0] - 1)
    x1 = np.minimum(x0 + 1, coarse.shape[1] - 1)
    top = coarse[y0][:, x0] * (1 - fx) + coarse[y0][:, x1] * fx
    bottom = coarse[y1][:, x0] * (1 - fx) + coarse[y1][:, x1] * fx
    full = top * (1 - fy) + bottom * fy
    return full[..., 0].astype(np.float32), full[..., 1].astype(np.float32)


def warped_composite(agnostic: np.ndarray, warped: np.ndarray, warped_mask: np.ndarray) -> np.ndarray:
    """`agnostic * (1 - warped_mask) + warped * warped_mask` — the image for MV-VTON's masked-image channels / x_T.

    Args:
        agnostic: `(H, W, 3)` uint8; warped: `(H, W, 3)` uint8; warped_mask: `(H, W)` in [0, 1].
    Returns:
        `(H, W, 3)` uint8 RGB.
    """
    m = np.asarray(warped_mask, dtype=np.float32)[..., None]
    out = np.asarray(agnostic, dtype=np.float32) * (1.0 - m) + np.asarray(warped, dtype=np.float32) * m
    return np.round(out).astype(np.uint8)
