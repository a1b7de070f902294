"""The MV-VTON training objective (mvvton-spec.md §6): the trainable components as one module, and the loss of one
batch (denoising MSE, optional Min-SNR-γ weighting, warped-start x̂0 pixel loss, VGG perceptual loss)."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from mvvton.errors import InvalidArgumentError, InvalidConfigError
from mvvton.training.conditioning import (
    cfg_dropout_mask,
    clip_garment_crop,
    draw_normal,
    draw_uniform,
    select_garment_view,
)
from mvvton.training.config import PREDICTION_TYPES, LossConfig, ModelConfig
from mvvton.training.detail_loss import detail_energy_loss, lowpass_mse, prewarp_hole_weight
from mvvton.training.perceptual import VGG19Features


class MVVTONTrainingModule(nn.Module):
    """The trainable components in one module (one DDP wrapper, one `accelerator.accumulate`).

    `forward` computes the global token (CLIP of the hard-selected crop, with classifier-free dropout applied by the
    caller through `drop`), the pose tokens, the local garment tokens, and the denoiser's ε for `repeats` stacked
    copies of the batch that share the conditioning (main pass + the auxiliary warped-start pass).
    """

    def __init__(self, unet: nn.Module, garment_encoder: nn.Module, pose_encoder: nn.Module, image_encoder: nn.Module):
        super().__init__()
        self.unet = unet
        self.garment_encoder = garment_encoder
        self.pose_encoder = pose_encoder
        self.image_encoder = image_encoder

    def forward(
        self,
        sample: torch.Tensor,
        timesteps: torch.Tensor,
        clip_pixels: torch.Tensor,
        drop: torch.Tensor,
        garment_images: torch.Tensor,
        garment_timesteps: torch.Tensor,
        skeleton_person: torch.Tensor,
        skeleton_garments: torch.Tensor,
        repeats: int = 1,
    ) -> torch.Tensor:
        """Predict ε.

        Args:
            sample: `(R*B, 9, h, w)` denoiser input, `R = repeats` copies of the batch stacked along dim 0.
            timesteps: `(R*B,)`.
            clip_pixels: `(B, 3, S, S)` CLIP-normalised hard-selected garment crop.
            drop: `(B,)` bool, True = use the unconditional vector instead of the global token.
            garment_images: `(B, V, 3, H, W)` in [-1, 1] (front first).
            garment_timesteps: `(B,)` timestep given to the garment encoder.
            skeleton_person: `(B, 3, H, W)`; skeleton_garments: `(B, V, 3, H, W)` in [-1, 1].
        Returns:
            `(R*B, 4, h, w)` predicted noise.
        """
        batch_size, num_views = garment_images.shape[:2]
        global_tokens = self.image_encoder(clip_pixels)  # (B, 1, D)
        uncond = self.image_encoder.unconditional_embeds(batch_size).to(global_tokens.dtype)
        global_tokens = torch.where(drop.view(-1, 1, 1), uncond, global_tokens)
        person_pose = self.pose_encoder(skeleton_person)  # (B, Np, D)
        garment_pose = self.pose_encoder(skeleton_garments.flatten(0, 1)).unflatten(0, (batch_size, num_views))
        local_tokens = self.garment_encoder(
            garment_images, garment_timesteps, person_pose_embeds=person_pose, garment_pose_embeds=garment_pose
        ).garment_tokens  # per level (B, V*N_k, D)
        if repeats > 1:
            global_tokens = global_tokens.repeat(repeats, 1, 1)
            local_tokens = [tokens.repeat(repeats, 1, 1) for tokens in local_tokens]
        return self.unet(sample, timesteps, global_tokens, garment_tokens=local_tokens).sample


def encode_latents(vae: nn.Module, images: torch.Tensor, sample_posterior: bool, generator: torch.Generator | None):
    """`(B, 3, H, W)` [-1, 1] -> `(posterior, scaled latent (B, 4, h, w))`; the latent is a posterior sample or mean."""
    posterior = vae.encode(images).latent_dist
    latents = posterior.sample(generator) if sample_posterior else posterior.mode()
    return posterior, latents * vae.config.scaling_factor


def keep_mask_latent(inpaint_mask: torch.Tensor, latent_size: tuple[int, int]) -> torch.Tensor:
    """`(B, 1, H, W)` regenerate-mask (1 = regenerate) -> keep-mask at latent size `(B, 1, h, w)` (bilinear)."""
    return F.interpolate(1.0 - inpaint_mask, size=latent_size, mode="bilinear", align_corners=False)


def predicted_original(
    noisy: torch.Tensor, model_output: torch.Tensor, alphas_cumprod: torch.Tensor, prediction_type: str
) -> torch.Tensor:
    """One-step x̂0 from `noisy` `(B, C, h, w)` and the denoiser output; `alphas_cumprod` is ᾱ_t per sample `(B,)`."""
    sqrt_alpha = alphas_cumprod.sqrt().view(-1, 1, 1, 1)
    sqrt_one_minus_alpha = (1 - alphas_cumprod).sqrt().view(-1, 1, 1, 1)
    if prediction_type == "epsilon":
        return (noisy - sqrt_one_minus_alpha * model_output) / sqrt_alpha
    if prediction_type == "v_prediction":
        return sqrt_alpha * noisy - sqrt_one_minus_alpha * model_output
    if prediction_type == "sample":
        return model_output
    raise InvalidArgumentError(f"unsupported prediction_type {prediction_type!r}; expected one of {PREDICTION_TYPES}")


def timestep_range(loss_cfg: LossConfig, num_train_timesteps: int) -> tuple[int, int]:
    """The inclusive `(low, high)` training timesteps of `loss_cfg`, checked against the scheduler's length
    (`LossConfig` itself already guarantees 0 <= min <= max).

    Raises:
        InvalidConfigError: `max_timestep` (or `min_timestep`) is not below `num_train_timesteps`.
    """
    low = loss_cfg.min_timestep
    high = num_train_timesteps - 1 if loss_cfg.max_timestep is None else loss_cfg.max_timestep
    if max(low, high) >= num_train_timesteps:
        raise InvalidConfigError(
            f"loss.min_timestep / loss.max_timestep = {low} / {loss_cfg.max_timestep} must lie in "
            f"[0, {num_train_timesteps - 1}] (the noise scheduler has {num_train_timesteps} timesteps)"
        )
    return low, high


def min_snr_weights(alphas_cumprod: torch.Tensor, gamma: float, prediction_type: str) -> torch.Tensor:
    """Min-SNR-γ loss weights `(B,)` that turn each parametrisation's MSE into min(SNR, γ)·MSE(x0)."""
    snr = alphas_cumprod / (1 - alphas_cumprod)
    clipped = snr.clamp(max=gamma)
    if prediction_type == "epsilon":
        return clipped / snr
    if prediction_type == "v_prediction":
        return clipped / (snr + 1)
    return clipped


