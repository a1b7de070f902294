"""Panel rendering of the pipeline's intermediates: what each panel keeps, tints or drops, on hand-made arrays."""

from __future__ import annotations

import numpy as np
import PIL.Image

from mvvton.ui.intermediates import (
    MASK_TINT,
    PANEL_LABELS,
    as_rgb,
    as_unit_mask,
    garment_cutout,
    mask_overlay,
    pose_overlay,
    render_panels,
    routing_summary,
)

H, W = 16, 12


def _person() -> np.ndarray:
    return np.full((H, W, 3), 200, dtype=np.uint8)


def _mask() -> np.ndarray:
    mask = np.zeros((H, W), dtype=np.float32)
    mask[4:12, 3:9] = 1.0
    return mask


def test_conversions_accept_pil_uint8_and_float():
    gray = PIL.Image.fromarray(np.full((H, W), 255, dtype=np.uint8), mode="L")
    assert as_rgb(gray).shape == (H, W, 3) and as_rgb(gray).dtype == np.uint8
    assert as_rgb(np.full((H, W, 3), 0.5, dtype=np.float32))[0, 0].tolist() == [128, 128, 128]
    np.testing.assert_allclose(as_unit_mask(gray), 1.0)
    np.testing.assert_allclose(as_unit_mask((_mask() * 255).astype(np.uint8)), _mask())
    np.testing.assert_allclose(as_unit_mask(np.full((H, W), 3.0)), 1.0)  # clipped into [0, 1]


def test_pose_overlay_draws_limbs_over_the_dimmed_person():
    skeleton = np.zeros((H, W, 3), dtype=np.uint8)
    skeleton[8, :] = (255, 0, 85)  # one horizontal limb
    out = pose_overlay(_person(), skeleton)
    assert out[8].tolist() == [[255, 0, 85]] * W  # the limb is drawn as rendered
    assert out[0, 0].tolist() == [120, 120, 120]  # elsewhere the person at 60 %


def test_mask_overlay_tints_only_the_regenerated_region():
    out = mask_overlay(_person(), _mask())
    assert out[0, 0].tolist() == [200, 200, 200]
    inside = out[6, 5].astype(np.float32)
    assert inside[0] > inside[1] and inside[0] > inside[2]  # red
    np.testing.assert_allclose(inside, 200 * 0.45 + MASK_TINT * 0.55, atol=1)


def test_garment_cutout_keeps_the_masked_garment():
    garment = np.zeros((H, W, 3), dtype=np.uint8)
    garment[..., 2] = 250
    out = garment_cutout(garment, _mask())
    assert out[6, 5].tolist() == [0, 0, 250] and out[0, 0].tolist() == [48, 48, 48]


def test_render_panels_from_a_full_sample_and_with_missing_parts():
    info = {
        "person": _person(),
        "person_skeleton": np.zeros((H, W, 3), dtype=np.uint8),
        "inpaint_mask": _mask(),
        "garment_front": _person(),
        "garment_back": _person(),
        "garment_front_mask": _mask(),
        "garment_back_mask": _mask(),
        "warped_composite": PIL.Image.fromarray(_person()),
    }
    panels = render_panels(info)
    assert list(panels) == list(PANEL_LABELS)
    assert panels["garment_masks"].shape == (H, 2 * W + 2, 3)  # front | gap | back
    assert all(panel.dtype == np.uint8 and panel.shape[0] == H for panel in panels.values())
    sparse = render_panels({"person": _person(), "warped_composite": _person()})
    assert sparse["prewarp"] is not None and sparse["pose_overlay"] is None and sparse["garment_masks"] is None


def test_routing_summary_says_where_the_view_came_from():
    info = {"person_view": "side", "routed_garment": "back", "warnings": ["no back photo: front reused"]}
    detected = routing_summary(info, "auto")
    assert "side (detected from the pose)" in detected and "**back** photo" in detected
    assert "no back photo: front reused" in detected
    assert "side (set by you)" in routing_summary(info, "side")
