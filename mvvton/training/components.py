"""Building the MV-VTON components for training: from scratch (component JSON configs), from converted folders, or
from a Paint-by-Example checkpoint; plus the released DDPM noise schedule."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel

from mvvton.conversion.paint_by_example import convert_paint_by_example_image_encoder
from mvvton.errors import InvalidConfigError
from mvvton.models import (
    COMPONENT_CLASSES,
    GarmentEncoderModel,
    GarmentImageEncoderModel,
    MVVTONUNet2DConditionModel,
    PoseEncoderModel,
    load_autoencoder,
)
from mvvton.training.config import ModelConfig

COMPONENT_NAMES = ("unet", "garment_encoder", "pose_encoder", "image_encoder", "vae", "scheduler")
TRAINED_COMPONENT_NAMES = ("unet", "garment_encoder", "pose_encoder", "image_encoder")


def _read_json(path: Path) -> dict[str, Any]:
    with open(path, encoding="utf-8") as handle:
        return {key: value for key, value in json.load(handle).items() if not key.startswith("_")}


def default_noise_scheduler_config() -> dict[str, Any]:
    """The released model's DDPM schedule: 1000 steps, β = linspace(√0.00085, √0.012)², ε-prediction."""
    return dict(
        num_train_timesteps=1000,
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        prediction_type="epsilon",
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=1,
    )


def build_components(cfg: ModelConfig, seed: int = 0) -> dict[str, Any]:
    """Instantiate `unet, garment_encoder, pose_encoder, image_encoder, vae, scheduler` as `cfg.init` says.

    * `scratch`: every component from `<component_configs>/<name>.json` (random init, seeded by `seed`); the garment
      encoder copies the UNet's encoder when `garment_encoder_from_unet`.
    * `converted`: `from_pretrained(pretrained_path, subfolder=name)` (folders written by `mvvton convert` or by a
      training checkpoint / final save).
    * `paint_by_example`: `unet/` (9-channel UNet2DConditionModel) -> `MVVTONUNet2DConditionModel.from_unet`, garment
      encoder copied from it (`garment_encoder.json` in `component_configs` holds extra arguments), `image_encoder/`
      converted from `PaintByExampleImageEncoder`, pose encoder new (`pose_encoder.json`), `vae/`, `scheduler/`.
    `vae_path` replaces the VAE in every mode.
    """
    config_dir = Path(cfg.component_configs) if cfg.component_configs else None

    def component_config(name: str, required: bool = True) -> dict[str, Any]:
        path = config_dir / f"{name}.json" if config_dir is not None else None
        if path is None or not path.is_file():
            if required:
                raise FileNotFoundError(f"model.component_configs: {path} not found (needed for {name})")
            return {}
        return _read_json(path)

    generator_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    components: dict[str, Any] = {}
    try:
        if cfg.init == "scratch":
            unet_config = component_config("unet")
            if cfg.local_token_injection is not None:
                unet_config["local_token_injection"] = cfg.local_token_injection
            components["unet"] = MVVTONUNet2DConditionModel.from_config(unet_config)
            components["garment_encoder"] = GarmentEncoderModel.from_config(component_config("garment_encoder"))
            if cfg.garment_encoder_from_unet:
                components["garment_encoder"].load_unet_encoder(components["unet"])
            components["pose_encoder"] = PoseEncoderModel.from_config(component_config("pose_encoder"))
            components["image_encoder"] = GarmentImageEncoderModel.from_config(component_config("image_encoder"))
            components["vae"] = AutoencoderKL.from_config(component_config("vae"))
            scheduler_config = component_config("scheduler", required=False) or default_noise_scheduler_config()
            components["scheduler"] = DDPMScheduler.from_config(scheduler_config)
        elif cfg.init == "converted":
            root = Path(cfg.pretrained_path)
            for name, model_cls in COMPONENT_CLASSES.items():
                if not (root / name).is_dir():
                    if name == "vae" and cfg.vae_path:
                        continue
                    raise FileNotFoundError(f"{root}: no {name}/ folder (model.init=converted)")
                load = load_autoencoder if name == "vae" else model_cls.from_pretrained  # AutoencoderKL or tiny
                components[name] = load(str(root), subfolder=name)
            if cfg.local_token_injection is not None and (
                components["unet"].config.local_token_injection != cfg.local_token_injection
            ):
                raise InvalidConfigError(
                    "model.local_token_injection cannot change the geometry of a converted UNet: leave it null"
                )
            if (root / "scheduler").is_dir():
                components["scheduler"] = DDPMScheduler.from_pretrained(str(root), subfolder="scheduler")
            else:
                components["scheduler"] = DDPMScheduler.from_config(default_noise_scheduler_config())
        else:  # paint_by_example
            root = Path(cfg.pretrained_path)
            base_unet = UNet2DConditionModel.from_pretrained(str(root), subfolder="unet")
            components["unet"] = MVVTONUNet2DConditionModel.from_unet(
                base_unet, local_token_injection=cfg.local_token_injection or "cumulative"
            )
            components["garment_encoder"] = GarmentEncoderModel.from_unet(
                base_unet, **component_config("garment_encoder_overrides", required=False)
            )
            del base_unet
            pose_config = component_config("pose_encoder", required=False)
            pose_config["cross_attention_dim"] = components["unet"].config.cross_attention_dim
            components["pose_encoder"] = PoseEncoderModel.from_config(pose_config)
            components["image_encoder"] = convert_paint_by_example_image_encoder(root / "image_encoder")
            if (root / "vae").is_dir():
                components["vae"] = AutoencoderKL.from_pretrained(str(root), subfolder="vae")
            if (root / "scheduler").is_dir():
                scheduler_config = DDPMScheduler.load_config(str(root), subfolder="scheduler")
                components["scheduler"] = DDPMScheduler.from_config(scheduler_config)
            else:
                components["scheduler"] = DDPMScheduler.from_config(default_noise_scheduler_config())
        if cfg.vae_path:
            components["vae"] = load_autoencoder(cfg.vae_path)
        if cfg.prediction_type is not None:  # one of PREDICTION_TYPES (checked by ModelConfig)
            scheduler_config = dict(components["scheduler"].config, prediction_type=cfg.prediction_type)
            components["scheduler"] = DDPMScheduler.from_config(scheduler_config)
        if "vae" not in components:
            raise FileNotFoundError("no VAE: add vae/ to model.pretrained_path or set model.vae_path")
    finally:
        torch.random.set_rng_state(generator_state)
    return components
