"""Every bad call argument gets a typed `MVVTONError` (also the matching builtin) before any work starts.

One regression test per case found by trying the pipeline as a new user would (issue 11)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from mvvton.errors import (
    ImageNotFoundError,
    InvalidArgumentError,
    InvalidArgumentTypeError,
    ModelLoadError,
    MVVTONError,
    NonFiniteResultError,
    SizeBudgetError,
)
from mvvton.pipelines import MVVTONPipeline
from tests.pipelines.test_pipeline_mvvton import dummy_inputs, make_pipe
from tests.testing_utils import get_dummy_components, synthetic_image


@pytest.fixture(scope="module")
def pipe() -> MVVTONPipeline:
    return make_pipe()


def _fails_before_work(pipe: MVVTONPipeline, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make any model or preprocessing work fail loudly, so a test proves the check ran first."""

    def forbidden(*args, **kwargs):
        raise AssertionError("model or preprocessing work started before validation finished")

    monkeypatch.setattr(pipe, "preprocess_inputs", forbidden)
    monkeypatch.setattr(pipe, "encode_garments", forbidden)


@pytest.mark.parametrize(
    ("overrides", "error", "match"),
    [
        ({"num_inference_steps": 0}, InvalidArgumentError, "num_inference_steps"),
        ({"num_inference_steps": -1}, InvalidArgumentError, "num_inference_steps"),
        ({"num_inference_steps": 2.5}, InvalidArgumentTypeError, "num_inference_steps"),
        ({"num_inference_steps": "2"}, InvalidArgumentTypeError, "num_inference_steps"),
        ({"num_inference_steps": True}, InvalidArgumentTypeError, "num_inference_steps"),
        ({"num_inference_steps": 10**6}, InvalidArgumentError, r"1\.\.1000"),
        ({"height": -128}, InvalidArgumentError, "height"),
        ({"height": 128.0}, InvalidArgumentTypeError, "height"),
        ({"width": 0}, InvalidArgumentError, "width"),
        ({"height": 4096, "width": 4096}, SizeBudgetError, "max_working_pixels"),
        ({"num_images_per_prompt": 0}, InvalidArgumentError, "num_images_per_prompt"),
        ({"generator": 42}, InvalidArgumentTypeError, "torch.Generator"),
        ({"generator": [torch.Generator()] * 3}, InvalidArgumentError, "generators"),
        ({"latents": torch.zeros(1, 4, 3, 3)}, InvalidArgumentError, "latents"),
        ({"latents": np.zeros((1, 4, 8, 8))}, InvalidArgumentTypeError, "latents"),
        ({"guidance_scale": float("nan")}, InvalidArgumentError, "guidance_scale"),
        ({"guidance_scale": float("inf")}, InvalidArgumentError, "guidance_scale"),
        ({"guidance_scale": -1.0}, InvalidArgumentError, "guidance_scale"),
        ({"eta": float("nan")}, InvalidArgumentError, "eta"),
        ({"eta": 1.5}, InvalidArgumentError, "eta"),
        ({"output_type": "jpeg"}, InvalidArgumentError, "output_type"),
        ({"view": "sideways"}, InvalidArgumentError, "view"),
        ({"view": []}, InvalidArgumentError, "view"),
        ({"person": []}, InvalidArgumentError, "person"),
        ({"person": None}, InvalidArgumentError, "person"),
        ({"person": 42}, InvalidArgumentTypeError, "person"),
        ({"person": "/no/such/photo.jpg"}, ImageNotFoundError, "no such image file"),
        ({"person": torch.full((3, 64, 64), float("nan"))}, InvalidArgumentError, "NaN"),
        ({"person": np.zeros((3, 64, 64), np.uint8)}, InvalidArgumentError, "channels-first"),
        ({"person": np.full((64, 64, 3), 2.0, np.float32)}, InvalidArgumentError, r"\[0, 1\]"),
        ({"mask_image": np.full((64, 64), np.nan, np.float32)}, InvalidArgumentError, "NaN"),
        ({"mask_image": np.full((64, 64), 3.0, np.float32)}, InvalidArgumentError, "mask"),
        ({"person_keypoints": np.zeros((6, 9))}, InvalidArgumentError, r"\(18, 3\)"),
        ({"person_keypoints": np.full((18, 3), np.nan)}, InvalidArgumentError, "NaN"),
        ({"garment_timestep": 1000}, InvalidArgumentError, "garment_timestep"),
        ({"paste_back": "no"}, InvalidArgumentTypeError, "paste_back"),
        ({"callback_on_step_end": 3}, InvalidArgumentTypeError, "callback_on_step_end"),
        ({"callback_on_step_end_tensor_inputs": ["noise"]}, InvalidArgumentError, "callback"),
        ({"mask_image": None}, InvalidArgumentError, "mask_image"),
    ],
)
def test_bad_argument_is_typed_and_rejected_before_work(pipe, monkeypatch, overrides, error, match):
    _fails_before_work(pipe, monkeypatch)
    with pytest.raises(error, match=match) as raised:
        pipe(**dummy_inputs(**overrides))
    assert isinstance(raised.value, MVVTONError)
    assert "0x" not in str(raised.value)  # never an object repr with a memory address


def test_directory_as_person_is_named_a_directory(pipe, monkeypatch, tmp_path):
    _fails_before_work(pipe, monkeypatch)
    with pytest.raises(InvalidArgumentError, match="is a directory"):
        pipe(**dummy_inputs(person=str(tmp_path)))


