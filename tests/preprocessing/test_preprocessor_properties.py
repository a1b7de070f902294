"""Property: the preprocessor gives a result or an `MVVTONError` for any argument set, and never reaches native
code (OpenCV / mediapipe) with an absurd canvas. Keypoints are given, so no pose model runs: fast."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from mvvton.errors import MVVTONError
from tests.preprocessing.conftest import synthetic_keypoints

hypothesis = pytest.importorskip("hypothesis")
st = hypothesis.strategies


def _product_photo(color: tuple[int, int, int]) -> Image.Image:
    """A plain T-shirt silhouette on white, like a product photo."""
    canvas = np.full((256, 192, 3), 255, np.uint8)
    canvas[60:220, 50:142] = color  # body
    canvas[60:110, 20:172] = color  # sleeves
    return Image.fromarray(canvas)


def _person_photo() -> Image.Image:
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 256, (512, 384, 3), dtype=np.uint8))


@pytest.fixture(scope="module")
def preprocessor():
    pytest.importorskip("cv2")
    from mvvton.preprocessing.preprocessor import TryOnPreprocessor

    return TryOnPreprocessor()


SIDES = st.sampled_from([128, 96, 512, 384, 0, -128, 100.0, "128", None, 10**6, 2**31, 33])
VIEWS = st.sampled_from(["auto", "front", "side", "back", "sideways", None, 2])
KEYPOINTS = st.sampled_from(["front", "back", "side", "nan", "shape", "negative_conf", "list2", "no_shoulders"])
IMAGES = st.sampled_from(["photo", "photo", "photo", "tensor", "int", "missing", "empty_bytes", "channels_first"])


def _keypoints(kind: str):
    if kind in ("front", "back", "side"):
        return synthetic_keypoints(kind)
    base = synthetic_keypoints("front")
    if kind == "nan":
        base[3, 0] = np.nan
        return base
    if kind == "shape":
        return base.reshape(6, 9)
    if kind == "negative_conf":
        base[0, 2] = -1
        return base
    if kind == "list2":
        return [base, base]
    base[[1, 2, 5], 2] = 0  # neck and both shoulders unseen
    return base


def _image(kind: str):
    return {
        "photo": _person_photo(),
        "tensor": __import__("torch").zeros(3, 64, 64),
        "int": 7,
        "missing": "/no/such/photo.jpg",
        "empty_bytes": b"",
        "channels_first": np.zeros((3, 512, 384), np.uint8),
    }[kind]


@hypothesis.settings(max_examples=120)
@hypothesis.given(height=SIDES, width=SIDES, view=VIEWS, keypoints=KEYPOINTS, person=IMAGES)
def test_preprocessor_gives_a_result_or_a_typed_error(preprocessor, height, width, view, keypoints, person):
    try:
        result = preprocessor(
            _image(person), _product_photo((200, 30, 30)), _product_photo((30, 30, 200)),
            person_keypoints=_keypoints(keypoints), view=view, height=height, width=width,
        )  # fmt: skip
    except MVVTONError as error:
        hypothesis.event(f"rejected: {type(error).__name__}")
        assert str(error) and "0x" not in str(error)
        return
    hypothesis.event("result")
    assert result.person.shape[:2] == (height, width)
    assert np.isfinite(np.asarray(result.inpaint_mask, np.float32)).all()
