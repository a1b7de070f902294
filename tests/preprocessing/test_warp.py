import cv2
import numpy as np
import pytest

from mvvton.constants import COCO18_INDEX as I
from mvvton.errors import InsufficientPoseError
from mvvton.preprocessing.garment import garment_keypoints
from mvvton.preprocessing.masks import upper_body_agnostic_mask
from mvvton.preprocessing.person import person_mask_from_keypoints, with_estimated_hips
from mvvton.preprocessing.warp import (
    ThinPlateSpline,
    body_warp_garment,
    correspondences,
    warp_garment,
    warped_composite,
)

from .conftest import synthetic_keypoints
from .test_garment import _tshirt_mask


def test_tps_interpolates_control_points():
    rng = np.random.default_rng(0)
    src = rng.uniform(0, 300, (9, 2))
    dst = src + rng.normal(0, 15, (9, 2))
    tps = ThinPlateSpline.fit(src, dst)
    np.testing.assert_allclose(tps(src), dst, atol=1e-6)
    assert tps(src[None]).shape == (1, 9, 2)
    smooth = ThinPlateSpline.fit(src, dst, regularization=1e4)
    assert np.abs(smooth(src) - dst).max() > 1e-3  # regularised: no longer exact


def test_tps_reproduces_affine_maps_exactly():
    rng = np.random.default_rng(1)
    src = rng.uniform(0, 100, (6, 2))
    matrix = np.array([[1.2, 0.3], [-0.2, 0.9]])
    shift = np.array([5.0, -7.0])
    tps = ThinPlateSpline.fit(src, src @ matrix + shift)
    probe = rng.uniform(-50, 150, (50, 2))
    np.testing.assert_allclose(tps(probe), probe @ matrix + shift, atol=1e-6)
    np.testing.assert_allclose(tps.weights, 0, atol=1e-8)


def test_tps_few_points():
    one = ThinPlateSpline.fit([[1.0, 2.0]], [[4.0, 6.0]])
    np.testing.assert_allclose(one([[10.0, 10.0]]), [[13.0, 14.0]])
    two = ThinPlateSpline.fit([[0.0, 0.0], [1.0, 0.0]], [[0.0, 0.0], [0.0, 2.0]])  # rotate 90 deg, scale 2
    np.testing.assert_allclose(two([[0.0, 1.0]]), [[-2.0, 0.0]], atol=1e-9)
    with pytest.raises(ValueError):
        ThinPlateSpline.fit(np.zeros((3, 2)), np.zeros((4, 2)))


