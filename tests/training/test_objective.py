"""mvvton.training.objective: the loss terms, x̂0 for each parametrisation, Min-SNR weights, pre-warp dropout."""

import pytest
import torch

from mvvton.data.synthetic import SyntheticTryOnDataset
from mvvton.errors import InvalidConfigError
from mvvton.training.components import build_components
from mvvton.training.config import LossConfig, ModelConfig
from mvvton.training.objective import (
    MVVTONTrainingModule,
    compute_training_loss,
    min_snr_weights,
    predicted_original,
    timestep_range,
)
from mvvton.training.trainable import select_trainable


def test_objective_terms(tiny_components, tiny_module_and_batch):
    select_trainable(tiny_components, "paper")
    c = tiny_components
    module, batch = tiny_module_and_batch
    args = (module, c["vae"], c["scheduler"], batch)
    full = compute_training_loss(*args, LossConfig(), ModelConfig(), 32, generator=torch.Generator().manual_seed(0))
    expected = full["eps_loss"] + 0.1 * full["warped_start_x0_loss"]
    assert torch.allclose(full["loss"].detach(), expected, atol=1e-6)
    eps_only = compute_training_loss(
        *args, LossConfig(pixel_weight=0), ModelConfig(), 32, generator=torch.Generator().manual_seed(0)
    )
    assert "warped_start_x0_loss" not in eps_only
    assert torch.allclose(eps_only["eps_loss"], full["eps_loss"])  # the same draws for the main pass
    full["loss"].backward()
    grads = [p.grad for p in c["garment_encoder"].parameters() if p.grad is not None]
    assert grads  # reached through the graph (values are 0 while the joint-attention gates are 0)


@pytest.mark.parametrize("prediction_type", ["epsilon", "v_prediction", "sample"])
def test_predicted_original_inverts_the_forward_process(prediction_type):
    from diffusers import DDPMScheduler

    scheduler = DDPMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012)
    generator = torch.Generator().manual_seed(0)
    clean = torch.randn(3, 4, 8, 6, generator=generator)
    noise = torch.randn(3, 4, 8, 6, generator=generator)
    timesteps = torch.tensor([0, 500, 999])
    noisy = scheduler.add_noise(clean, noise, timesteps)
    exact_output = {"epsilon": noise, "sample": clean}.get(prediction_type)
    if exact_output is None:
        exact_output = scheduler.get_velocity(clean, noise, timesteps)
    x0 = predicted_original(noisy, exact_output, scheduler.alphas_cumprod[timesteps], prediction_type)
    assert torch.allclose(x0, clean, atol=1e-3)
    with pytest.raises(ValueError):
        predicted_original(noisy, exact_output, scheduler.alphas_cumprod[timesteps], "flow")


@pytest.mark.parametrize("prediction_type", ["epsilon", "v_prediction", "sample"])
def test_min_snr_weights_equal_clipped_snr_times_x0_error(prediction_type):
    """weight x MSE(output) == min(SNR, γ) x MSE(x̂0) for any output error, whatever the parametrisation."""
    from diffusers import DDPMScheduler

    scheduler = DDPMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012)
    timesteps = torch.tensor([1, 300, 999])
    alphas_cumprod = scheduler.alphas_cumprod[timesteps]
    noisy = torch.randn(3, 4, 8, 6)
    output, error = torch.randn(3, 4, 8, 6), 0.1 * torch.randn(3, 4, 8, 6)
    output_mse = error.pow(2).mean(dim=(1, 2, 3))
    x0_error = predicted_original(noisy, output + error, alphas_cumprod, prediction_type) - predicted_original(
        noisy, output, alphas_cumprod, prediction_type
    )
    snr = alphas_cumprod / (1 - alphas_cumprod)
    expected = snr.clamp(max=5.0) * x0_error.pow(2).mean(dim=(1, 2, 3))
    weighted = min_snr_weights(alphas_cumprod, 5.0, prediction_type) * output_mse
    assert torch.allclose(weighted, expected, rtol=1e-3)