def test_mismatched_batch_lists_never_drop_samples(pipe, monkeypatch):
    _fails_before_work(pipe, monkeypatch)
    two = [synthetic_image(1), synthetic_image(2)]
    three = [synthetic_image(3), synthetic_image(4), synthetic_image(5)]
    with pytest.raises(InvalidArgumentError, match="garment_front"):
        pipe(**dummy_inputs(person=two, garment_front=three))


def test_keypoint_shape_is_never_reshaped(pipe, monkeypatch):
    _fails_before_work(pipe, monkeypatch)
    with pytest.raises(InvalidArgumentError, match=r"got \(6, 9\)"):
        pipe(**dummy_inputs(view="auto", person_keypoints=np.ones((6, 9), np.float32)))


def test_budget_can_be_raised_per_call(pipe):
    """The budget is a pipeline setting the caller may raise: 128x64 fails under a 4096-pixel budget and runs above."""
    with pytest.raises(SizeBudgetError):
        pipe(**dummy_inputs(height=128, width=64, max_working_pixels=4096))
    images = pipe(**dummy_inputs(height=128, width=64, max_working_pixels=128 * 64)).images
    assert images.shape == (1, 128, 64, 3)


def test_torch_tensors_are_accepted_in_both_ranges(pipe):
    """A CHW tensor in [0, 1] and the same in [-1, 1] give the same result (diffusers' tensor convention)."""
    person = torch.from_numpy(np.array(synthetic_image(0))).permute(2, 0, 1).float() / 255
    unit = pipe(**dummy_inputs(person=person)).images
    signed = pipe(**dummy_inputs(person=person * 2 - 1)).images
    assert np.isfinite(unit).all() and np.abs(unit - signed).max() < 1e-5


def test_non_finite_latents_stop_sampling_with_the_step(pipe):
    def poison(pipeline, step, timestep, tensors):
        return {"latents": torch.full_like(tensors["latents"], float("nan"))}

    with pytest.raises(NonFiniteResultError, match="step 2/3"):
        pipe(**dummy_inputs(num_inference_steps=3, callback_on_step_end=poison))


def test_valid_call_still_returns_finite_images(pipe):
    images = pipe(**dummy_inputs(num_inference_steps=2, eta=0.5, guidance_scale=2.0)).images
    assert images.shape == (1, 64, 64, 3) and np.isfinite(images).all()


def test_multiview_pipeline_without_pose_encoder_fails_at_construction():
    with pytest.raises(InvalidArgumentError, match="pose_encoder"):
        MVVTONPipeline(**{**get_dummy_components(), "pose_encoder": None})


def test_tiny_autoencoder_works_through_retrieve_latents():
    """diffusers' other autoencoders (no `latent_dist`) work: latents come through `retrieve_latents`."""
    from diffusers import AutoencoderTiny

    torch.manual_seed(0)
    vae = AutoencoderTiny(
        encoder_block_out_channels=(8, 8, 8, 8), decoder_block_out_channels=(8, 8, 8, 8), latent_channels=4,
        num_encoder_blocks=(1, 1, 1, 1), num_decoder_blocks=(1, 1, 1, 1),
    )  # fmt: skip
    pipe = make_pipe(vae=vae)
    images = pipe(**dummy_inputs()).images
    assert images.shape == (1, 64, 64, 3) and np.isfinite(images).all()


def test_missing_back_warning_reaches_intermediates_and_points_at_the_caller(pipe):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = pipe(**dummy_inputs(garment_back=None, garment_back_pose_image=None), return_intermediates=True)
    messages = [w for w in caught if "garment_back" in str(w.message)]
    assert messages and messages[0].filename == __file__
    assert any("garment_back" in note for note in result.intermediates[0]["warnings"])


def test_corrupt_model_folder_is_a_typed_load_error(pipe, tmp_path):
    pipe.save_pretrained(tmp_path / "model")
    (tmp_path / "model" / "model_index.json").write_text("{ not json")
    with pytest.raises(ModelLoadError, match="model_index.json"):
        MVVTONPipeline.from_pretrained(tmp_path / "model")
    with pytest.raises(ModelLoadError, match="does not exist"):
        MVVTONPipeline.from_pretrained(tmp_path / "missing")


def _image_forms(tmp_path_factory) -> dict:
    image = synthetic_image(7)
    path = tmp_path_factory.mktemp("forms") / "image.png"
    image.save(path)
    return {
        "pil_L": image.convert("L"), "pil_RGBA": image.convert("RGBA"), "pil_P": image.convert("P"),
        "pil_CMYK": image.convert("CMYK"), "np_gray": np.asarray(image.convert("L")),
        "np_rgba": np.asarray(image.convert("RGBA")), "np_uint16": np.asarray(image).astype(np.uint16) * 257,
        "tensor_1ch": torch.rand(1, 64, 64), "tensor_bool": torch.rand(3, 64, 64) > 0.5,
        "tensor_uint8": torch.from_numpy(np.array(image)).permute(2, 0, 1), "path": str(path),
        "bytes": path.read_bytes(),
    }  # fmt: skip


@pytest.mark.parametrize(
    "target", ["person", "garment_front", "warped_garment", "mask_image", "pose_image", "garment_front_mask"]
)
def test_every_accepted_image_form_works_for_every_image_argument(pipe, tmp_path_factory, target):
    """Modes and layouts that used to reach the VAE raw (1 or 4 channels, bool, uint16, paths, bytes) now give a
    valid result: every image is brought to RGB (masks to one channel) before `VaeImageProcessor`."""
    for form, value in _image_forms(tmp_path_factory).items():
        images = pipe(**dummy_inputs(**{target: value, "num_inference_steps": 1})).images
        assert images.shape == (1, 64, 64, 3) and np.isfinite(images).all(), (target, form)
