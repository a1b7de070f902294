"""Write converted components as a diffusers pipeline folder, atomically."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import torch
from diffusers import DDIMScheduler

from mvvton.errors import OutputExistsError


def released_scheduler() -> DDIMScheduler:
    """DDIM as MV-VTON samples: 1000 steps, betas linear in sqrt (0.00085 -> 0.012), timesteps 1, 21, ..., 981 for 50
    steps, final step to ᾱ_0."""
    return DDIMScheduler(
        num_train_timesteps=1000,
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=1,
        timestep_spacing="leading",
    )


def save_pipeline_folder(
    components: dict[str, torch.nn.Module | None],
    output_dir: str | Path,
    *,
    default_height: int = 512,
    default_width: int = 384,
    garment_timestep: int = 999,
    overwrite: bool = False,
) -> Path:
    """Assemble an `MVVTONPipeline` and `save_pretrained` it into `output_dir` (written to a temp dir, then renamed,
    so a crash never leaves a half-written folder)."""
    from mvvton.pipelines import MVVTONPipeline

    output_dir = Path(output_dir)
    if output_dir.exists() and not overwrite:
        raise OutputExistsError(f"{output_dir} exists; pass overwrite=True (--overwrite) to replace it")
    pipe = MVVTONPipeline(
        vae=components.get("vae"),
        unet=components["unet"],
        garment_encoder=components["garment_encoder"],
        scheduler=components.get("scheduler") or released_scheduler(),
        pose_encoder=components.get("pose_encoder"),
        image_encoder=components.get("image_encoder"),
        garment_timestep=garment_timestep,
        default_height=default_height,
        default_width=default_width,
    )
    output_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output_dir.name}.", dir=output_dir.parent))
    try:
        pipe.save_pretrained(str(staging), safe_serialization=True)
        if output_dir.exists():
            shutil.rmtree(output_dir)
        os.replace(staging, output_dir)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return output_dir
