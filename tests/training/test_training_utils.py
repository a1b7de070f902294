"""Unit tests of mvvton.training_utils helpers (conditioning, objective pieces, trainable groups, VGG, PbE import)."""

import pytest
import torch

from mvvton.training_utils import (
    CLIP_IMAGE_MEAN,
    CLIP_IMAGE_STD,
    EpochSeededSampler,
    LossConfig,
    ModelConfig,
    MVVTONTrainingModule,
    SyntheticTryOnDataset,
    VGG19Features,
    build_components,
    clip_garment_crop,
    compute_training_loss,
    drop_global_tokens,
    load_vgg,
    min_snr_weights,
    optimizer_param_groups,
    predicted_original,
    select_garment_view,
    select_trainable,
    vae_training_loss,
)


def test_clip_crop_follows_the_mask():
    images = -torch.ones(2, 3, 64, 48)
    images[:, 0, 20:40, 10:30] = 1.0  # a red square where the mask is
    masks = torch.zeros(2, 1, 64, 48)
    masks[:, :, 20:40, 10:30] = 1.0
    masks[1] = 0  # empty mask: whole image
    pixels = clip_garment_crop(images, masks, 32, (0.0, 0.0))
    assert pixels.shape == (2, 3, 32, 32)
    unnormalised = pixels * torch.tensor(CLIP_IMAGE_STD).view(1, 3, 1, 1) + torch.tensor(CLIP_IMAGE_MEAN).view(
        1, 3, 1, 1
    )
    assert torch.allclose(unnormalised[0, 0], torch.ones(32, 32), atol=1e-4)  # tight crop = all red
    assert unnormalised[1, 0].mean() < 0.3  # the whole (mostly black) image
    enlarged = clip_garment_crop(images[:1], masks[:1], 32, (0.5, 0.5))
    un = enlarged * torch.tensor(CLIP_IMAGE_STD).view(1, 3, 1, 1) + torch.tensor(CLIP_IMAGE_MEAN).view(1, 3, 1, 1)
    assert un[0, 0, 0, 0] < 0.1 and un[0, 0, 16, 16] > 0.9  # border now outside the garment


def test_hard_selection_picks_the_routed_view():
    batch = {
        "garment_front": torch.zeros(2, 3, 4, 4), "garment_back": torch.ones(2, 3, 4, 4),
        "garment_front_mask": torch.zeros(2, 1, 4, 4), "garment_back_mask": torch.ones(2, 1, 4, 4),
        "garment_view": ["back", "front"],
    }  # fmt: skip
    image, mask = select_garment_view(batch)
    assert image[0].eq(1).all() and image[1].eq(0).all() and mask[0].eq(1).all() and mask[1].eq(0).all()


def test_global_token_dropout_per_sample_and_per_batch():
    tokens, uncond = torch.ones(4000, 1, 8), torch.zeros(1, 1, 8)
    generator = torch.Generator().manual_seed(0)
    out, dropped = drop_global_tokens(tokens, uncond, 0.2, "per_sample", generator)
    assert 0.17 < dropped.float().mean() < 0.23
    assert torch.equal(out[dropped], torch.zeros_like(out[dropped])) and out[~dropped].eq(1).all()
    outcomes = {bool(drop_global_tokens(tokens[:4], uncond, 0.5, "per_batch", generator)[1].all()) for _ in range(50)}
    for _ in range(20):
        flags = drop_global_tokens(tokens[:4], uncond, 0.5, "per_batch", generator)[1]
        assert flags.all() or not flags.any()  # one draw for the whole batch
    assert outcomes == {True, False}


def test_sampler_order_depends_on_seed_and_epoch_only():
    a, b = EpochSeededSampler(10, seed=3), EpochSeededSampler(10, seed=3)
    a.set_epoch(2)
    b.set_epoch(2)
    assert list(a) == list(b) and sorted(a) == list(range(10))
    b.set_epoch(3)
    assert list(a) != list(b)


@pytest.fixture(scope="module")
def tiny_components(repo_root):
    return build_components(ModelConfig(component_configs=str(repo_root / "configs/model/tiny")), seed=0)


def test_trainable_groups(tiny_components):
    paper = select_trainable(tiny_components, "paper")
    assert set(paper) == {"decoder_attention", "garment_encoder", "soft_selection", "pose_encoder"}
    assert all(name.startswith("unet.up_blocks.") for name in paper["decoder_attention"])
    assert any(".processor.to_k_ip." in name for name in paper["decoder_attention"])
    assert all("pose_projections" in name for name in paper["soft_selection"])
    assert not any(p.requires_grad for p in tiny_components["vae"].parameters())
    assert not any(p.requires_grad for p in tiny_components["unet"].down_blocks.parameters())
    released = select_trainable(tiny_components, "released")
    assert set(released) == {"decoder_attention"}
    assert not any(p.requires_grad for p in tiny_components["garment_encoder"].parameters())
    everything = select_trainable(tiny_components, "all")
    assert "image_encoder_mapper" in everything
    assert not any(p.requires_grad for p in tiny_components["image_encoder"].vision_model.parameters())
    with pytest.raises(ValueError):
        select_trainable(tiny_components, "most")