def _garment():
    mask = _tshirt_mask().astype(np.float32)
    image = np.full((400, 400, 3), 255, np.uint8)
    image[mask > 0] = (200, 30, 30)
    image[mask > 0, 2] = np.tile(np.arange(400) // 2, (400, 1))[mask > 0].astype(np.uint8)  # x-gradient in blue
    return image, mask


def _affine_det(garment_kp, person_kp):
    src, dst = correspondences(garment_kp, person_kp)
    tps = ThinPlateSpline.fit(src, dst)
    return np.linalg.det(tps.affine[1:])


def test_left_right_handled_for_back_views():
    _, mask = _garment()
    front_g, back_g = garment_keypoints(mask, "front"), garment_keypoints(mask, "back")
    front_p, back_p = synthetic_keypoints("front"), synthetic_keypoints("back")
    # Matching views: no mirroring. A front garment forced onto a back-view person would be flipped.
    assert _affine_det(front_g, front_p) > 0
    assert _affine_det(back_g, back_p) > 0
    assert _affine_det(front_g, back_p) < 0


def test_warp_garment_maps_keypoints_and_clips():
    image, mask = _garment()
    g_kp = garment_keypoints(mask, "front")
    p_kp = synthetic_keypoints("front")
    clip = np.zeros((512, 384), np.float32)
    clip[:, :192] = 1
    warped, warped_mask = warp_garment(image, mask, g_kp, p_kp, (512, 384))
    assert warped.shape == (512, 384, 3) and warped.dtype == np.uint8
    assert warped_mask.shape == (512, 384) and set(np.unique(warped_mask)) <= {0.0, 1.0}
    # The garment lands on the torso, and the neck / shoulder correspondences hold at pixel level.
    chest = p_kp[I["neck"], :2].astype(int) + [0, 60]
    assert warped_mask[chest[1], chest[0]] == 1
    assert warped_mask[20, 20] == 0 and warped_mask[500, 370] == 0
    src, dst = correspondences(g_kp, p_kp)
    checked = 0
    for s, d in zip(src, dst):
        x, y = np.round(d).astype(int)
        if mask[int(round(s[1])), int(round(s[0]))] and 0 <= y < 512 and 0 <= x < 384 and warped_mask[y, x]:
            assert abs(int(warped[y, x, 2]) - int(s[0]) // 2) <= 3  # sampled from the right garment column
            checked += 1
    assert checked >= 2  # (points on the garment outline may fall just outside the mask)
    clipped, clipped_mask = warp_garment(image, mask, g_kp, p_kp, (512, 384), clip_mask=clip)
    assert clipped_mask[:, 192:].sum() == 0 and (clipped[:, 192:] == 255).all()
    np.testing.assert_array_equal(clipped_mask[:, :192], warped_mask[:, :192])


def test_warped_composite_formula():
    rng = np.random.default_rng(0)
    agnostic = rng.integers(0, 256, (8, 6, 3), dtype=np.uint8)
    warped = rng.integers(0, 256, (8, 6, 3), dtype=np.uint8)
    m = (rng.random((8, 6)) > 0.5).astype(np.float32)
    out = warped_composite(agnostic, warped, m)
    np.testing.assert_array_equal(out, np.where(m[..., None] > 0, warped, agnostic))


def _long_sleeve_garment():
    """A flat long-sleeve top: body and two long sleeves going down-outwards, sleeves coloured apart."""
    mask = np.zeros((400, 400), np.uint8)
    cv2.fillPoly(mask, [np.array([[130, 60], [270, 60], [275, 360], [125, 360]], np.int32)], 1)
    sleeves = np.zeros_like(mask)
    cv2.fillPoly(sleeves, [np.array([[130, 60], [40, 330], [80, 345], [140, 140]], np.int32)], 1)
    cv2.fillPoly(sleeves, [np.array([[270, 60], [360, 330], [320, 345], [260, 140]], np.int32)], 1)
    image = np.full((400, 400, 3), 255, np.uint8)
    image[mask > 0] = (200, 40, 40)
    image[(sleeves > 0) & (mask == 0)] = (40, 40, 200)
    return image, ((mask | sleeves) > 0).astype(np.float32)


def test_body_warp_sleeves_follow_the_arms_and_leave_no_gaps():
    image, mask = _long_sleeve_garment()
    g_kp = garment_keypoints(mask, "front")
    p_kp = synthetic_keypoints("front")  # arms hanging down, elbows and wrists below the shoulders
    person = person_mask_from_keypoints(p_kp, 512, 384)
    region = upper_body_agnostic_mask(with_estimated_hips(p_kp), person, sleeves="long")
    warped, warped_mask = body_warp_garment(image, mask, g_kp, p_kp, (512, 384), clip_mask=region, person_mask=person)
    assert warped.shape == (512, 384, 3) and set(np.unique(warped_mask)) <= {0.0, 1.0}
    assert (warped_mask <= region).all()
    blue = (warped[..., 2] > 150) & (warped[..., 0] < 100) & (warped_mask > 0)
    for side in ("right", "left"):
        # Sleeve pixels along the forearm (between elbow and wrist), where the arm is, not sideways in the air.
        mid = ((p_kp[I[f"{side}_elbow"], :2] + p_kp[I[f"{side}_wrist"], :2]) / 2).astype(int)
        assert blue[mid[1] - 6 : mid[1] + 7, mid[0] - 6 : mid[0] + 7].any(), side
    red = (warped[..., 0] > 150) & (warped_mask > 0)
    chest = p_kp[I["neck"], :2].astype(int) + [0, 60]
    assert red[chest[1], chest[0]]
    # Less of the body region is left grey than with the single-TPS warp.
    old_warped, old_mask = warp_garment(image, mask, g_kp, p_kp, (512, 384), clip_mask=region)
    on_body = (region > 0) & (person > 0)
    assert (on_body & (warped_mask == 0)).sum() < 0.5 * (on_body & (old_mask == 0)).sum()


def test_body_warp_needs_a_neck_or_shoulder():
    image, mask = _long_sleeve_garment()
    p_kp = synthetic_keypoints("front")
    p_kp[[I["neck"], I["right_shoulder"], I["left_shoulder"]], 2] = 0
    with pytest.raises(InsufficientPoseError, match="shoulder"):
        body_warp_garment(image, mask, garment_keypoints(mask, "front"), p_kp, (512, 384))
