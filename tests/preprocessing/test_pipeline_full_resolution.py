"""`output_size="original"`: the pipeline pastes its working-size result into the person's original photo."""

import warnings

import numpy as np
import torch
from PIL import Image

from mvvton.pipelines import MVVTONPipeline
from mvvton.preprocessing.person import PoseResult, person_mask_from_keypoints
from mvvton.preprocessing.preprocessor import TryOnPreprocessor
from tests.testing_utils import get_dummy_components

from .conftest import synthetic_keypoints
from .test_preprocessor import _garment_image


class ScaledEstimator:
    """The synthetic 512 x 384 person, scaled to whatever image it is given."""

    def __call__(self, image):
        height, width = image.shape[:2]
        kp = synthetic_keypoints("front")
        kp[:, 0] *= width / 384
        kp[:, 1] *= height / 512
        return PoseResult(kp, person_mask_from_keypoints(kp, height, width))


def test_pipeline_returns_the_original_resolution():
    pipe = MVVTONPipeline(**get_dummy_components())
    pipe.set_progress_bar_config(disable=True)
    pipe.preprocessor = TryOnPreprocessor(ScaledEstimator())
    rng = np.random.default_rng(0)
    person = rng.integers(0, 256, (150, 100, 3), dtype=np.uint8)  # not the working aspect ratio
    garment = _garment_image()
    common = dict(num_inference_steps=2, generator=torch.Generator().manual_seed(0), return_intermediates=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        out = pipe(person, garment, garment, output_size="original", output_type="pil", **common)
        working = pipe(
            person, garment, garment, output_type="pil", **{**common, "generator": torch.Generator().manual_seed(0)}
        )
    image = out.images[0]
    assert isinstance(image, Image.Image) and image.size == (100, 150)
    assert out.intermediates[0]["working_image"].size == working.images[0].size
    np.testing.assert_array_equal(np.asarray(out.intermediates[0]["working_image"]), np.asarray(working.images[0]))
    # Outside the regenerated region, the original photo's pixels are returned exactly.
    mask = np.asarray(out.intermediates[0]["inpaint_mask"], dtype=np.float32)
    canvas_untouched = mask < 0.5
    assert canvas_untouched.any()
    same = (np.asarray(image) == person).all(axis=2)
    assert same.mean() > 0.3  # everything but the regenerated upper body is the untouched photo