def test_prediction_type_sets_the_scheduler_and_the_target(repo_root, tiny_components, tiny_module_and_batch):
    configs = str(repo_root / "configs/model/tiny")
    v_components = build_components(ModelConfig(component_configs=configs, prediction_type="v_prediction"), seed=0)
    assert v_components["scheduler"].config.prediction_type == "v_prediction"
    with pytest.raises(ValueError, match="prediction_type"):
        build_components(ModelConfig(component_configs=configs, prediction_type="flow"), seed=0)
    c = tiny_components
    module, batch = tiny_module_and_batch
    losses = {}
    for name, scheduler in [("epsilon", c["scheduler"]), ("v_prediction", v_components["scheduler"])]:
        with torch.no_grad():
            losses[name] = compute_training_loss(
                module, c["vae"], scheduler, batch, LossConfig(pixel_weight=0), ModelConfig(), 32,
                generator=torch.Generator().manual_seed(0),
            )["eps_loss"]  # fmt: skip
    # same draws and same network output, different regression target
    assert torch.isfinite(losses["v_prediction"]) and not torch.allclose(losses["epsilon"], losses["v_prediction"])


def test_prewarp_dropout_replaces_the_composite_by_the_agnostic(tiny_components, tiny_module_and_batch):
    c = tiny_components
    module, batch = tiny_module_and_batch
    scrambled = {**batch, "inpaint_image": batch["inpaint_image"].flip(-1)}  # a different "pre-warp"

    def loss(sample_batch, prob):
        with torch.no_grad():
            return compute_training_loss(
                module, c["vae"], c["scheduler"], sample_batch, LossConfig(prewarp_dropout_prob=prob), ModelConfig(),
                32, generator=torch.Generator().manual_seed(0),
            )["loss"]  # fmt: skip

    # always dropped: the composite is never read, only the agnostic person
    assert torch.equal(loss(batch, 1.0), loss(scrambled, 1.0))
    # never dropped: the composite matters
    assert not torch.allclose(loss(batch, 0.0), loss(scrambled, 0.0))


class _TimestepRecorder(torch.nn.Module):
    """Passes through to the training module and keeps the denoiser timesteps it was called with."""

    def __init__(self, module):
        super().__init__()
        self.module = module
        self.seen: list[torch.Tensor] = []

    def forward(self, samples, timesteps, *args, **kwargs):
        self.seen.append(timesteps.clone())
        return self.module(samples, timesteps, *args, **kwargs)


def test_timestep_range_bounds_the_training_timesteps(tiny_components):
    c = tiny_components
    recorder = _TimestepRecorder(
        MVVTONTrainingModule(c["unet"], c["garment_encoder"], c["pose_encoder"], c["image_encoder"])
    )
    dataset = SyntheticTryOnDataset(4, 64, 64)
    batch = torch.utils.data.default_collate([dataset[i] for i in range(4)])

    def losses(loss_cfg, seed):
        with torch.no_grad():
            return compute_training_loss(
                recorder, c["vae"], c["scheduler"], batch, loss_cfg, ModelConfig(), 32,
                generator=torch.Generator().manual_seed(seed),
            )  # fmt: skip

    for seed in range(6):
        losses(LossConfig(pixel_weight=0, min_timestep=100, max_timestep=103), seed)
    drawn = torch.cat(recorder.seen)
    assert drawn.min() >= 100 and drawn.max() <= 103
    assert len(set(drawn.tolist())) > 1  # a range, not one value

    # the full range written out draws exactly what the default (released) draw does
    recorder.seen.clear()
    default = losses(LossConfig(pixel_weight=0), 3)["loss"]
    explicit = losses(LossConfig(pixel_weight=0, min_timestep=0, max_timestep=999), 3)["loss"]
    assert torch.equal(recorder.seen[0], recorder.seen[1]) and torch.equal(default, explicit)


def test_timestep_range_outside_the_scheduler_is_a_config_error(tiny_components):
    c = tiny_components
    with pytest.raises(InvalidConfigError, match="must lie in"):
        timestep_range(LossConfig(max_timestep=1000), c["scheduler"].config.num_train_timesteps)
    with pytest.raises(InvalidConfigError, match="must lie in"):  # no max given: min alone past the scheduler
        timestep_range(LossConfig(min_timestep=1000), 1000)
    with pytest.raises(InvalidConfigError, match="must not exceed"):
        LossConfig(min_timestep=600, max_timestep=500)
    with pytest.raises(InvalidConfigError, match="min_timestep"):
        LossConfig(min_timestep=-1)
    assert timestep_range(LossConfig(min_timestep=10), 1000) == (10, 999)
