"""Fast solvers (DPM-Solver++ 2M / SDE, UniPC) with the released start (noised pre-warp) and with guidance."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from diffusers import DDIMScheduler, DPMSolverMultistepScheduler, UniPCMultistepScheduler

from mvvton.pipelines import MVVTONPipeline
from mvvton.pipelines.solvers import FAST_SOLVERS, fast_scheduler
from tests.pipelines.test_pipeline_mvvton import dummy_inputs, make_pipe


@pytest.fixture(scope="module")
def pipe() -> MVVTONPipeline:
    return make_pipe()


@pytest.mark.parametrize("solver", sorted(FAST_SOLVERS))
def test_fast_solver_starts_from_the_released_start(pipe, solver):
    """x_T = q_sample(E(warped composite), 999): the released start, exactly, for every fast solver."""
    scheduler = fast_scheduler(pipe.scheduler, solver)
    scheduler.set_timesteps(20)
    assert int(scheduler.timesteps[0]) == 999
    original, pipe.scheduler = pipe.scheduler, scheduler
    try:
        start = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(1))
        latents = pipe.prepare_latents(
            (1, 4, 8, 8), start, scheduler.timesteps, torch.Generator().manual_seed(2), None
        )
    finally:
        pipe.scheduler = original
    noise = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(2))
    alpha_bar = original.alphas_cumprod[999]
    expected = alpha_bar.sqrt() * start + (1 - alpha_bar).sqrt() * noise
    assert (latents - expected).abs().max().item() < 1e-5


@pytest.mark.parametrize("solver", sorted(FAST_SOLVERS))
def test_fast_solver_with_guidance_is_finite_deterministic_and_guided(solver):
    pipe = make_pipe()
    pipe.scheduler = fast_scheduler(pipe.scheduler, solver)
    guided = pipe(**dummy_inputs(num_inference_steps=4, guidance_scale=2.5, output_type="latent")).images
    again = pipe(**dummy_inputs(num_inference_steps=4, guidance_scale=2.5, output_type="latent")).images
    unguided = pipe(**dummy_inputs(num_inference_steps=4, guidance_scale=1.0, output_type="latent")).images
    assert torch.isfinite(guided).all()
    assert torch.equal(guided, again)
    assert (guided - unguided).abs().max().item() > 1e-3


def test_dpm_solver_converges_to_ddim_50_from_the_released_start():
    """Both integrate the same probability-flow ODE from the same start: 25 DPM-Solver++ steps land much closer to
    DDIM 50 than 5 DDIM steps do (with local tokens and guidance)."""
    pipe = make_pipe()
    common = dict(guidance_scale=2.0, output_type="latent")
    reference = pipe(**dummy_inputs(num_inference_steps=50, **common)).images
    coarse = pipe(**dummy_inputs(num_inference_steps=5, **common)).images
    pipe.scheduler = fast_scheduler(pipe.scheduler, "dpmpp_2m")
    fast = pipe(**dummy_inputs(num_inference_steps=25, **common)).images
    assert (fast - reference).abs().mean() < 0.5 * (coarse - reference).abs().mean()


def test_fast_scheduler_keeps_the_training_schedule_and_rejects_unknown_names(pipe):
    scheduler = fast_scheduler(pipe.scheduler, "unipc")
    assert isinstance(scheduler, UniPCMultistepScheduler)
    assert np.allclose(scheduler.alphas_cumprod.numpy(), pipe.scheduler.alphas_cumprod.numpy())
    assert scheduler.config.prediction_type == pipe.scheduler.config.prediction_type
    assert isinstance(fast_scheduler(pipe.scheduler, "dpmpp_sde"), DPMSolverMultistepScheduler)
    assert isinstance(fast_scheduler(pipe.scheduler, "ddim"), DDIMScheduler)
    with pytest.raises(ValueError, match="solver"):
        fast_scheduler(pipe.scheduler, "heun9000")
