"""Our modules, loaded from the original checkpoint layout, reproduce the original MV-VTON code's outputs.

Fixture: ../shared/reference/tiny (original code run on CPU in fp32, random tiny weights); see its README.md.
Criterion per output: max|ours - ref| <= 1e-3 * max(1, max|ref|).
"""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from mvvton.conversion.ldm_checkpoint import build_components, convert_ldm_state_dict
from mvvton.pipelines import MVVTONPipeline
from tests.testing_utils import released_ddim_scheduler

NUM_LEVELS = 12


def relative_error(ours: torch.Tensor, reference: torch.Tensor) -> float:
    """max|ours - ref| / max(1, max|ref|)."""
    assert ours.shape == reference.shape, f"shape {tuple(ours.shape)} != {tuple(reference.shape)}"
    return (ours - reference).abs().max().item() / max(1.0, reference.abs().max().item())


@pytest.fixture(scope="module")
def fixture(shared_dir):
    root = shared_dir / "reference" / "tiny"
    state_dict = load_file(str(root / "weights.safetensors"))
    result = convert_ldm_state_dict(state_dict, num_attention_heads=4, clip_num_heads=4)
    components = {name: module.eval() for name, module in build_components(result).items()}
    return result, components, load_file(str(root / "inputs.safetensors")), load_file(str(root / "outputs.safetensors"))


@pytest.fixture(scope="module")
def computed(fixture):
    """Every reference output, computed with our modules in the original's test-time order."""
    _, c, inputs, _ = fixture
    image_encoder, pose_encoder, garment_encoder, unet = (
        c["image_encoder"], c["pose_encoder"], c["garment_encoder"], c["unet"]
    )  # fmt: skip
    out: dict[str, torch.Tensor] = {}
    with torch.no_grad():
        pooled = image_encoder.vision_model(pixel_values=inputs["clip_input"]).pooler_output
        out["clip_pooler_output"] = pooled
        out["c_mapped"] = image_encoder.map_pooled(pooled)
        out["c_g"] = global_embeds = image_encoder(inputs["clip_input"])
        for name in ("person", "front", "back"):
            out[f"pose_{name}"] = pose_encoder(inputs[f"skeleton_{name}"])
        garments = torch.stack([inputs["garment_front"], inputs["garment_back"]], dim=1)  # (B, V, 3, H, W)
        garment_poses = torch.stack([out["pose_front"], out["pose_back"]], dim=1)  # (B, V, Np, D)
        encoded = garment_encoder(
            garments, inputs["t_local"], out["pose_person"], garment_poses, noisy_latents=inputs["x_noisy"],
            return_intermediates=True,
        )  # fmt: skip
        tokens = list(encoded.garment_tokens)
        for k in range(NUM_LEVELS):
            out[f"local_tokens.{k}"] = tokens[k]
            out[f"local_premix_front.{k}"] = encoded.premix_tokens[k][:, 0]
            out[f"softsel_P_person.{k}"] = encoded.person_pose_projections[k]
            out[f"softsel_P_front.{k}"] = encoded.garment_pose_projections[k][:, 0]
            out[f"softsel_P_back.{k}"] = encoded.garment_pose_projections[k][:, 1]

        x_noisy, t = inputs["x_noisy"], inputs["t"]
        uncond = image_encoder.unconditional_embeds(x_noisy.shape[0])
        out["eps_cond_local"] = unet(x_noisy, t, global_embeds, garment_tokens=tokens).sample
        out["eps_cond_nolocal"] = unet(x_noisy, t, global_embeds).sample
        out["eps_uncond_nolocal"] = unet(x_noisy, t, uncond).sample
        out["eps_uncond_local"] = unet(x_noisy, t, uncond, garment_tokens=tokens).sample

        # DDIM (released sampler) through the pipeline's noise prediction and a diffusers scheduler
        pipe = MVVTONPipeline(vae=None, scheduler=released_ddim_scheduler(), **{k: c[k] for k in c if k != "vae"})
        pipe.scheduler.set_timesteps(50)
        timesteps = pipe.scheduler.timesteps
        assert timesteps[0].item() == 981 and timesteps[-1].item() == 1
        z_t, conditioning = x_noisy[:, :4], x_noisy[:, 4:]
        for index, scale, prefix in ((49, 1.0, "ddim_index49"), (0, 1.0, "ddim_index0"), (49, 3.0, "ddim_cfg3_index49")):
            timestep = timesteps[len(timesteps) - 1 - index]
            model_input = torch.cat([z_t, conditioning], dim=1)
            noise = pipe.predict_noise(
                model_input, timestep.reshape(1), global_embeds, uncond, tokens, scale,
                reproduce_original_guidance=scale > 1,
            )  # fmt: skip
            step = pipe.scheduler.step(noise, timestep, z_t, eta=0.0)
            out[f"{prefix}_x_prev"], out[f"{prefix}_pred_x0"] = step.prev_sample, step.pred_original_sample
        out["_cfg3_fixed_x_prev"] = pipe.scheduler.step(
            pipe.predict_noise(torch.cat([z_t, conditioning], 1), timesteps[:1], global_embeds, uncond, tokens, 3.0),
            timesteps[0], z_t, eta=0.0,
        ).prev_sample

        # training path: one-step x0 from the noised start, garment encoder at the denoiser's t
        x_start, noise = inputs["train_x_start"], inputs["train_noise"]
        alpha_bar = pipe.scheduler.alphas_cumprod[t].view(-1, 1, 1, 1)
        out["train_x_noisy"] = train_noisy = pipe.scheduler.add_noise(x_start[:, :4], noise, t)
        train_tokens = garment_encoder(garments, t, out["pose_person"], garment_poses).garment_tokens
        eps = unet(torch.cat([train_noisy, x_start[:, 4:]], 1), t, global_embeds, garment_tokens=train_tokens).sample
        out["train_pred_x0"] = (train_noisy - (1 - alpha_bar).sqrt() * eps) / alpha_bar.sqrt()
    return out


def test_converter_reports_unused_groups(fixture):
    result = fixture[0]
    assert result.variant == "multiview"
    assert result.absent_components == ["vae"]  # the fixture ships no VAE
    assert result.unused_groups["diffusion schedule buffers (recomputed by the scheduler)"] == 12
    assert result.unused_groups["garment-encoder middle block (computed and discarded by the original)"] > 0


def test_all_78_reference_outputs_reproduced(fixture, computed):
    references = fixture[3]
    assert len(references) == 78
    errors = {name: relative_error(computed[name], references[name]) for name in references}
    failing = {name: error for name, error in errors.items() if error > 1e-3}
    assert not failing, f"outputs outside tolerance: {failing}"


def test_local_tokens_actually_matter(fixture, computed):
    """Guard against a vacuous pass: the local branch moves ε far beyond the tolerance."""
    references = fixture[3]
    assert relative_error(computed["eps_cond_nolocal"], references["eps_cond_local"]) > 0.05


def test_guidance_bug_reproduced_only_behind_switch(fixture, computed):
    references = fixture[3]
    assert relative_error(computed["ddim_cfg3_index49_x_prev"], references["ddim_cfg3_index49_x_prev"]) <= 1e-3
    # our default guidance keeps the local tokens, so it must NOT match the buggy reference
    assert relative_error(computed["_cfg3_fixed_x_prev"], references["ddim_cfg3_index49_x_prev"]) > 1e-2
