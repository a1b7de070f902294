import numpy as np
import pytest

from mvvton.constants import COCO18_INDEX as I
from mvvton.preprocessing.masks import (
    agnostic_image,
    agnostic_mask_from_parsing,
    head_mask,
    mask_from_user,
    upper_body_agnostic_mask,
)
from mvvton.preprocessing.person import person_mask_from_keypoints

from .conftest import synthetic_keypoints


def _label_map():
    labels = np.zeros((64, 64), np.int64)
    labels[20:30, 20:30] = 5  # LIP upper-clothes (ATR: skirt)
    labels[30:40, 20:30] = 15  # right arm in both schemes
    labels[2:8, 50:60] = 13  # LIP face: never masked
    labels[50:60, 0:10] = 9  # LIP pants: never masked
    return labels


def test_parsing_rule_pinned_vitonhd():
    # Labels {5,6,7,14,15} -> dilate(ones(10,10), 3 it) -> erode(ones(10,10), 1 it). With OpenCV's centred anchor
    # (5, 5) a 10x10 kernel grows a box by 4 px before / 5 px after per dilation and shrinks it by 5 before /
    # 4 after per erosion: rows 20..39 -> 8..54 -> 13..50, cols 20..29 -> 8..44 -> 13..40.
    out = agnostic_mask_from_parsing(_label_map(), scheme="vitonhd")
    expected = np.zeros((64, 64), np.float32)
    expected[13:51, 13:41] = 1
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, expected)
    np.testing.assert_array_equal(agnostic_mask_from_parsing(_label_map(), scheme="lip"), expected)


def test_parsing_rule_pinned_atr():
    # ATR: 5 is "skirt" (kept), only the arm rows 30..39 count -> rows 18..54 -> 23..50.
    out = agnostic_mask_from_parsing(_label_map(), scheme="atr")
    expected = np.zeros((64, 64), np.float32)
    expected[23:51, 13:41] = 1
    np.testing.assert_array_equal(out, expected)
    with pytest.raises(ValueError, match="scheme"):
        agnostic_mask_from_parsing(_label_map(), scheme="cihp")


def test_parsing_rule_protects_face_with_keypoints():
    labels = np.zeros((512, 384), np.int64)
    labels[100:300, 120:260] = 5
    kp = synthetic_keypoints("front")
    plain = agnostic_mask_from_parsing(labels, scheme="vitonhd")
    protected = agnostic_mask_from_parsing(labels, kp, scheme="vitonhd")
    head = head_mask(kp, 512, 384) > 0
    assert plain[head].any() and not protected[head].any()
    np.testing.assert_array_equal(protected[~head], plain[~head])


def test_pose_agnostic_mask_regions():
    kp = synthetic_keypoints("front")
    person = person_mask_from_keypoints(kp, 512, 384)
    mask = upper_body_agnostic_mask(kp, person)
    assert mask.shape == (512, 384) and mask.dtype == np.float32 and set(np.unique(mask)) <= {0.0, 1.0}
    for name in ("neck", "right_elbow", "left_elbow", "right_shoulder", "left_hip"):
        x, y = kp[I[name], :2].astype(int)
        assert mask[y, x] == 1, name
    assert mask[210, 192] == 1  # chest
    for name in ("nose", "right_eye", "right_knee", "left_ankle"):
        x, y = kp[I[name], :2].astype(int)
        assert mask[y, x] == 0, name
    assert mask[10, 10] == 0 and mask[500, 370] == 0
    # Restricted to the (slightly dilated) person: shrinking the person mask shrinks the agnostic mask.
    smaller = upper_body_agnostic_mask(kp, person * (np.arange(384) < 192)[None, :])
    assert smaller.sum() < mask.sum() and smaller[:, 220:].sum() == 0


def test_agnostic_image_and_user_mask():
    person = np.random.default_rng(0).integers(0, 256, (64, 48, 3), dtype=np.uint8)
    mask = np.zeros((64, 48), np.float32)
    mask[10:30, 5:20] = 1
    out = agnostic_image(person, mask)
    assert (out[10:30, 5:20] == 128).all()
    np.testing.assert_array_equal(out[mask == 0], person[mask == 0])
    user = np.zeros((32, 24), np.uint8)
    user[8:, :] = 255
    resized = mask_from_user(user, 64, 48)
    assert resized.shape == (64, 48) and resized[:14].sum() == 0 and resized[18:].all()


def test_sleeve_aware_arm_coverage_keeps_hands():
    kp = synthetic_keypoints("front")
    person = person_mask_from_keypoints(kp, 512, 384)
    masks = {s: upper_body_agnostic_mask(kp, person, sleeves=s) for s in ("sleeveless", "short", "long")}
    # The forearm (between elbow and wrist) is covered across its width only for long sleeves.
    elbow, wrist = kp[I["right_elbow"], :2], kp[I["right_wrist"], :2]
    fx, fy = ((elbow + wrist) / 2).astype(int)
    row = slice(fy - 2, fy + 3)
    width = {s: int(m[row, fx - 40 : fx + 40].sum()) for s, m in masks.items()}
    assert width["long"] > width["short"] >= width["sleeveless"]
    assert masks["long"].sum() > masks["short"].sum() > masks["sleeveless"].sum()
    # Upper arm below the shoulder: covered for short and long sleeves.
    ux, uy = (kp[I["right_shoulder"], :2] * 0.4 + elbow * 0.6).astype(int)
    assert masks["short"][uy, ux] == 1 and masks["long"][uy, ux] == 1
    # Hands (just past the wrists) are never regenerated; the face neither.
    for name in ("right_wrist", "left_wrist"):
        x, y = kp[I[name], :2].astype(int)
        assert masks["long"][y + 10, x - 2 : x + 3].sum() == 0 or masks["long"][y + 12, x] == 0
    x, y = kp[I["nose"], :2].astype(int)
    assert all(m[y, x] == 0 for m in masks.values())
    with pytest.raises(ValueError, match="sleeves"):
        upper_body_agnostic_mask(kp, person, sleeves="medium")
