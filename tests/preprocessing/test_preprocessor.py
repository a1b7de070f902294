import warnings

import numpy as np
import pytest
from PIL import Image

from mvvton.constants import COCO18_INDEX as I
from mvvton.constants import GarmentView, PersonView
from mvvton.errors import InvalidImageError, MissingDependencyError
from mvvton.preprocessing.person import PoseResult, person_mask_from_keypoints
from mvvton.preprocessing.preprocessor import PreprocessedTryOn, TryOnPreprocessor, fit_to_canvas

from .conftest import synthetic_keypoints
from .test_garment import _tshirt_mask


class FakeEstimator:
    """Returns fixed keypoints scaled to the canvas (a 512 x 384 person)."""

    def __init__(self, view="front"):
        self.view = view
        self.calls = 0

    def __call__(self, image):
        self.calls += 1
        kp = synthetic_keypoints(self.view)
        return PoseResult(kp, person_mask_from_keypoints(kp, *image.shape[:2]))


class UnavailableEstimator:
    def __call__(self, image):
        raise MissingDependencyError("no backend")


def _garment_image(color=(30, 60, 200)):
    mask = _tshirt_mask()
    image = np.full((400, 400, 3), 255, np.uint8)
    image[mask > 0] = color
    return image


def _person_image():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (1024, 768, 3), dtype=np.uint8)


def test_fields_shapes_and_routing():
    pre = TryOnPreprocessor(FakeEstimator("back"))
    out = pre(_person_image(), _garment_image(), _garment_image((200, 30, 30)))
    assert isinstance(out, PreprocessedTryOn)
    for name in ("person", "person_skeleton", "agnostic", "garment_front", "garment_back", "garment_front_skeleton",
                 "garment_back_skeleton", "warped_garment", "warped_composite"):  # fmt: skip
        value = getattr(out, name)
        assert value.shape == (512, 384, 3) and value.dtype == np.uint8, name
    for name in ("person_mask", "inpaint_mask", "garment_front_mask", "garment_back_mask", "warped_mask"):
        value = getattr(out, name)
        assert value.shape == (512, 384) and value.dtype == np.float32 and set(np.unique(value)) <= {0.0, 1.0}, name
    for name in ("person_keypoints", "person_keypoints_normalized", "garment_front_keypoints", "garment_back_keypoints"):
        assert getattr(out, name).shape == (18, 3), name
    assert out.person_keypoints_normalized[:, :2].max() <= 1.0
    assert out.view is PersonView.BACK and out.routed_garment is GarmentView.BACK
    # Back view: the warped garment is the back one (red), agnostic grey where masked and not covered.
    covered = out.warped_mask > 0
    assert covered.sum() > 1000
    assert out.warped_composite[covered][:, 0].mean() > 150
    assert (out.warped_mask <= out.inpaint_mask).all()
    assert (out.agnostic[(out.inpaint_mask > 0)] == 128).all()
    np.testing.assert_array_equal(out.warped_composite[~covered], out.agnostic[~covered])
    assert out.warnings == []
    assert {"load", "pose", "view", "mask", "garment_mask", "warp", "total"} <= set(out.timings)
    images = out.to_debug_images()
    assert {"person", "inpaint_mask", "warped_composite", "garment_back_skeleton"} <= set(images)
    assert all(isinstance(v, Image.Image) for v in images.values())


def test_missing_back_garment_warns_and_reuses_front():
    pre = TryOnPreprocessor(FakeEstimator("back"))
    with pytest.warns(UserWarning, match="back garment"):
        out = pre(_person_image(), _garment_image())
    assert len(out.warnings) == 1 and "back garment" in out.warnings[0]
    np.testing.assert_array_equal(out.garment_back, out.garment_front)
    # The reused image is still described by a back (mirrored) skeleton.
    assert out.garment_back_keypoints[I["right_shoulder"], 0] > out.garment_back_keypoints[I["left_shoulder"], 0]


def test_forced_view_and_user_mask():
    estimator = FakeEstimator("front")
    pre = TryOnPreprocessor(estimator)
    user_mask = np.zeros((1024, 768), np.uint8)
    user_mask[200:400, 100:600] = 255
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = pre(_person_image(), _garment_image(), view="side", mask_image=user_mask)
    assert out.view is PersonView.SIDE
    expected = np.zeros((512, 384), np.float32)
    expected[100:200, 50:300] = 1
    assert np.abs(out.inpaint_mask - expected).sum() <= 2 * (100 + 250)  # edges may shift by a pixel
    half = user_mask[::2, ::2]  # same mask at another resolution: lands on the same canvas pixels
    out_half = pre(_person_image(), _garment_image(), _garment_image(), view="side", mask_image=half)
    assert np.abs(out_half.inpaint_mask - out.inpaint_mask).sum() <= 2 * (100 + 250)
    with pytest.raises(ValueError):
        pre(_person_image(), _garment_image(), _garment_image(), view="upside-down")