def test_objective_terms(tiny_components):
    select_trainable(tiny_components, "paper")
    c = tiny_components
    module = MVVTONTrainingModule(c["unet"], c["garment_encoder"], c["pose_encoder"], c["image_encoder"])
    dataset = SyntheticTryOnDataset(2, 64, 64)
    batch = torch.utils.data.default_collate([dataset[0], dataset[1]])
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


def test_vgg_weights_loading_and_loss(tmp_path):
    vgg = VGG19Features("torchvision")
    torchvision_keys = {}
    index = 0
    for stage, count in enumerate(VGG19Features.LAYERS, start=1):
        for layer in range(1, count + 1):
            conv = getattr(vgg, f"conv{stage}_{layer}")
            torchvision_keys[f"features.{index}.weight"] = torch.randn_like(conv.weight) * 0.05
            torchvision_keys[f"features.{index}.bias"] = torch.zeros_like(conv.bias)
            index += 2
        index += 1
    path = tmp_path / "vgg19.pth"
    torch.save(torchvision_keys, path)
    loaded = load_vgg(str(path), "torchvision")
    assert torch.equal(loaded.conv5_4.weight, torchvision_keys["features.34.weight"])
    images = torch.rand(1, 3, 32, 32) * 2 - 1
    assert loaded.perceptual_loss(images, images).item() == 0
    assert loaded.perceptual_loss(images, -images).item() > 0
    assert [f.shape[1] for f in loaded(images)] == [64, 128, 256, 512, 512]
    with pytest.warns(UserWarning, match="skipped"):
        assert load_vgg(str(tmp_path / "missing.pth")) is None


def test_vae_loss_backpropagates(tiny_components):
    vae = tiny_components["vae"]
    vae.requires_grad_(True)
    images = torch.rand(2, 3, 32, 32) * 2 - 1
    out = vae_training_loss(vae, images, "l1", 1e-6, torch.Generator().manual_seed(0))
    out["loss"].backward()
    assert vae.encoder.conv_in.weight.grad is not None and out["kl_loss"] > 0
    vae.requires_grad_(False)


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


def test_prediction_type_sets_the_scheduler_and_the_target(repo_root, tiny_components):
    configs = str(repo_root / "configs/model/tiny")
    v_components = build_components(ModelConfig(component_configs=configs, prediction_type="v_prediction"), seed=0)
    assert v_components["scheduler"].config.prediction_type == "v_prediction"
    with pytest.raises(ValueError, match="prediction_type"):
        build_components(ModelConfig(component_configs=configs, prediction_type="flow"), seed=0)
    c = tiny_components
    module = MVVTONTrainingModule(c["unet"], c["garment_encoder"], c["pose_encoder"], c["image_encoder"])
    dataset = SyntheticTryOnDataset(2, 64, 64)
    batch = torch.utils.data.default_collate([dataset[0], dataset[1]])
    losses = {}
    for name, scheduler in [("epsilon", c["scheduler"]), ("v_prediction", v_components["scheduler"])]:
        with torch.no_grad():
            losses[name] = compute_training_loss(
                module, c["vae"], scheduler, batch, LossConfig(pixel_weight=0), ModelConfig(), 32,
                generator=torch.Generator().manual_seed(0),
            )["eps_loss"]  # fmt: skip
    # same draws and same network output, different regression target
    assert torch.isfinite(losses["v_prediction"]) and not torch.allclose(losses["epsilon"], losses["v_prediction"])


def test_prewarp_dropout_replaces_the_composite_by_the_agnostic(tiny_components):
    c = tiny_components
    module = MVVTONTrainingModule(c["unet"], c["garment_encoder"], c["pose_encoder"], c["image_encoder"])
    dataset = SyntheticTryOnDataset(2, 64, 64)
    batch = torch.utils.data.default_collate([dataset[0], dataset[1]])
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


def test_gate_learning_rate_group(tiny_components):
    c = tiny_components
    select_trainable(c, "paper")
    module = MVVTONTrainingModule(c["unet"], c["garment_encoder"], c["pose_encoder"], c["image_encoder"])
    trainable = {id(p) for p in module.parameters() if p.requires_grad}
    single = optimizer_param_groups(module, 1e-4, 0.01)
    assert len(single) == 1 and {id(p) for p in single[0]["params"]} == trainable
    base, gates = optimizer_param_groups(module, 1e-4, 0.01, gate_lr_multiplier=50.0)
    gate_names = {name for name, p in module.named_parameters() if p.requires_grad and name.endswith("ip_scale")}
    assert gate_names and len(gates["params"]) == len(gate_names)
    assert gates["lr"] == pytest.approx(5e-3) and gates["weight_decay"] == 0.0 and base["lr"] == 1e-4
    assert {id(p) for p in base["params"] + gates["params"]} == trainable
    assert not any(any(p is g for g in gates["params"]) for p in base["params"])
