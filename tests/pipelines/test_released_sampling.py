"""The pipeline's default sampling is the released MV-VTON sampler (mvvton-spec.md §7), step by step.

Uses the converted ../shared/reference/tiny weights (the original checkpoint layout) plus a tiny random VAE (the
fixture ships none) and re-implements §7 by hand: hard-selected global token, local tokens computed ONCE at t=999,
x_T = q_sample(E(warped composite), 999), DDIM 50 steps over 981 ... 1 with eta 0 and the masked image re-attached,
decode, paste-back of the kept region.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from diffusers import AutoencoderKL
from safetensors.torch import load_file

from mvvton.conversion import build_components, convert_ldm_state_dict, released_scheduler
from mvvton.image_processor import crop_garment_for_clip
from mvvton.pipelines import MVVTONPipeline


@pytest.fixture(scope="module")
def reference_pipe(shared_dir):
    root = shared_dir / "reference" / "tiny"
    result = convert_ldm_state_dict(load_file(str(root / "weights.safetensors")), num_attention_heads=4, clip_num_heads=4)
    components = build_components(result)
    torch.manual_seed(0)
    components["vae"] = AutoencoderKL(
        block_out_channels=(8, 8, 16, 16), down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4, latent_channels=4, norm_num_groups=4, layers_per_block=1,
    )  # fmt: skip
    pipe = MVVTONPipeline(scheduler=released_scheduler(), default_height=192, default_width=128, **components)
    pipe.set_progress_bar_config(disable=True)
    return pipe, load_file(str(root / "inputs.safetensors"))


def test_default_sampling_is_the_released_sampler(reference_pipe):
    pipe, inputs = reference_pipe
    to01 = lambda x: (x[:1] + 1) / 2  # noqa: E731  (first sample, [-1, 1] -> [0, 1])
    person = torch.rand(1, 3, 192, 128, generator=torch.Generator().manual_seed(1))
    composite = torch.rand(1, 3, 192, 128, generator=torch.Generator().manual_seed(2))
    mask = torch.zeros(1, 1, 192, 128)
    mask[:, :, 40:150, 20:110] = 1.0

    calls, timesteps_seen = [], []
    hook = pipe.garment_encoder.register_forward_hook(lambda module, args, output: calls.append(args[1]))

    def record(pipeline, step, timestep, kwargs):
        timesteps_seen.append(int(timestep))
        return kwargs

    try:
        ours = pipe(
            person, to01(inputs["garment_front"]), to01(inputs["garment_back"]), mask_image=mask,
            warped_garment=composite, pose_image=to01(inputs["skeleton_person"]),
            garment_front_pose_image=to01(inputs["skeleton_front"]),
            garment_back_pose_image=to01(inputs["skeleton_back"]), view="back", num_inference_steps=50,
            generator=torch.Generator().manual_seed(23), output_type="pt", callback_on_step_end=record,
        ).images  # fmt: skip
    finally:
        hook.remove()
    assert timesteps_seen == list(range(981, 0, -20))
    assert len(calls) == 1 and int(torch.as_tensor(calls[0]).flatten()[0]) == 999  # local features once, at t=999

    # §7 by hand
    generator = torch.Generator().manual_seed(23)
    vae, unet, scale = pipe.vae, pipe.unet, pipe.vae.config.scaling_factor
    alphas = pipe.scheduler.alphas_cumprod
    with torch.no_grad():
        garments = torch.stack([inputs["garment_front"][:1], inputs["garment_back"][:1]], dim=1)
        global_token = pipe.image_encoder(crop_garment_for_clip(garments[:, 1], None, 56))  # back view: hard selection
        person_pose = pipe.pose_encoder(inputs["skeleton_person"][:1])
        garment_pose = torch.stack([pipe.pose_encoder(inputs["skeleton_front"][:1]),
                                    pipe.pose_encoder(inputs["skeleton_back"][:1])], dim=1)  # fmt: skip
        tokens = pipe.garment_encoder(garments, 999, person_pose, garment_pose).garment_tokens
        z_inpaint = vae.encode(composite * 2 - 1).latent_dist.sample(generator) * scale
        keep = F.interpolate(1 - mask, size=(24, 16), mode="bilinear", align_corners=False)
        noise = torch.randn(z_inpaint.shape, generator=generator)
        x = alphas[999].sqrt() * z_inpaint + (1 - alphas[999]).sqrt() * noise  # x_T = q_sample(z_warp, 999)
        for t in range(981, 0, -20):
            eps = unet(torch.cat([x, z_inpaint, keep], 1), torch.tensor([t]), global_token, garment_tokens=tokens).sample
            a_t, a_prev = alphas[t], alphas[t - 20] if t > 20 else alphas[0]
            x0 = (x - (1 - a_t).sqrt() * eps) / a_t.sqrt()
            x = a_prev.sqrt() * x0 + (1 - a_prev).sqrt() * eps
        image = vae.decode(x / scale).sample.clamp(-1, 1)
        image = image * mask + (person * 2 - 1) * (1 - mask)  # paste-back
        expected = (image + 1) / 2
    assert (ours - expected).abs().max().item() < 1e-4