def compute_training_loss(
    model: nn.Module,
    vae: nn.Module,
    noise_scheduler: Any,
    batch: dict[str, Any],
    loss_cfg: LossConfig,
    model_cfg: ModelConfig,
    clip_size: int,
    vgg: VGG19Features | None = None,
    generator: torch.Generator | None = None,
    weight_dtype: torch.dtype = torch.float32,
) -> dict[str, torch.Tensor]:
    """The MV-VTON objective of mvvton-spec.md §6 for one batch.

        loss = MSE(ε_θ(z_t), ε) + λ_pix · MSE(D(x̂0), x) + λ_vgg · VGG(D(x̂0), x)

    where x̂0 = (z'_t − √(1−ᾱ_t) ε_θ(z'_t)) / √ᾱ_t is the one-step prediction from `z'_t = q_sample(E(inpaint_image),
    t, ε')`, the noised *pre-warped composite* (same t, same conditioning; inherited from DCI-VTON), decoded by the
    frozen VAE with gradients. We call it `warped_start_x0_loss`: it is not a loss on the denoiser's own trajectory.
    With the scheduler's `prediction_type` = `v_prediction` / `sample` the first term regresses v = √ᾱ ε − √(1−ᾱ) z0 /
    z0 instead of ε (logged as `eps_loss` all the same) and x̂0 uses the matching formula; `snr_gamma` re-weights
    that term per sample by Min-SNR-γ.

    Args:
        model: `MVVTONTrainingModule` (possibly DDP-wrapped).
        batch: sample dict collated (`person`, `inpaint_image`, `inpaint_mask`, `garment_*`, `skeleton_*`,
            `garment_view`), tensors `(B, ...)` on the training device.
        clip_size: input size of the CLIP vision tower.
        generator: source of every random draw (timesteps, noise, posterior samples, dropout, crop jitter).
    Returns:
        dict with `loss` (scalar, differentiable) and detached `eps_loss`, `warped_start_x0_loss`, `vgg_loss`.
    """
    person = batch["person"].to(weight_dtype)
    device = person.device
    batch_size = person.shape[0]
    inpaint_image = batch["inpaint_image"]
    if loss_cfg.prewarp_dropout_prob > 0:  # drawn only when on, so the released objective's randomness is unchanged
        drop_prewarp = draw_uniform((batch_size,), generator, device) < loss_cfg.prewarp_dropout_prob
        inpaint_image = torch.where(drop_prewarp.view(-1, 1, 1, 1), batch["agnostic"], inpaint_image)

    with torch.no_grad():
        _, latents = encode_latents(vae, person, loss_cfg.sample_posterior, generator)
        inpaint_posterior = vae.encode(inpaint_image.to(weight_dtype)).latent_dist
        if loss_cfg.sample_posterior:
            inpaint_latents = inpaint_posterior.sample(generator) * vae.config.scaling_factor
            warped_latents = inpaint_posterior.sample(generator) * vae.config.scaling_factor  # E(warp_feat): 2nd draw
        else:
            inpaint_latents = warped_latents = inpaint_posterior.mode() * vae.config.scaling_factor
    latents, inpaint_latents, warped_latents = latents.float(), inpaint_latents.float(), warped_latents.float()
    keep_mask = keep_mask_latent(batch["inpaint_mask"].float(), tuple(latents.shape[-2:]))

    num_train_timesteps = noise_scheduler.config.num_train_timesteps
    low, high = timestep_range(loss_cfg, num_train_timesteps)
    # with the full range this is the released draw, floor(u x T) clamped to T - 1
    span = high - low + 1
    timesteps = low + (draw_uniform((batch_size,), generator, device) * span).long().clamp_max(span - 1)
    noise = draw_normal(tuple(latents.shape), generator, device)
    noisy_latents = noise_scheduler.add_noise(latents, noise, timesteps)
    samples = [torch.cat([noisy_latents, inpaint_latents, keep_mask], dim=1)]  # (B, 9, h, w)

    garment, garment_mask = select_garment_view(batch)
    clip_pixels = clip_garment_crop(
        garment.float(),
        garment_mask.float(),
        clip_size,
        (loss_cfg.clip_crop_enlarge_min, loss_cfg.clip_crop_enlarge_max),
        generator=generator,
    )
    drop = cfg_dropout_mask(batch_size, loss_cfg.cfg_dropout_prob, loss_cfg.cfg_dropout_mode, generator, device)
    # the auxiliary pass draws last, so switching it on or off leaves the main pass's randomness unchanged
    use_pixel_loss = (
        loss_cfg.pixel_weight > 0 or loss_cfg.detail_weight > 0 or (vgg is not None and loss_cfg.vgg_weight > 0)
    )
    if use_pixel_loss:
        warped_noise = draw_normal(tuple(latents.shape), generator, device)
        noisy_warped = noise_scheduler.add_noise(warped_latents, warped_noise, timesteps)
        samples.append(torch.cat([noisy_warped, inpaint_latents, keep_mask], dim=1))
    repeats = len(samples)
    if model_cfg.garment_timestep == "same":
        garment_timesteps = timesteps
    else:
        garment_timesteps = torch.full_like(timesteps, model_cfg.garment_fixed_timestep)

    garment_images = torch.stack([batch["garment_front"], batch["garment_back"]], dim=1).float()  # (B, 2, 3, H, W)
    skeleton_garments = torch.stack([batch["skeleton_front"], batch["skeleton_back"]], dim=1).float()
    model_output = model(
        torch.cat(samples).to(weight_dtype) if weight_dtype != torch.float32 else torch.cat(samples),
        timesteps.repeat(repeats),
        clip_pixels.to(weight_dtype),
        drop,
        garment_images,
        garment_timesteps,
        batch["skeleton_person"].float(),
        skeleton_garments,
        repeats=repeats,
    ).float()

    prediction_type = noise_scheduler.config.prediction_type
    alphas_cumprod = noise_scheduler.alphas_cumprod.to(device=device, dtype=torch.float32)[timesteps]
    if prediction_type == "epsilon":
        target = noise
    elif prediction_type == "v_prediction":
        target = noise_scheduler.get_velocity(latents, noise, timesteps)
    elif prediction_type == "sample":
        target = latents
    else:
        raise InvalidArgumentError(
            f"unsupported prediction_type {prediction_type!r}; expected one of {PREDICTION_TYPES}"
        )
    per_sample_mse = F.mse_loss(model_output[:batch_size], target, reduction="none").mean(dim=(1, 2, 3))  # (B,)
    if loss_cfg.snr_gamma is not None:
        per_sample_mse = per_sample_mse * min_snr_weights(alphas_cumprod, loss_cfg.snr_gamma, prediction_type)
    eps_loss = per_sample_mse.mean()
    loss = eps_loss
    losses = {"eps_loss": eps_loss.detach()}  # the denoising term, whatever the parametrisation
    if use_pixel_loss:
        predicted_x0 = predicted_original(noisy_warped, model_output[batch_size:], alphas_cumprod, prediction_type)
        decoded = vae.decode((predicted_x0 / vae.config.scaling_factor).to(weight_dtype)).sample.float()
        target_image = batch["person"].float()
        if loss_cfg.pixel_lowpass_sigma > 0:
            pixel_loss = lowpass_mse(decoded, target_image, loss_cfg.pixel_lowpass_sigma)
        else:
            pixel_loss = F.mse_loss(decoded, target_image)
        loss = loss + loss_cfg.pixel_weight * pixel_loss
        losses["warped_start_x0_loss"] = pixel_loss.detach()
        if loss_cfg.detail_weight > 0:
            detail_weight_map = None
            if loss_cfg.detail_skip_prewarp_holes:  # `inpaint_image` is after pre-warp dropout: dropped = all hole
                detail_weight_map = prewarp_hole_weight(
                    inpaint_image.float(), batch["agnostic"].float(), batch["inpaint_mask"].float()
                )
            detail_loss = detail_energy_loss(
                decoded, target_image, loss_cfg.detail_highpass_sigma, loss_cfg.detail_window_sigma, detail_weight_map
            )
            loss = loss + loss_cfg.detail_weight * detail_loss
            losses["detail_loss"] = detail_loss.detach()
        if vgg is not None and loss_cfg.vgg_weight > 0:
            vgg_loss = vgg.perceptual_loss(decoded, batch["person"].float())
            loss = loss + loss_cfg.vgg_weight * vgg_loss
            losses["vgg_loss"] = vgg_loss.detach()
    losses["loss"] = loss
    return losses