def test_given_keypoints_skip_pose_and_fall_back_to_rough_mask():
    pre = TryOnPreprocessor(UnavailableEstimator())
    person = np.full((512, 384, 3), 200, np.uint8)
    out = pre(person, _garment_image(), _garment_image(), person_keypoints=synthetic_keypoints("front"))
    assert any("derived from keypoints" in w for w in out.warnings)
    np.testing.assert_allclose(out.person_keypoints, synthetic_keypoints("front"))
    assert out.person_mask[210, 192] == 1 and out.view is PersonView.FRONT
    with pytest.raises(MissingDependencyError):
        pre(person, _garment_image(), _garment_image())


def test_keypoints_in_original_coordinates_and_paste_back():
    original = np.zeros((1000, 500, 3), np.uint8)  # tall photo: letterboxed horizontally
    original[:, :, 1] = 90
    pre = TryOnPreprocessor(UnavailableEstimator())
    kp = synthetic_keypoints("front")
    kp[:, 0] *= 500 / 384
    kp[:, 1] *= 1000 / 512
    out = pre(original, _garment_image(), _garment_image(), person_keypoints=kp)
    box = out.crop_box
    assert box.scale == pytest.approx(0.512) and box.top == 0 and box.left == (384 - 256) // 2
    np.testing.assert_allclose(box.to_original(out.person_keypoints), kp, atol=1e-3)
    assert (out.person[:, : box.left] == 255).all()  # white padding
    restored = box.paste_back(out.person, original)
    assert restored.shape == original.shape and np.abs(restored.astype(int) - original).max() <= 2
    blended = box.paste_back(np.zeros_like(out.person), original, mask=np.zeros((512, 384), np.float32))
    np.testing.assert_array_equal(blended, original)


def test_fit_to_canvas_edge_padding():
    image = np.zeros((100, 300, 3), np.uint8)
    image[:, :, 0] = 50
    canvas, box = fit_to_canvas(image, 512, 384, pad="edge")
    assert canvas.shape == (512, 384, 3) and (canvas[..., 0] == 50).all()
    assert box.box_width == 384 and box.box_height == 128 and box.top == 192


def test_bad_inputs_are_typed():
    pre = TryOnPreprocessor(FakeEstimator())
    with pytest.raises(InvalidImageError, match="person image"):
        pre(b"garbage" * 10, _garment_image())
    with pytest.raises(InvalidImageError, match="front garment"):
        pre(_person_image(), np.zeros((8, 8, 3), np.uint8))


def test_real_photos_end_to_end(shared_dir, person_samples, mediapipe_estimator):
    garments = shared_dir / "samples" / "garment"
    pre = TryOnPreprocessor(mediapipe_estimator)
    for path, expected in person_samples.items():
        out = pre(path, garments / "solidus_ruby-polo_front.jpg", garments / "solidus_ruby-polo_back.jpg")
        assert out.view is PersonView(expected), path
        assert out.warped_mask.sum() > 0.03 * 512 * 384, path
        assert (out.warped_mask <= out.inpaint_mask).all()
        chest = out.person_keypoints[I["neck"], :2].astype(int) + [0, 40]
        assert out.inpaint_mask[chest[1], chest[0]] == 1, path
        nose = out.person_keypoints[I["nose"], :2].astype(int)
        assert out.inpaint_mask[nose[1], nose[0]] == 0, path
        # The whole torso (person pixels between the shoulder and hip lines) is regenerated, side view included.
        kp = out.person_keypoints
        top = int(kp[[I["right_shoulder"], I["left_shoulder"]], 1].max()) + 5
        bottom = int(kp[[I["right_hip"], I["left_hip"]], 1].min()) - 5
        torso = out.person_mask[top:bottom] > 0
        assert (out.inpaint_mask[top:bottom][torso] > 0).mean() > 0.95, path


def test_transparent_cutout_garment_uses_its_alpha():
    shape = _tshirt_mask()  # 400 x 400
    rgba = np.zeros((400, 400, 4), np.uint8)
    rgba[..., :3] = 255  # white garment on a transparent background: colour segmentation alone could not see it
    rgba[..., 3] = shape * 255
    pre = TryOnPreprocessor(FakeEstimator())
    out = pre(_person_image(), rgba, _garment_image())
    expected, _ = fit_to_canvas(shape.astype(np.float32), 512, 384, pad="white", interpolation=0)
    assert np.abs(out.garment_front_mask - (expected > 0.5)).mean() < 0.01
    assert out.garment_front_mask.sum() > 0.2 * 384 * 384


def test_human_parser_gives_the_exact_parsing_mask():
    from mvvton.preprocessing.masks import agnostic_mask_from_parsing

    class Parser:
        scheme = "vitonhd"

        def __call__(self, image):
            labels = np.zeros(image.shape[:2], np.int64)
            labels[150:300, 120:260] = 5  # upper clothes
            labels[150:250, 90:120] = 14  # an arm
            return labels

    pre = TryOnPreprocessor(FakeEstimator(), human_parser=Parser())
    out = pre(_person_image(), _garment_image(), _garment_image())
    expected = agnostic_mask_from_parsing(Parser()(out.person), out.person_keypoints, scheme="vitonhd")
    np.testing.assert_array_equal(out.inpaint_mask, expected)
    assert out.inpaint_mask[200, 100] == 1 and out.inpaint_mask[400, 192] == 0
