"""View decision from all pose evidence: the hard real photos, chin crops, padding, confidence and explanation."""

import csv
import warnings

import numpy as np
import pytest
from PIL import Image

from mvvton.constants import COCO18_INDEX as I
from mvvton.constants import PersonView
from mvvton.errors import InsufficientPoseError
from mvvton.preprocessing.preprocessor import (
    CropBox,
    TryOnPreprocessor,
    drop_outside_box,
    estimate_pose_in_box,
    fit_to_canvas,
)
from mvvton.preprocessing.view import LOW_CONFIDENCE, decide_view

from .conftest import synthetic_keypoints


@pytest.fixture(scope="session")
def hard_person_samples(shared_dir):
    """samples-hard person photo path -> true view (first word of the MANIFEST note)."""
    out = {}
    with (shared_dir / "samples-hard" / "MANIFEST.tsv").open(newline="") as stream:
        for row in csv.DictReader(stream, delimiter="\t"):
            if row["path"].startswith("person/"):
                out[shared_dir / "samples-hard" / row["path"]] = row["note"].split(";")[0].split()[0]
    assert len(out) == 9
    return out


def _decide(estimator, image, height=512, width=384):
    canvas, box = fit_to_canvas(image, height, width)
    pose = estimate_pose_in_box(estimator, canvas, box)
    return decide_view(pose.keypoints, pose.landmarks, pose.world_landmarks), pose, box


def _photo(path):
    return np.asarray(Image.open(path).convert("RGB"))


def test_hard_photos_views(hard_person_samples, mediapipe_estimator):
    # Back views, 3/4 backs looking over the shoulder, profiles with the head cut, a front cut at the nose.
    wrong = []
    for path, truth in hard_person_samples.items():
        decision, _, _ = _decide(mediapipe_estimator, _photo(path))
        if decision.view is not PersonView(truth):
            wrong.append((path.name, truth, decision.view.value, decision.explanation))
        assert 0.0 <= decision.confidence <= 1.0 and decision.explanation
    assert not wrong


def test_first_sample_set_views(person_samples, mediapipe_estimator):
    for path, truth in person_samples.items():
        decision, _, _ = _decide(mediapipe_estimator, _photo(path))
        assert decision.view is PersonView(truth), (path, decision.explanation)


def test_front_photo_cut_below_the_nose_stays_front(shared_dir, mediapipe_estimator):
    # The case: the face leaves the frame; "no face" must not mean "back".
    image = _photo(shared_dir / "samples" / "person" / "idmvton_00055_00_front.jpg")
    _, pose, box = _decide(mediapipe_estimator, image)
    nose_y = (pose.keypoints[I["nose"], 1] - box.top) / box.scale
    cropped = np.ascontiguousarray(image[int(nose_y) + 40 :])
    decision, pose, _ = _decide(mediapipe_estimator, cropped)
    assert decision.view is PersonView.FRONT, decision.explanation
    assert "head outside the photo" in decision.explanation
    assert pose.landmarks[0, 1] < 0  # the estimator still places the nose, above the photo


def test_keypoints_in_padding_are_dropped():
    box = CropBox(left=100, top=0, box_width=184, box_height=512, scale=1.0, original_size=(512, 184))
    kp = synthetic_keypoints("front")  # x in 140..244, y up to 470
    kp[I["left_knee"]] = (300, 400, 0.75)  # in the right padding
    kp[I["right_knee"]] = (283, 400, 0.75)  # on the box's last column
    out = drop_outside_box(kp, box)
    assert out[I["left_knee"], 2] == 0 and out[I["right_knee"], 2] == pytest.approx(0.75)
    assert kp[I["left_knee"], 2] == pytest.approx(0.75)  # input untouched


def test_wide_photo_has_no_keypoint_in_the_padding(shared_dir, mediapipe_estimator):
    image = _photo(shared_dir / "samples" / "person" / "ootd_051918_0_front.jpg")  # full body, feet at the bottom
    _, pose, box = _decide(mediapipe_estimator, image, height=256, width=384)  # wide canvas: padding left/right
    seen = pose.keypoints[:, 2] > 0
    xs = pose.keypoints[seen, 0]
    assert box.left > 0 and seen.sum() >= 12
    assert (xs >= box.left - 0.01 * box.box_width).all() and (xs <= box.left + box.box_width).all()
    assert pose.person_mask[:, : box.left].sum() == 0


def test_low_confidence_is_explained_in_warnings():
    kp = synthetic_keypoints("front")
    # Shoulders and hips almost on top of each other, but not quite: between front and side.
    kp[[I["right_shoulder"], I["left_shoulder"]], 0] = (176, 210)
    kp[[I["right_hip"], I["left_hip"]], 0] = (180, 203)
    decision = decide_view(kp)
    assert decision.confidence < LOW_CONFIDENCE and decision.explanation

    class Estimator:
        def __call__(self, image):
            from mvvton.preprocessing.person import PoseResult, person_mask_from_keypoints

            return PoseResult(kp, person_mask_from_keypoints(kp, *image.shape[:2]))

    garment = np.full((400, 400, 3), 255, np.uint8)
    garment[80:360, 110:290] = (30, 60, 200)
    garment[80:190, 60:340] = (30, 60, 200)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        out = TryOnPreprocessor(Estimator())(np.full((512, 384, 3), 200, np.uint8), garment, garment)
    assert out.view_confidence == pytest.approx(decision.confidence)
    assert any("view detection is unsure" in note and "Pass view=" in note for note in out.warnings)


def test_photo_without_shoulders_raises_typed_error(shared_dir, mediapipe_estimator):
    # A real crop of the head only: the shoulders are below the frame, so the warp has nothing to hold on to.
    image = _photo(shared_dir / "samples" / "person" / "idmvton_00055_00_front.jpg")
    head = np.ascontiguousarray(image[:220, 200:600])  # the shoulders are at y ≈ 305-336
    garment = shared_dir / "samples" / "garment" / "solidus_ruby-polo_front.jpg"
    pre = TryOnPreprocessor(mediapipe_estimator)
    with pytest.raises(InsufficientPoseError, match="no shoulder"):
        pre(head, garment, garment)
    # With a user mask the request can still run: no pre-warp, and the warnings say so.
    mask = np.zeros(head.shape[:2], np.uint8)
    mask[200:, :] = 255
    out = pre(head, garment, garment, mask_image=mask)
    assert out.warped_mask.sum() == 0
    assert any("no shoulder" in note for note in out.warnings)
