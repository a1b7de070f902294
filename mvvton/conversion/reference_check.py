"""Run converted modules in the original MV-VTON test-time graph on the reference fixture inputs.

The fixture (`shared/reference/tiny`: original checkpoint layout, inputs, 78 outputs of the original code) lets anyone
check that this re-implementation computes what the original computes. See `tests/models/test_reference_fixture.py`.
"""

from __future__ import annotations

from pathlib import Path

import torch

NUM_LEVELS = 12


def relative_error(ours: torch.Tensor, reference: torch.Tensor) -> float:
    """`max|ours - ref| / max(1, max|ref|)` (the fixture's tolerance criterion is <= 1e-3)."""
    if ours.shape != reference.shape:
        raise ValueError(f"shape {tuple(ours.shape)} != {tuple(reference.shape)}")
    return (ours - reference).abs().max().item() / max(1.0, reference.abs().max().item())


def fixture_head_counts(root: str | Path) -> tuple[int, int]:
    """(UNet heads, CLIP heads) of a reference fixture, read from its `config.json`.

    Head counts cannot be recovered from tensor shapes, so a fixture must state them; a missing or unreadable
    `config.json` raises `CheckpointConversionError` instead of converting with a guess."""
    import json

    from mvvton.errors import CheckpointConversionError

    path = Path(root) / "config.json"
    try:
        sections = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise CheckpointConversionError(
            f"cannot read the fixture's head counts from {path} ({error}); the fixture must ship its config.json"
        ) from error

    def section(prefix: str) -> dict:
        for key, value in sections.items():
            if key.startswith(prefix) and isinstance(value, dict):
                return value
        raise CheckpointConversionError(f"{path} has no '{prefix} ...' section; cannot tell the head counts")

    unet_heads = section("unet_config").get("num_heads")
    clip_heads = section("clip_vision_config").get("num_attention_heads")
    if not isinstance(unet_heads, int) or not isinstance(clip_heads, int) or unet_heads < 1 or clip_heads < 1:
        raise CheckpointConversionError(
            f"{path}: expected positive integer head counts, got unet num_heads={unet_heads!r}, "
            f"clip num_attention_heads={clip_heads!r}"
        )
    return unet_heads, clip_heads


def load_reference_components(root: str | Path) -> tuple[dict, dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Convert the fixture's weights; return (components, inputs, reference outputs)."""
    from safetensors.torch import load_file

    from mvvton.conversion.ldm_checkpoint import build_components, convert_ldm_state_dict

    root = Path(root)
    unet_heads, clip_heads = fixture_head_counts(root)
    result = convert_ldm_state_dict(
        load_file(str(root / "weights.safetensors")), num_attention_heads=unet_heads, clip_num_heads=clip_heads
    )
    components = {name: module.eval() for name, module in build_components(result).items()}
    components["_conversion"] = result
    return components, load_file(str(root / "inputs.safetensors")), load_file(str(root / "outputs.safetensors"))


@torch.no_grad()
def compute_reference_outputs(components: dict, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Every fixture output, computed with our modules in the original's order (test.py + sample_hijack)."""
    from mvvton.conversion.save import released_scheduler
    from mvvton.pipelines import MVVTONPipeline

    image_encoder, pose_encoder = components["image_encoder"], components["pose_encoder"]
    garment_encoder, unet = components["garment_encoder"], components["unet"]
    out: dict[str, torch.Tensor] = {}
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

    # DDIM steps through the pipeline's noise prediction and a diffusers DDIM scheduler
    pipe = MVVTONPipeline(
        vae=None, unet=unet, garment_encoder=garment_encoder, scheduler=released_scheduler(),
        pose_encoder=pose_encoder, image_encoder=image_encoder,
    )  # fmt: skip
    pipe.scheduler.set_timesteps(50)
    timesteps = pipe.scheduler.timesteps
    z_t, conditioning = x_noisy[:, :4], x_noisy[:, 4:]
    model_input = torch.cat([z_t, conditioning], dim=1)
    for index, scale, prefix in ((49, 1.0, "ddim_index49"), (0, 1.0, "ddim_index0"), (49, 3.0, "ddim_cfg3_index49")):
        timestep = timesteps[len(timesteps) - 1 - index]
        noise = pipe.predict_noise(
            model_input, timestep.reshape(1), global_embeds, uncond, tokens, scale, reproduce_original_guidance=scale > 1
        )
        step = pipe.scheduler.step(noise, timestep, z_t, eta=0.0)
        out[f"{prefix}_x_prev"], out[f"{prefix}_pred_x0"] = step.prev_sample, step.pred_original_sample
    # our (fixed) guidance at the same step, for contrast: keeps the local tokens
    fixed = pipe.predict_noise(model_input, timesteps[:1], global_embeds, uncond, tokens, 3.0)
    out["fixed_cfg3_index49_x_prev"] = pipe.scheduler.step(fixed, timesteps[0], z_t, eta=0.0).prev_sample

    # training path: one-step x0 from the noised start, garment encoder at the denoiser's t
    x_start, noise = inputs["train_x_start"], inputs["train_noise"]
    alpha_bar = pipe.scheduler.alphas_cumprod[t].view(-1, 1, 1, 1)
    out["train_x_noisy"] = train_noisy = pipe.scheduler.add_noise(x_start[:, :4], noise, t)
    train_tokens = garment_encoder(garments, t, out["pose_person"], garment_poses).garment_tokens
    eps = unet(torch.cat([train_noisy, x_start[:, 4:]], 1), t, global_embeds, garment_tokens=train_tokens).sample
    out["train_pred_x0"] = (train_noisy - (1 - alpha_bar).sqrt() * eps) / alpha_bar.sqrt()
    return out


OUTPUT_GROUPS = (
    ("global branch (CLIP pooler, mapper, c_g)", ("clip_pooler_output", "c_mapped", "c_g")),
    ("pose tokens", ("pose_person", "pose_front", "pose_back")),
    ("soft-selection pose projections", ("softsel_P_",)),
    ("level token projections (pre-selection)", ("local_premix_front.",)),
    ("local tokens (after soft selection)", ("local_tokens.",)),
    ("UNet eps (with/without local, cond/uncond)", ("eps_",)),
    ("DDIM steps (981->961, 1->0)", ("ddim_index",)),
    ("DDIM guidance 3 (original bug, compat switch)", ("ddim_cfg3_",)),
    ("training path (q_sample, one-step x0)", ("train_",)),
)


def group_errors(computed: dict[str, torch.Tensor], references: dict[str, torch.Tensor]) -> list[tuple[str, int, float]]:
    """(group, number of outputs, worst relative error) for every output group of the fixture."""
    rows = []
    for group, prefixes in OUTPUT_GROUPS:
        names = [name for name in references if name.startswith(prefixes)]
        rows.append((group, len(names), max(relative_error(computed[n], references[n]) for n in names)))
    return rows
