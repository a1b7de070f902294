import sys

import cv2
import numpy as np
import pytest
from PIL import Image

from mvvton.constants import COCO18_INDEX as I
from mvvton.constants import GarmentView
from mvvton.errors import MissingDependencyError, NoGarmentDetectedError
from mvvton.preprocessing.garment import (
    OnnxHumanParser,
    garment_keypoints,
    garment_landmarks,
    garment_mask,
)
from mvvton.preprocessing.pose import render_skeleton


def _tshirt_mask(h=400, w=400) -> np.ndarray:
    """A flat T-shirt silhouette: body rectangle, two short sleeves, a neckline dip."""
    mask = np.zeros((h, w), np.uint8)
    body = np.array([[120, 80], [280, 80], [285, 360], [115, 360]], np.int32)
    cv2.fillPoly(mask, [body], 1)
    cv2.fillPoly(mask, [np.array([[120, 80], [60, 170], [100, 190], [125, 150]], np.int32)], 1)
    cv2.fillPoly(mask, [np.array([[280, 80], [340, 170], [300, 190], [275, 150]], np.int32)], 1)
    cv2.ellipse(mask, (200, 80), (35, 20), 0, 0, 180, 0, -1)
    return mask


def _reference_mask(image: np.ndarray) -> np.ndarray:
    """An independent, simpler segmentation: per-channel difference to the border colour, closed, holes filled."""
    ndi = pytest.importorskip("scipy.ndimage")
    border = np.concatenate([image[:5].reshape(-1, 3), image[-5:].reshape(-1, 3), image[:, :5].reshape(-1, 3),
                             image[:, -5:].reshape(-1, 3)])  # fmt: skip
    fg = np.abs(image.astype(int) - np.median(border, 0)).max(2) > 25
    fg = ndi.binary_fill_holes(ndi.binary_closing(fg, iterations=3))
    labels, _ = ndi.label(fg)
    return labels == np.bincount(labels.ravel())[1:].argmax() + 1


def test_sample_garment_masks_are_clean(garment_samples):
    for path in garment_samples:
        image = np.asarray(Image.open(path).convert("RGB"))
        mask = garment_mask(image)
        m = mask > 0.5
        assert mask.shape == image.shape[:2] and mask.dtype == np.float32, path.name
        assert 0.2 < m.mean() < 0.75, path.name
        count, _ = cv2.connectedComponents(m.astype(np.uint8))
        assert count == 2, path.name  # background + exactly one garment component
        inverse_count, labels = cv2.connectedComponents((~m).astype(np.uint8))
        touching = set(np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]])))
        assert set(range(1, inverse_count)) <= touching, path.name  # no holes: all background reaches the border
        border = np.concatenate([m[0], m[-1], m[:, 0], m[:, -1]])
        assert border.mean() < 0.05, path.name
        reference = _reference_mask(image)
        iou = (m & reference).sum() / (m | reference).sum()
        assert iou > 0.93, (path.name, iou)


def test_white_on_white_synthetic():
    shape = _tshirt_mask()
    image = np.full((400, 400, 3), 250, np.uint8)
    image[shape > 0] = 247  # nearly background-coloured fabric
    contour = cv2.morphologyEx(shape, cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8))
    image[contour > 0] = 205  # seams / shading outline
    rng = np.random.default_rng(0)
    image = np.clip(image.astype(int) + rng.integers(-2, 3, image.shape), 0, 255).astype(np.uint8)
    m = garment_mask(image) > 0.5
    iou = (m & (shape > 0)).sum() / (m | (shape > 0)).sum()
    assert iou > 0.9


def test_no_garment():
    with pytest.raises(NoGarmentDetectedError, match="no garment"):
        garment_mask(np.full((200, 200, 3), 240, np.uint8))
    noise = np.random.default_rng(0).integers(0, 256, (200, 200, 3), dtype=np.uint8)
    with pytest.raises(NoGarmentDetectedError):
        garment_mask(noise)


def test_garment_landmarks_on_tshirt():
    lm = garment_landmarks(_tshirt_mask())
    assert lm.has_sleeves
    assert abs(lm.neck[0] - 200) < 8 and 85 <= lm.neck[1] <= 105  # bottom of the neckline dip
    assert lm.shoulder_image_left[0] < 200 < lm.shoulder_image_right[0]
    assert abs(lm.shoulder_image_left[1] - 80) < 12 and abs(lm.shoulder_image_right[1] - 80) < 12
    # Sleeve ends are the cuff centres (edge (60, 170)-(100, 190) on the left, mirrored on the right).
    np.testing.assert_allclose(lm.sleeve_image_left, (80, 180), atol=12)
    np.testing.assert_allclose(lm.sleeve_image_right, (320, 180), atol=12)
    assert lm.hem_image_left[1] > 340 and lm.hem_image_left[0] < 130 and lm.hem_image_right[0] > 270


def test_back_skeleton_is_mirrored():
    mask = _tshirt_mask()
    front = garment_keypoints(mask, GarmentView.FRONT)
    back = garment_keypoints(mask, "back")
    assert front.shape == back.shape == (18, 3)
    # Front product photo: wearer's right on the image left (like a person facing the camera).
    assert front[I["right_shoulder"], 0] < front[I["left_shoulder"], 0]
    assert front[I["right_elbow"], 0] < front[I["left_elbow"], 0]
    assert front[I["right_hip"], 0] < front[I["left_hip"], 0]
    # Back product photo: mirrored assignment, same points.
    for side_a, side_b in (("right", "left"), ("left", "right")):
        for joint in ("shoulder", "elbow", "hip"):
            np.testing.assert_array_equal(back[I[f"{side_a}_{joint}"]], front[I[f"{side_b}_{joint}"]])
    np.testing.assert_array_equal(back[I["neck"]], front[I["neck"]])
    assert (front[[I["nose"], I["right_wrist"], I["left_knee"]], 2] == 0).all()
    # Rendered: the right upper arm (OpenPose limb 2->3, RGB (0, 170, 255) as read back) sits on the image right.
    sk = render_skeleton(back, 400, 400)
    ys, xs = np.nonzero((sk[..., 0] < 30) & (np.abs(sk[..., 1].astype(int) - 170) < 15) & (sk[..., 2] > 230))
    assert xs.size and xs.mean() > 200


def test_onnx_parser_errors(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match="missing.onnx"):
        OnnxHumanParser(tmp_path / "missing.onnx")
    model = tmp_path / "parser.onnx"
    model.write_bytes(b"not really onnx")
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    parser = OnnxHumanParser(model, scheme="lip")
    with pytest.raises(MissingDependencyError, match="pip install onnxruntime"):
        parser(np.zeros((64, 64, 3), np.uint8))
