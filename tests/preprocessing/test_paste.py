import numpy as np
import pytest
from PIL import Image

from mvvton.errors import InvalidArgumentError
from mvvton.preprocessing.paste import (
    check_output_size,
    feathered_mask,
    paste_batch_into_originals,
    paste_into_original,
)
from mvvton.preprocessing.preprocessor import fit_to_canvas


def _setup():
    rng = np.random.default_rng(0)
    original = rng.integers(0, 256, (300, 200, 3), dtype=np.uint8)  # portrait photo, letterboxed into 128 x 128
    canvas, box = fit_to_canvas(original, 128, 128)
    result = np.full((128, 128, 3), (10, 200, 30), np.uint8)
    mask = np.zeros((128, 128), np.float32)
    mask[40:90, 50:80] = 1
    return original, box, result, mask


def test_paste_keeps_size_and_every_pixel_outside_the_mask():
    original, box, result, mask = _setup()
    out = paste_into_original(result, original, box, mask)
    assert out.shape == original.shape and out.dtype == np.uint8
    # Canvas rows 40..90 / cols 50..80 -> original pixels (scale 128 / 300, box left 21).
    top, bottom = int(40 / box.scale) + 3, int(90 / box.scale) - 3
    left, right = int((50 - box.left) / box.scale) + 3, int((80 - box.left) / box.scale) - 3
    assert (out[top + 5 : bottom - 5, left + 5 : right - 5] == (10, 200, 30)).all()
    outside = np.ones(original.shape[:2], bool)
    outside[top - 6 : bottom + 6, left - 6 : right + 6] = False
    np.testing.assert_array_equal(out[outside], original[outside])
    # A feathered edge: some pixels are strictly between the two colours.
    edge = out[top - 4 : top + 4, (left + right) // 2, 1].astype(int)
    original_edge = original[top - 4 : top + 4, (left + right) // 2, 1].astype(int)
    assert ((edge != 200) & (edge != original_edge)).any()


def test_feathered_mask_is_zero_outside():
    mask = np.zeros((64, 64), np.float32)
    mask[16:48, 16:48] = 1
    soft = feathered_mask(mask, 6)
    assert soft[mask == 0].max() == 0 and soft[32, 32] == pytest.approx(1.0, abs=1e-3)
    assert 0 < soft[16, 32] < 1
    np.testing.assert_array_equal(feathered_mask(mask, 0), mask)


def test_paste_rejects_a_mismatched_photo():
    original, box, result, mask = _setup()
    with pytest.raises(InvalidArgumentError, match="crop box"):
        paste_into_original(result, original[:100], box, mask)
    with pytest.raises(InvalidArgumentError, match="working size"):
        paste_into_original(result[:64], original, box, mask)


def test_batch_paste_pil_and_numpy_and_prepared_samples():
    original, box, result, mask = _setup()
    placements = [(box, original, mask), None]
    pil = paste_batch_into_originals([Image.fromarray(result)] * 4, placements, num_images_per_prompt=2)
    assert [image.size for image in pil] == [(200, 300), (200, 300), (128, 128), (128, 128)]
    arrays = paste_batch_into_originals(np.stack([result, result]).astype(np.float32) / 255, placements)
    assert arrays[0].shape == (300, 200, 3) and arrays[0].dtype == np.float32 and arrays[1].shape == (128, 128, 3)
    assert 0.0 <= arrays[0].min() and arrays[0].max() <= 1.0


def test_check_output_size():
    check_output_size("working", "pt")
    check_output_size("original", "pil")
    with pytest.raises(InvalidArgumentError, match="output_size"):
        check_output_size("full", "pil")
    with pytest.raises(InvalidArgumentError, match="tensor"):
        check_output_size("original", "pt")
