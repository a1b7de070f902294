"""Paired transforms keep person, masks, skeletons, warp and keypoints aligned (pixel-marker test)."""

from __future__ import annotations

import numpy as np
import pytest

from mvvton.constants import COCO18_INDEX
from mvvton.data.sample import RawSample
from mvvton.data.transforms import FLIP_PERMUTATION, PairedTransform

SRC_H, SRC_W = 200, 150
MARK_X, MARK_Y = 97, 61  # a marker pixel, away from the centre so flips move it


def marked_sample() -> RawSample:
    def image() -> np.ndarray:
        array = np.zeros((SRC_H, SRC_W, 3), np.uint8)
        array[MARK_Y - 2 : MARK_Y + 3, MARK_X - 2 : MARK_X + 3] = 255
        return array

    mask = np.zeros((SRC_H, SRC_W), np.float32)
    mask[MARK_Y - 2 : MARK_Y + 3, MARK_X - 2 : MARK_X + 3] = 1
    keypoints = np.zeros((18, 3), np.float32)
    keypoints[COCO18_INDEX["right_wrist"]] = (MARK_X, MARK_Y, 1)
    keypoints[COCO18_INDEX["nose"]] = (5, 5, 1)
    garment = np.zeros((80, 60, 3), np.uint8)
    garment[:, :10] = 200  # left stripe
    return RawSample(
        person=image(), inpaint_image=image(), inpaint_mask=mask, agnostic=image(), skeleton_person=image(),
        person_keypoints=keypoints, garment_front=garment, garment_front_mask=np.ones((80, 60), np.float32),
        garment_back=garment, garment_back_mask=np.ones((80, 60), np.float32), view="front", garment_view="front",
        sample_id="marker",
    )  # fmt: skip


def centroid(array: np.ndarray) -> tuple[float, float]:
    weight = array.astype(np.float64) if array.ndim == 2 else array.astype(np.float64).sum(-1)
    ys, xs = np.mgrid[: weight.shape[0], : weight.shape[1]]
    return float((xs * weight).sum() / weight.sum()), float((ys * weight).sum() / weight.sum())


@pytest.mark.parametrize("crop, flip", [(None, 0.0), ((0.6, 0.9), 0.0), ((0.6, 0.9), 1.0), (None, 1.0)])
def test_marker_stays_aligned(crop, flip):
    transform = PairedTransform(96, 72, crop_scale=crop, flip_prob=flip)
    for seed in range(5):
        out = transform(marked_sample(), np.random.default_rng(seed))
        wrist = out.person_keypoints[COCO18_INDEX["left_wrist" if flip else "right_wrist"]]
        if wrist[2] == 0:  # cropped away: the marker must be gone from the images too
            assert out.person.max() < 128
            continue
        reference = centroid(out.person)
        for array in (out.inpaint_image, out.agnostic, out.inpaint_mask):
            assert np.allclose(centroid(array), reference, atol=0.05)
        assert np.allclose(wrist[:2], reference, atol=0.6)
        if flip:
            # redrawn from the flipped keypoints rather than mirrored
            assert out.skeleton_person.max() > 0
        else:
            assert np.allclose(centroid(out.skeleton_person), reference, atol=0.05)
        stripe_left = out.garment_front[:, :5].mean() > out.garment_front[:, -5:].mean()
        assert stripe_left != bool(flip)  # garments follow the flip


def test_resize_maps_keypoints_like_pixels():
    out = PairedTransform(100, 75)(marked_sample())
    expected = ((MARK_X + 0.5) * 75 / SRC_W - 0.5, (MARK_Y + 0.5) * 100 / SRC_H - 0.5)
    assert np.allclose(out.person_keypoints[COCO18_INDEX["right_wrist"], :2], expected, atol=1e-4)
    assert out.person.shape == (100, 75, 3) and out.garment_front.shape == (100, 75, 3)


def test_flip_disabled_by_default_and_swaps_sides():
    transform = PairedTransform(96, 72, crop_scale=(0.8, 1.0))
    assert transform.flip_prob == 0
    out = transform(marked_sample(), np.random.default_rng(0))
    assert out.person_keypoints[COCO18_INDEX["right_wrist"], 2] == 1
    assert sorted(FLIP_PERMUTATION) == list(range(18))
    assert FLIP_PERMUTATION[COCO18_INDEX["right_eye"]] == COCO18_INDEX["left_eye"]
    assert FLIP_PERMUTATION[COCO18_INDEX["nose"]] == COCO18_INDEX["nose"]


def test_to_dict_ranges():
    sample = PairedTransform(96, 72)(marked_sample()).to_dict()
    assert sample["person"].shape == (3, 96, 72) and float(sample["person"].min()) == -1.0
    assert sample["skeleton_front"].shape == (3, 96, 72) and float(sample["skeleton_front"].max()) == -1.0
    assert sample["inpaint_mask"].shape == (1, 96, 72)
    assert sample["view"] == "front" and sample["garment_view"] == "front"
