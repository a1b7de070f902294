"""`strength` (img2img-style start from the noised pre-warp) and a TinyAutoencoderModel as the pipeline's VAE."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from diffusers import EulerDiscreteScheduler

from mvvton.errors import InvalidArgumentError, InvalidArgumentTypeError
from mvvton.models import TinyAutoencoderModel
from mvvton.pipelines import MVVTONPipeline
from tests.pipelines.test_pipeline_mvvton import dummy_inputs, make_pipe
from tests.testing_utils import get_dummy_components


@pytest.fixture(scope="module")
def pipe() -> MVVTONPipeline:
    return make_pipe()


@pytest.fixture(scope="module")
def tiny_autoencoder_pipe() -> MVVTONPipeline:
    torch.manual_seed(0)
    vae = TinyAutoencoderModel(latent_channels=4, block_out_channels=(8, 8, 8, 8), encoder_blocks_per_stage=(1, 1, 1, 1),
                               decoder_blocks_per_stage=(1, 1, 1, 1), pool_channels=8, scaling_factor=1.3)  # fmt: skip
    pipe = MVVTONPipeline(**{**get_dummy_components(), "vae": vae})
    pipe.set_progress_bar_config(disable=True)
    return pipe


def count_steps(pipe: MVVTONPipeline, **overrides) -> list[int]:
    timesteps: list[int] = []

    def record(_pipe, _i, t, kwargs):
        timesteps.append(int(t))
        return kwargs

    pipe(**dummy_inputs(**overrides), callback_on_step_end=record)
    return timesteps


@pytest.mark.parametrize("strength", [0.0, -0.5, 1.5, math.nan, math.inf])
def test_out_of_range_strength_is_refused(pipe, strength):
    with pytest.raises(InvalidArgumentError, match="strength"):
        pipe(**dummy_inputs(strength=strength))


@pytest.mark.parametrize("strength", ["0.5", True, [0.5]])
def test_non_numeric_strength_is_refused(pipe, strength):
    with pytest.raises(InvalidArgumentTypeError, match="strength"):
        pipe(**dummy_inputs(strength=strength))


def test_strength_needs_enough_steps_and_the_warped_start(pipe):
    with pytest.raises(InvalidArgumentError, match="no denoising step"):
        pipe(**dummy_inputs(strength=0.1, num_inference_steps=5))
    with pytest.raises(InvalidArgumentError, match="start_from_warped"):
        pipe(**dummy_inputs(strength=0.5, start_from_warped=False))


def test_strength_runs_the_last_steps(pipe):
    full = count_steps(pipe, num_inference_steps=10)
    assert count_steps(pipe, num_inference_steps=10, strength=1.0) == full
    assert count_steps(pipe, num_inference_steps=10, strength=0.3) == full[-3:]
    assert pipe.num_timesteps == 3


def test_default_strength_is_the_released_sampler(pipe):
    assert pipe.config.default_strength == 1.0
    a = pipe(**dummy_inputs(num_inference_steps=4)).images
    b = pipe(**dummy_inputs(num_inference_steps=4, strength=1.0)).images
    assert np.array_equal(a, b)


def test_low_strength_keeps_the_prewarp(tiny_autoencoder_pipe):
    """At strength 0.05 (one step from t = 1) the result is the pre-warp's latent; at 1 it is not. The deterministic
    autoencoder makes the pre-warp latent exact (an AutoencoderKL would sample its posterior)."""
    pipe = tiny_autoencoder_pipe
    inputs = dummy_inputs(num_inference_steps=20, output_type="latent")
    warped = torch.from_numpy(np.asarray(inputs["warped_garment"], dtype=np.float32) / 127.5 - 1).permute(2, 0, 1)
    with torch.no_grad():
        prewarp_latents = pipe.vae.encode(warped[None]).latents * pipe.vae.config.scaling_factor
    low = pipe(**{**inputs, "strength": 0.05}).images
    high = pipe(**{**inputs, "strength": 1.0, "generator": torch.Generator().manual_seed(0)}).images
    assert (low - prewarp_latents).abs().mean() < 0.2 * (high - prewarp_latents).abs().mean()


def test_config_default_strength_round_trip(tmp_path):
    pipe = make_pipe(default_strength=0.5)
    pipe.save_pretrained(tmp_path)
    loaded = MVVTONPipeline.from_pretrained(tmp_path)
    loaded.set_progress_bar_config(disable=True)
    assert loaded.config.default_strength == 0.5
    assert count_steps(loaded, num_inference_steps=10) == count_steps(loaded, num_inference_steps=10, strength=0.5)
    assert len(count_steps(loaded, num_inference_steps=10)) == 5
    with pytest.raises(InvalidArgumentError, match="default_strength"):
        make_pipe(default_strength=2.0)


def test_strength_with_a_sigma_scheduler(pipe):
    euler = make_pipe()
    euler.scheduler = EulerDiscreteScheduler.from_config(euler.scheduler.config)
    images = euler(**dummy_inputs(num_inference_steps=6, strength=0.5)).images
    assert euler.num_timesteps == 3 and np.isfinite(images).all()


def test_pipeline_with_tiny_autoencoder(tiny_autoencoder_pipe, tmp_path):
    """A TinyAutoencoderModel is used like any VAE: latent size from its block_out_channels, save / load."""
    pipe = tiny_autoencoder_pipe
    assert pipe.vae_scale_factor == 8
    latents = pipe(**dummy_inputs(output_type="latent")).images
    assert latents.shape == (1, 4, 8, 8)
    images = pipe(**dummy_inputs(strength=0.5, num_inference_steps=4)).images
    assert images.shape == (1, 64, 64, 3) and np.isfinite(images).all()
    pipe.save_pretrained(tmp_path)
    loaded = MVVTONPipeline.from_pretrained(tmp_path)
    loaded.set_progress_bar_config(disable=True)
    assert isinstance(loaded.vae, TinyAutoencoderModel) and loaded.vae.config.scaling_factor == 1.3
    assert np.abs(loaded(**dummy_inputs(strength=0.5, num_inference_steps=4)).images - images).max() < 1e-5
