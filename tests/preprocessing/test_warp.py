import numpy as np
import pytest

from mvvton.constants import COCO18_INDEX as I
from mvvton.preprocessing.garment import garment_keypoints
from mvvton.preprocessing.warp import ThinPlateSpline, correspondences, warp_garment, warped_composite

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
