"""Turn one sample's pipeline intermediates (`return_intermediates=True`) into the page's panel images and text.

Pure numpy: no gradio here, so the rendering is testable on its own. Every panel is `(H, W, 3)` uint8 RGB at the
pipeline's working size.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image

# panel name -> label shown in the page (the order of the panels in the intermediates accordion)
PANEL_LABELS: dict[str, str] = {
    "pose_overlay": "pose (OpenPose-18 skeleton)",
    "inpaint_mask": "inpaint mask (red = regenerated)",
    "garment_masks": "garment masks (front | back)",
    "prewarp": "pre-warp (routed garment)",
}
MASK_TINT = np.array([230, 40, 40], dtype=np.float32)  # red over the regenerated region
MASK_ALPHA = 0.55
OUTSIDE_MASK_GRAY = 48.0  # garment pixels outside their mask are shown this dark


def as_rgb(value: Any) -> np.ndarray:
    """PIL image or array (uint8 or float in [0, 1], `(H, W)` or `(H, W, 3)`) -> `(H, W, 3)` uint8."""
    array = np.asarray(value.convert("RGB") if isinstance(value, Image.Image) else value)
    if array.dtype != np.uint8:
        array = np.round(np.clip(array.astype(np.float32), 0.0, 1.0) * 255.0).astype(np.uint8)
    if array.ndim == 2:
        array = np.repeat(array[..., None], 3, axis=2)
    return array


def as_unit_mask(value: Any) -> np.ndarray:
    """Mask as PIL `L`, uint8 {0..255} or float in [0, 1] -> `(H, W)` float32 in [0, 1]."""
    array = np.asarray(value.convert("L") if isinstance(value, Image.Image) else value)
    if array.ndim == 3:
        array = array[..., 0]
    if array.dtype == np.uint8:
        return array.astype(np.float32) / 255.0
    return np.clip(array.astype(np.float32), 0.0, 1.0)


def pose_overlay(person: Any, skeleton: Any) -> np.ndarray:
    """Skeleton render (colored limbs on black) drawn over the dimmed person photo."""
    person, skeleton = as_rgb(person), as_rgb(skeleton)
    drawn = skeleton.max(axis=2, keepdims=True) > 24  # (H, W, 1): JPEG-safe "not black"
    dimmed = person.astype(np.float32) * 0.6
    return np.where(drawn, skeleton, dimmed).astype(np.uint8)


def mask_overlay(person: Any, mask: Any) -> np.ndarray:
    """The person with the regenerated region (mask = 1) tinted red."""
    person = as_rgb(person).astype(np.float32)
    weight = as_unit_mask(mask)[..., None] * MASK_ALPHA  # (H, W, 1)
    return np.round(person * (1 - weight) + MASK_TINT * weight).astype(np.uint8)


def garment_cutout(garment: Any, mask: Any) -> np.ndarray:
    """The garment photo where its mask is 1, dark gray elsewhere: shows what the mask kept."""
    garment = as_rgb(garment).astype(np.float32)
    weight = as_unit_mask(mask)[..., None]  # (H, W, 1)
    return np.round(garment * weight + OUTSIDE_MASK_GRAY * (1 - weight)).astype(np.uint8)


def side_by_side(images: list[np.ndarray], gap: int = 2) -> np.ndarray:
    """Equal-height `(H, W_i, 3)` uint8 images joined left to right with a white gap."""
    height = images[0].shape[0]
    spacer = np.full((height, gap, 3), 255, dtype=np.uint8)
    parts = []
    for index, image in enumerate(images):
        parts.extend([spacer, image] if index else [image])
    return np.concatenate(parts, axis=1)


def render_panels(info: dict[str, Any]) -> dict[str, np.ndarray | None]:
    """One sample's intermediates -> `PANEL_LABELS` name -> `(H, W, 3)` uint8 image (None when not available)."""
    person = info.get("person")
    panels: dict[str, np.ndarray | None] = dict.fromkeys(PANEL_LABELS)
    if person is not None and info.get("person_skeleton") is not None:
        panels["pose_overlay"] = pose_overlay(person, info["person_skeleton"])
    if person is not None and info.get("inpaint_mask") is not None:
        panels["inpaint_mask"] = mask_overlay(person, info["inpaint_mask"])
    cutouts = [
        garment_cutout(info[garment], info[f"{garment}_mask"])
        for garment in ("garment_front", "garment_back")
        if info.get(garment) is not None and info.get(f"{garment}_mask") is not None
    ]
    if cutouts:
        panels["garment_masks"] = side_by_side(cutouts)
    if info.get("warped_composite") is not None:
        panels["prewarp"] = as_rgb(info["warped_composite"])
    return panels


def routing_summary(info: dict[str, Any], requested_view: str, notes: list[str] | None = None) -> str:
    """Markdown: the person view (detected or given), the routed garment photo, the preprocessor's warnings and
    the caller's `notes`."""
    person_view, routed = info.get("person_view", "?"), info.get("routed_garment", "?")
    source = "detected from the pose" if requested_view == "auto" else "set by you"
    lines = [
        f"**Person view:** {person_view} ({source})",
        f"**Routed garment:** the **{routed}** photo feeds the global (CLIP) branch; both photos feed the local "
        "garment attention, mixed by pose.",
    ]
    lines += [f"**Warning:** {note}" for note in [*info.get("warnings", []), *(notes or [])]]
    return "  \n".join(lines)
