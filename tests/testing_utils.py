"""Shared test helpers: tiny random components (built from configs, nothing downloaded) and synthetic images."""

from __future__ import annotations

import numpy as np
import PIL.Image
import torch
from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel

from mvvton.models import GarmentEncoderModel, GarmentImageEncoderModel, MVVTONUNet2DConditionModel, PoseEncoderModel

TOKEN_DIM = 16
TINY_CLIP = dict(
    hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2, image_size=28, patch_size=14,
    hidden_act="quick_gelu", layer_norm_eps=1e-5, projection_dim=16,
)  # fmt: skip


def released_ddim_scheduler() -> DDIMScheduler:
    """DDIM configured as MV-VTON's sampler: linear-in-sqrt betas, timesteps 1, 21, ..., 981, final alpha = ᾱ_0."""
    return DDIMScheduler(
        num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
        clip_sample=False, set_alpha_to_one=False, steps_offset=1, timestep_spacing="leading",
    )  # fmt: skip


def tiny_plain_unet(in_channels: int = 9) -> UNet2DConditionModel:
    torch.manual_seed(0)
    return UNet2DConditionModel(
        block_out_channels=(8, 16, 16, 16), layers_per_block=2, norm_num_groups=8, in_channels=in_channels,
        out_channels=4, cross_attention_dim=TOKEN_DIM, attention_head_dim=2, sample_size=8,
    )  # fmt: skip


def get_dummy_components(multiview: bool = True, ip_scale: float = 0.5) -> dict:
    """Tiny random MV-VTON pipeline components for 64x64 images (latent 8x8, garments resized to 128x128)."""
    plain = tiny_plain_unet()
    torch.manual_seed(0)
    unet = MVVTONUNet2DConditionModel.from_unet(plain)
    with torch.no_grad():  # open the gates so the local branch matters in tests
        for processor in unet.joint_attention_processors.values():
            processor.ip_scale.fill_(ip_scale)
    torch.manual_seed(0)
    garment_encoder = GarmentEncoderModel.from_unet(
        plain, conditioning_embedding_out_channels=(4, 8, 8, 16), garment_sample_size=(128, 128),
        num_views=2 if multiview else 1, use_soft_selection=multiview,
    )  # fmt: skip
    torch.manual_seed(0)
    pose_encoder = PoseEncoderModel(base_channels=1, cross_attention_dim=TOKEN_DIM) if multiview else None
    torch.manual_seed(0)
    image_encoder = GarmentImageEncoderModel(vision_config=TINY_CLIP, mapper_layers=2, projection_dim=TOKEN_DIM)
    torch.manual_seed(0)
    vae = AutoencoderKL(
        block_out_channels=(8, 8, 16, 16), down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4, latent_channels=4, norm_num_groups=4, layers_per_block=1,
    )  # fmt: skip
    return {
        "vae": vae,
        "unet": unet,
        "garment_encoder": garment_encoder,
        "scheduler": released_ddim_scheduler(),
        "pose_encoder": pose_encoder,
        "image_encoder": image_encoder,
        "default_height": 64,
        "default_width": 64,
    }


def synthetic_image(seed: int, size: tuple[int, int] = (64, 64)) -> PIL.Image.Image:
    rng = np.random.default_rng(seed)
    return PIL.Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8))


def synthetic_mask(size: tuple[int, int] = (64, 64)) -> PIL.Image.Image:
    mask = np.zeros(size, dtype=np.uint8)
    mask[size[0] // 4 : 3 * size[0] // 4, size[1] // 4 : 3 * size[1] // 4] = 255
    return PIL.Image.fromarray(mask, mode="L")


def load_kill_drill():
    """benchmarks/kill_drill.py as a module (its process-control helpers: start, pause, SIGKILL, compare)."""
    import importlib.util
    import sys
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "kill_drill.py"
    spec = importlib.util.spec_from_file_location("mvvton_kill_drill", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses resolve their annotations through sys.modules
    spec.loader.exec_module(module)
    return module
