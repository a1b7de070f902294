"""Training helpers for MV-VTON: typed config, component building, trainable groups, conditioning and the objective.

Everything here is library code used by `training/train_mvvton.py` and `training/train_vae.py` (which only wire it to
`accelerate`); nothing in this module imports those scripts.

Sections: config (`TrainConfig`, `load_config`), components (`build_components`, `select_trainable`), conditioning
(`clip_garment_crop`, `drop_global_tokens`), the objective (`MVVTONTrainingModule`, `compute_training_loss`,
`VGG19Features`), data (`build_dataset`, `SyntheticTryOnDataset`, `EpochSeededSampler`), VAE training
(`VAETrainConfig`, `vae_training_loss`).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import types
import typing
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import torch
import torch.nn.functional as F
import yaml
from torch import nn
from torch.utils.data import Dataset, Sampler

from mvvton.utils.atomic import atomic_write_text

logger = logging.getLogger(__name__)

CLIP_IMAGE_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_IMAGE_STD = (0.26862954, 0.26130258, 0.27577711)
COMPONENT_NAMES = ("unet", "garment_encoder", "pose_encoder", "image_encoder", "vae", "scheduler")
TRAINED_COMPONENT_NAMES = ("unet", "garment_encoder", "pose_encoder", "image_encoder")
TRAINABLE_MODES = ("paper", "released", "all", "decoder_attention", "local_encoders")

# ----------------------------------------------------------------------------------------------------------------------
# config


@dataclass
class DataConfig:
    """Which dataset feeds training (sample schema of `mvvton.data.sample`)."""

    dataset: str = "synthetic"  # synthetic | mvg | manifest | synthmvg
    root: str | None = None  # dataset root (mvg, synthmvg) or manifest file (manifest)
    split: str = "train"
    paired: bool = True
    height: int = 64
    width: int = 64
    max_samples: int | None = None  # keep only the first N samples (smoke runs)
    num_synthetic_samples: int = 8  # size of the procedural `synthetic` dataset
    validation_split: str | None = None  # split for validation samples; None = first training samples
    num_workers: int = 0
    cache_in_memory: bool = False  # keep decoded samples in RAM (num_workers 0; small datasets such as SynthMVG)


@dataclass
class ModelConfig:
    """How the components are initialised and which of them train."""

    init: str = "scratch"  # scratch | converted | paint_by_example
    pretrained_path: str | None = None  # converted / PbE folder (unet/, image_encoder/, vae/, ...)
    component_configs: str | None = "configs/model/tiny"  # folder of <component>.json (scratch; PbE extras)
    vae_path: str | None = None  # replace the VAE by this save_pretrained folder (e.g. from train_vae.py)
    garment_encoder_from_unet: bool = True  # scratch: copy the UNet encoder into the garment encoder (paper init)
    local_token_injection: str | None = None  # cumulative | per_level; None keeps the UNet config
    trainable: str = "paper"  # see TRAINABLE_MODES and docs/training.md
    garment_timestep: str = "same"  # same (as the denoiser, released training) | fixed
    garment_fixed_timestep: int = 999  # used when garment_timestep == "fixed" (the released sampler's value)
    # what the denoiser predicts: None keeps the scheduler's (released: epsilon) | epsilon | v_prediction | sample.
    # Saved into the scheduler config, so the pipeline samples with the same parametrisation.
    prediction_type: str | None = None


@dataclass
class OptimConfig:
    """AdamW, batching and precision."""

    learning_rate: float = 1e-5
    scale_lr: bool = False  # multiply by batch size x accumulation x processes
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    adam_weight_decay: float = 0.01
    adam_epsilon: float = 1e-8
    max_grad_norm: float | None = None  # None: no clipping (the released trainer does not clip)
    train_batch_size: int = 2  # per process
    gradient_accumulation_steps: int = 1
    gradient_checkpointing: bool = False
    mixed_precision: str = "no"  # no | fp16 | bf16 (frozen parts are cast; trainable stay fp32)
    use_ema: bool = False
    ema_decay: float = 0.9999
    # learning-rate multiplier (and no weight decay) for the zero-initialised joint-attention gates `ip_scale`: at the
    # base rate Adam moves them by <= lr per step, so the local garment branch stays near-silent for thousands of steps
    gate_lr_multiplier: float = 1.0


@dataclass
class ScheduleConfig:
    """Length of training and learning-rate schedule (diffusers.optimization.get_scheduler names)."""

    max_train_steps: int = 10
    stop_after_steps: int | None = (
        None  # end this run early at this global step (schedule still spans max_train_steps)
    )
    lr_scheduler: str = "constant_with_warmup"  # constant | constant_with_warmup | cosine | linear | ...
    lr_warmup_steps: int = 0


@dataclass
class LossConfig:
    """The objective of mvvton-spec.md §6 and its conditioning randomisation."""

    pixel_weight: float = 0.1  # λ_pix of the warped-start x̂0 loss; 0 skips the auxiliary pass
    vgg_weight: float = 0.001
    vgg_weights_path: str | None = None  # VGG19 weights (.pth/.safetensors); None/absent: VGG term skipped
    vgg_input_style: str = "caffe"  # caffe (the original's vgg19_conv.pth) | torchvision (ImageNet mean/std)
    cfg_dropout_prob: float = 0.2
    cfg_dropout_mode: str = "per_sample"  # per_sample | per_batch (released: one draw for the whole batch)
    clip_crop_enlarge_min: float = 0.1
    clip_crop_enlarge_max: float = 0.2
    sample_posterior: bool = True  # E(x) = posterior sample (original) or its mean
    # Min-SNR-γ weighting of the denoising MSE (Hang et al. 2023); None = uniform over t (released)
    snr_gamma: float | None = None
    # per sample, replace the pre-warped composite (channels 4-7 and the warped start) by the plain agnostic person
    # with this probability, so the garment appearance must come through the garment tokens (0 = released)
    prewarp_dropout_prob: float = 0.0


@dataclass
class CheckpointConfig:
    checkpointing_steps: int = 500
    checkpoints_total_limit: int | None = None
    save_frozen_components: bool = False  # also write vae/ and scheduler/ in every checkpoint


@dataclass
class LoggingConfig:
    report_to: str | None = "tensorboard"  # tensorboard | none
    validation_steps: int | None = None  # every N optimizer steps (and at the end); None: never
    num_validation_samples: int = 2
    validation_inference_steps: int = 20
    validation_seed: int = 0


@dataclass
class TrainConfig:
    """Everything `training/train_mvvton.py` needs; YAML keys mirror these fields (nested by section)."""

    output_dir: str = "outputs/mvvton"
    seed: int = 0
    resume_from_checkpoint: str | None = None  # latest | path to a checkpoint-N folder
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    checkpointing: CheckpointConfig = field(default_factory=CheckpointConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)

    def validate(self) -> None:
        """Raise `ValueError` on values no code path accepts."""
        choices = {
            "data.dataset": (self.data.dataset, ("synthetic", "mvg", "manifest", "synthmvg")),
            "model.init": (self.model.init, ("scratch", "converted", "paint_by_example")),
            "model.trainable": (self.model.trainable, TRAINABLE_MODES),
            "model.garment_timestep": (self.model.garment_timestep, ("same", "fixed")),
            "optim.mixed_precision": (self.optim.mixed_precision, ("no", "fp16", "bf16")),
            "loss.cfg_dropout_mode": (self.loss.cfg_dropout_mode, ("per_sample", "per_batch")),
            "loss.vgg_input_style": (self.loss.vgg_input_style, ("caffe", "torchvision")),
        }
        for key, (value, allowed) in choices.items():
            if value not in allowed:
                raise ValueError(f"{key} must be one of {allowed}, got {value!r}")
        if not 0.0 <= self.loss.cfg_dropout_prob <= 1.0:
            raise ValueError("loss.cfg_dropout_prob must be in [0, 1]")
        if not 0.0 <= self.loss.prewarp_dropout_prob <= 1.0:
            raise ValueError("loss.prewarp_dropout_prob must be in [0, 1]")
        if self.optim.gate_lr_multiplier <= 0:
            raise ValueError("optim.gate_lr_multiplier must be > 0")
        if self.model.init != "scratch" and not self.model.pretrained_path:
            raise ValueError(f"model.init={self.model.init!r} needs model.pretrained_path")
        if self.optim.train_batch_size < 1 or self.optim.gradient_accumulation_steps < 1:
            raise ValueError("optim.train_batch_size and optim.gradient_accumulation_steps must be >= 1")


@dataclass
class VAEDataConfig:
    dataset: str = "synthetic"
    root: str | None = None
    split: str = "train"
    height: int = 64
    width: int = 64
    max_samples: int | None = None
    num_synthetic_samples: int = 8
    cache_in_memory: bool = True
    crop_size: int | None = None  # train on random crop_size x crop_size crops (the VAE is convolutional)
    # which image keys of each sample the VAE learns from (each is one training image)
    image_keys: list[str] = field(default_factory=lambda: ["person", "inpaint_image", "garment_front", "garment_back"])


@dataclass
class VAETrainConfig:
    """Config of `training/train_vae.py` (a small AutoencoderKL for domains without a pretrained VAE)."""

    output_dir: str = "outputs/vae"
    seed: int = 0
    vae_config: str = "configs/model/tiny/vae.json"
    # start from this saved AutoencoderKL folder instead of a fresh `vae_config` model
    pretrained_path: str | None = None
    # False: freeze the encoder (and quant_conv) and keep the pretrained scaling_factor, so the latent space, and any
    # denoiser trained on it, stay valid; only the decoder improves (needs pretrained_path)
    train_encoder: bool = True
    data: VAEDataConfig = field(default_factory=VAEDataConfig)
    learning_rate: float = 1e-3
    train_batch_size: int = 8
    max_train_steps: int = 200
    lr_warmup_steps: int = 0
    reconstruction: str = "l1"  # l1 | mse
    kl_weight: float = 1e-6
    init_logvar: float | None = -10.0  # start the posterior nearly deterministic (None: diffusers' default init)
    log_every: int = 20
    # crash-safe checkpoint-N folders every N steps (None: none), keeping the newest `checkpoints_total_limit`
    checkpointing_steps: int | None = 500
    checkpoints_total_limit: int | None = 2
    resume_from_checkpoint: str | None = None  # "latest" or a checkpoint-N folder


ConfigT = TypeVar("ConfigT")
_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}
_NONE = {"none", "null", "~", ""}


def _coerce(value: Any, annotation: Any, key: str) -> Any:
    """Convert a YAML / command-line value to the annotated field type, or raise a `ValueError` naming `key`."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(annotation)
        if type(None) in options and (value is None or (isinstance(value, str) and value.strip().lower() in _NONE)):
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _coerce(value, option, key)
            except ValueError as error:
                errors.append(str(error))
        raise ValueError("; ".join(errors))
    if dataclasses.is_dataclass(annotation):
        if not isinstance(value, dict):
            raise ValueError(f"{key}: expected a mapping (section), got {value!r}")
        return _from_dict(annotation, value, key)
    if origin in (list, tuple):
        if isinstance(value, str):
            value = [item.strip() for item in value.split(",") if item.strip()]
        if not isinstance(value, list | tuple):
            raise ValueError(f"{key}: expected a list, got {value!r}")
        (item_type, *_) = typing.get_args(annotation) or (Any,)
        items = [_coerce(item, item_type, f"{key}[{index}]") for index, item in enumerate(value)]
        return items if origin is list else tuple(items)
    if annotation is Any:
        return value
    if value is None:
        raise ValueError(f"{key}: null is not allowed (expected {getattr(annotation, '__name__', annotation)})")
    if annotation is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        raise ValueError(f"{key}: expected a boolean, got {value!r}")
    if annotation is int:
        if isinstance(value, bool):
            raise ValueError(f"{key}: expected an integer, got {value!r}")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                number = float(value)
            except ValueError:
                number = math.nan
            if number.is_integer():
                return int(number)
        raise ValueError(f"{key}: expected an integer, got {value!r}")
    if annotation is float:
        if isinstance(value, bool):
            raise ValueError(f"{key}: expected a number, got {value!r}")
        if isinstance(value, int | float):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        raise ValueError(f"{key}: expected a number, got {value!r}")
    if annotation is str:
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            return str(value)
        raise ValueError(f"{key}: expected a string, got {value!r}")
    raise TypeError(f"{key}: unsupported config field type {annotation!r}")


def _from_dict(cls: type[ConfigT], values: dict[str, Any], prefix: str = "") -> ConfigT:
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(values) - set(names))
    if unknown:
        where = f"section {prefix!r}" if prefix else "top level"
        raise ValueError(f"unknown config key(s) {unknown} in {where}; valid keys: {names}")
    kwargs = {}
    for name, value in values.items():
        key = f"{prefix}.{name}" if prefix else name
        kwargs[name] = _coerce(value, hints[name], key)
    return cls(**kwargs)


def config_from_dict(cls: type[ConfigT], values: dict[str, Any]) -> ConfigT:
    """Build a config dataclass from nested dicts; unknown keys and wrongly typed values raise `ValueError`."""
    return _from_dict(cls, values)


def apply_overrides(values: dict[str, Any], overrides: list[str] | None) -> dict[str, Any]:
    """Apply `section.key=value` strings (value parsed as YAML, then coerced) to a nested dict, in order."""
    for override in overrides or []:
        if "=" not in override:
            raise ValueError(f"override {override!r} is not of the form section.key=value")
        dotted, raw = override.split("=", 1)
        parts = [part for part in dotted.strip().split(".") if part]
        if not parts:
            raise ValueError(f"override {override!r} has an empty key")
        node = values
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ValueError(f"override {override!r}: {part!r} is not a section")
        node[parts[-1]] = yaml.safe_load(raw) if raw.strip() else ""
    return values


def load_config(
    path: str | Path | None, overrides: list[str] | None = None, cls: type[ConfigT] = TrainConfig
) -> ConfigT:
    """Read a YAML config (or start from defaults when `path` is None), apply `--set` overrides, type-check.

    Args:
        path: YAML file whose nesting mirrors the dataclass sections.
        overrides: e.g. `["optim.learning_rate=1e-5", "schedule.max_train_steps=20"]`.
        cls: the config dataclass (`TrainConfig` or `VAETrainConfig`).
    Raises:
        ValueError: unknown key, wrong type, or (for `TrainConfig`) an invalid choice.
    """
    values: dict[str, Any] = {}
    if path is not None:
        with open(path, encoding="utf-8") as handle:
            loaded = yaml.safe_load(handle)
        if loaded is not None and not isinstance(loaded, dict):
            raise ValueError(f"{path}: the top level of a config must be a mapping")
        values = loaded or {}
    config = config_from_dict(cls, apply_overrides(values, overrides))
    if hasattr(config, "validate"):
        config.validate()
    return config


def config_to_dict(config: Any) -> dict[str, Any]:
    """Nested plain dict (tuples as lists) suitable for YAML / JSON."""
    return json.loads(json.dumps(dataclasses.asdict(config)))


def save_config(config: Any, path: str | Path) -> None:
    """Write the resolved config as YAML (loadable again with `load_config`), atomically."""
    atomic_write_text(path, yaml.safe_dump(config_to_dict(config), sort_keys=False))


def flat_config(config: Any) -> dict[str, int | float | str | bool]:
    """`section.key -> value` with only scalar values (for tensorboard hparams)."""
    flat: dict[str, int | float | str | bool] = {}

    def visit(prefix: str, node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                visit(f"{prefix}.{key}" if prefix else key, value)
        elif isinstance(node, int | float | str | bool):
            flat[prefix] = node
        else:
            flat[prefix] = str(node)

    visit("", config_to_dict(config))
    return flat


# ----------------------------------------------------------------------------------------------------------------------
# components


def _read_json(path: Path) -> dict[str, Any]:
    with open(path, encoding="utf-8") as handle:
        return {key: value for key, value in json.load(handle).items() if not key.startswith("_")}


PREDICTION_TYPES = ("epsilon", "v_prediction", "sample")


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
    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel

    from mvvton.conversion.paint_by_example import convert_paint_by_example_image_encoder
    from mvvton.models import (
        COMPONENT_CLASSES,
        GarmentEncoderModel,
        GarmentImageEncoderModel,
        MVVTONUNet2DConditionModel,
        PoseEncoderModel,
        load_autoencoder,
    )

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
                raise ValueError("model.local_token_injection cannot change the geometry of a converted UNet")
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
        if cfg.prediction_type is not None:
            if cfg.prediction_type not in PREDICTION_TYPES:
                raise ValueError(
                    f"model.prediction_type must be one of {PREDICTION_TYPES}, got {cfg.prediction_type!r}"
                )
            scheduler_config = dict(components["scheduler"].config, prediction_type=cfg.prediction_type)
            components["scheduler"] = DDPMScheduler.from_config(scheduler_config)
        if "vae" not in components:
            raise FileNotFoundError("no VAE: add vae/ to model.pretrained_path or set model.vae_path")
    finally:
        torch.random.set_rng_state(generator_state)
    return components


def _joint_attention_name(name: str) -> bool:
    """Decoder transformer-block parameters (attn1/attn2 incl. the joint `*_ip` / `ip_scale`, FF, norms)."""
    return name.startswith("up_blocks.") and ".transformer_blocks." in name


def select_trainable(components: dict[str, nn.Module], mode: str) -> dict[str, list[str]]:
    """Set `requires_grad` per `mode` and return `{group: [parameter names]}` of what trains.

    Modes (docs/training.md):
        paper: decoder joint-attention transformer blocks + garment encoder (incl. its per-level tokenizers and the
            soft-selection projections) + pose encoder: what the paper's figure and the released `main.py` intend.
        released: decoder transformer blocks only, i.e. what the released trainer effectively optimised (its
            optimizer omits the garment and pose encoders, mvvton-spec.md §6/§11 bug 1).
        all: the whole UNet + garment encoder + pose encoder + the global image encoder's mapper / projection /
            unconditional vector (CLIP vision tower and VAE stay frozen).
        decoder_attention: same parameter set as `released` (named for what it is).
        local_encoders: garment encoder + pose encoder only.
    """
    if mode not in TRAINABLE_MODES:
        raise ValueError(f"trainable must be one of {TRAINABLE_MODES}, got {mode!r}")
    for module in components.values():
        if isinstance(module, nn.Module):
            module.requires_grad_(False)
    groups: dict[str, list[str]] = {}

    def enable(group: str, module: nn.Module, predicate=lambda name: True, prefix: str = "") -> None:
        for name, parameter in module.named_parameters():
            if predicate(name):
                parameter.requires_grad_(True)
                groups.setdefault(group, []).append(f"{prefix}{name}")

    unet, garment_encoder, pose_encoder = components["unet"], components["garment_encoder"], components["pose_encoder"]
    if mode in ("paper", "released", "decoder_attention"):
        enable("decoder_attention", unet, _joint_attention_name, "unet.")
    if mode == "all":
        enable("unet", unet, prefix="unet.")
    if mode in ("paper", "all", "local_encoders"):
        selection_prefixes = ("person_pose_projections.", "garment_pose_projections.", "extra_view_pose_projections.")
        enable("soft_selection", garment_encoder, lambda name: name.startswith(selection_prefixes), "garment_encoder.")
        enable(
            "garment_encoder",
            garment_encoder,
            lambda name: not name.startswith(selection_prefixes),
            "garment_encoder.",
        )
        enable("pose_encoder", pose_encoder, prefix="pose_encoder.")
    if mode == "all":
        enable(
            "image_encoder_mapper",
            components["image_encoder"],
            lambda name: not name.startswith("vision_model."),
            "image_encoder.",
        )
    return groups


# ----------------------------------------------------------------------------------------------------------------------
# conditioning


def clip_garment_crop(
    images: torch.Tensor,
    masks: torch.Tensor,
    size: int,
    enlarge_range: tuple[float, float] = (0.1, 0.2),
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Garment crop for the CLIP image encoder, as the released loader does it (torch only).

    The cloth-mask bounding box is enlarged about its centre by a factor `1 + f`, `f ~ U[lo, hi)` per sample (pass
    `lo == hi` for a deterministic crop), clipped to the image, cropped from the unmasked garment image, resized to
    `size x size` (bicubic, aspect not kept) and CLIP-normalised. An empty mask crops the whole image.

    Args:
        images: `(B, 3, H, W)` garment images in [-1, 1].
        masks: `(B, 1, H, W)` cloth masks in [0, 1].
        size: CLIP input size S.
    Returns:
        `(B, 3, S, S)` CLIP-normalised pixels.
    """
    from mvvton.image_processor import crop_garment_for_clip

    low, high = enlarge_range
    margins = low + (high - low) * _rand((images.shape[0],), generator, images.device)
    return crop_garment_for_clip(images, masks, size, margin=margins.cpu())


GATE_PARAMETER_SUFFIX = "ip_scale"


def optimizer_param_groups(
    module: nn.Module, learning_rate: float, weight_decay: float, gate_lr_multiplier: float = 1.0
) -> list[dict[str, Any]]:
    """AdamW parameter groups of the trainable parameters of `module`: everything at `learning_rate`, except the
    joint-attention gates (`*.ip_scale`), which get `learning_rate * gate_lr_multiplier` and no weight decay when the
    multiplier is not 1 (one group otherwise, the released behaviour)."""
    named = [(name, parameter) for name, parameter in module.named_parameters() if parameter.requires_grad]
    if gate_lr_multiplier == 1.0:
        return [{"params": [parameter for _, parameter in named], "lr": learning_rate, "weight_decay": weight_decay}]
    gates = [parameter for name, parameter in named if name.endswith(GATE_PARAMETER_SUFFIX)]
    others = [parameter for name, parameter in named if not name.endswith(GATE_PARAMETER_SUFFIX)]
    groups = [{"params": others, "lr": learning_rate, "weight_decay": weight_decay}]
    if gates:
        groups.append({"params": gates, "lr": learning_rate * gate_lr_multiplier, "weight_decay": 0.0})
    return groups


def select_garment_view(batch: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
    """Hard selection from the sample's `garment_view` ('front' | 'back'): `(B, 3, H, W)` image, `(B, 1, H, W)` mask."""
    views = batch["garment_view"]
    if isinstance(views, str):
        views = [views]
    use_back = torch.tensor([view == "back" for view in views], device=batch["garment_front"].device)
    selector = use_back.view(-1, 1, 1, 1)
    image = torch.where(selector, batch["garment_back"], batch["garment_front"])
    mask = torch.where(selector, batch["garment_back_mask"], batch["garment_front_mask"])
    return image, mask


def _generator_device(generator: torch.Generator | None, device: torch.device) -> torch.device:
    return generator.device if generator is not None else device


def _rand(shape: tuple[int, ...], generator: torch.Generator | None, device: torch.device) -> torch.Tensor:
    """U[0, 1) drawn on the generator's device (a CPU generator also serves CUDA training), moved to `device`."""
    return torch.rand(shape, generator=generator, device=_generator_device(generator, device)).to(device)


def _randn(shape: tuple[int, ...], generator: torch.Generator | None, device: torch.device) -> torch.Tensor:
    return torch.randn(shape, generator=generator, device=_generator_device(generator, device)).to(device)


def cfg_dropout_mask(
    batch_size: int, prob: float, mode: str, generator: torch.Generator | None, device: torch.device
) -> torch.Tensor:
    """`(B,)` bool, True = drop the global token. `per_sample`: independent draws; `per_batch`: one draw for all."""
    if mode == "per_sample":
        return _rand((batch_size,), generator, device) < prob
    if mode == "per_batch":
        return (_rand((1,), generator, device) < prob).expand(batch_size)
    raise ValueError(f"cfg dropout mode must be per_sample or per_batch, got {mode!r}")


def drop_global_tokens(
    global_tokens: torch.Tensor,
    uncond_tokens: torch.Tensor,
    prob: float,
    mode: str = "per_sample",
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Classifier-free dropout of the global garment token.

    `per_sample`: each sample's token is replaced by the unconditional vector with probability `prob`.
    `per_batch`: one draw replaces the whole batch (what the released trainer does, with `prob = 0.2`). In both
    modes the local garment tokens are kept, as in the released trainer; the sampler's CFG branch (if used) should
    therefore keep them too.

    Args:
        global_tokens: `(B, 1, D)`.
        uncond_tokens: `(1, 1, D)` or `(B, 1, D)`.
    Returns:
        `(tokens (B, 1, D), dropped (B,) bool)`.
    """
    batch_size = global_tokens.shape[0]
    dropped = cfg_dropout_mask(batch_size, prob, mode, generator, global_tokens.device)
    uncond = uncond_tokens.to(global_tokens.dtype).expand(batch_size, -1, -1)
    return torch.where(dropped.view(-1, 1, 1), uncond, global_tokens), dropped


# ----------------------------------------------------------------------------------------------------------------------
# objective


class VGG19Features(nn.Module):
    """VGG19 conv trunk (no torchvision) returning relu1_2, relu2_2, relu3_2, relu4_2, relu5_2.

    Layer names follow the released loss's `vgg19_conv.pth` (`conv1_1` ... `conv5_4`); `load_weights` also accepts
    torchvision-style `features.<index>.*` keys.

    Args:
        input_style: `caffe` ((x+1)/2 -> BGR -> minus mean -> x255, the original) or `torchvision` (ImageNet mean/std).
    """

    LAYERS = (2, 2, 4, 4, 4)  # convs per stage
    WIDTHS = (64, 128, 256, 512, 512)
    OUTPUT_CONVS = ("conv1_2", "conv2_2", "conv3_2", "conv4_2", "conv5_2")
    LAYER_WEIGHTS = (1 / 32, 1 / 16, 1 / 8, 1 / 4, 1.0)

    def __init__(self, input_style: str = "caffe"):
        super().__init__()
        self.input_style = input_style
        channels = 3
        self.conv_names: list[str] = []
        for stage, (count, width) in enumerate(zip(self.LAYERS, self.WIDTHS), start=1):
            for index in range(1, count + 1):
                name = f"conv{stage}_{index}"
                self.add_module(name, nn.Conv2d(channels, width, kernel_size=3, padding=1))
                self.conv_names.append(name)
                channels = width
        self.requires_grad_(False)

    def load_weights(self, path: str | Path) -> None:
        """Load `conv{s}_{i}.*` or torchvision `features.{k}.*` weights from a .pth / .safetensors file."""
        path = Path(path)
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
        state = {key.removeprefix("vgg."): value for key, value in state.items()}
        if any(key.startswith("features.") for key in state):
            conv_indices = []
            index = 0
            for count in self.LAYERS:
                conv_indices += [index + 2 * i for i in range(count)]
                index += 2 * count + 1  # conv + relu per layer, then max-pool
            state = {
                f"{self.conv_names[conv_indices.index(int(key.split('.')[1]))]}.{key.split('.')[2]}": value
                for key, value in state.items()
                if key.startswith("features.") and int(key.split(".")[1]) in conv_indices
            }
        self.load_state_dict(state, strict=True)

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        pixels = (images + 1) / 2  # (B, 3, H, W) in [0, 1]
        if self.input_style == "caffe":
            mean = torch.tensor([0.4076, 0.4580, 0.4850], device=images.device, dtype=images.dtype)
            return (pixels.flip(1) - mean.view(1, 3, 1, 1)) * 255.0
        mean = torch.tensor([0.485, 0.456, 0.406], device=images.device, dtype=images.dtype).view(1, 3, 1, 1)
        std = torch.tensor([0.229, 0.224, 0.225], device=images.device, dtype=images.dtype).view(1, 3, 1, 1)
        return (pixels - mean) / std

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        """`(B, 3, H, W)` in [-1, 1] -> 5 feature maps (relu*_2)."""
        hidden = self.preprocess(images)
        outputs = []
        for stage, count in enumerate(self.LAYERS, start=1):
            if stage > 1:
                hidden = F.max_pool2d(hidden, kernel_size=2, stride=2)
            for index in range(1, count + 1):
                name = f"conv{stage}_{index}"
                hidden = F.relu(getattr(self, name)(hidden))
                if name in self.OUTPUT_CONVS:
                    outputs.append(hidden)
        return outputs

    def perceptual_loss(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Σ_l w_l · L1(φ_l(prediction), φ_l(target)), w = 1/32, 1/16, 1/8, 1/4, 1 (the released weights)."""
        with torch.no_grad():
            target_features = self(target)
        loss = prediction.new_zeros(())
        for weight, predicted, expected in zip(self.LAYER_WEIGHTS, self(prediction), target_features):
            loss = loss + weight * F.l1_loss(predicted, expected)
        return loss


def load_vgg(path: str | None, input_style: str = "caffe") -> VGG19Features | None:
    """The VGG feature extractor, or None (with a warning) when `path` is unset or missing."""
    if not path:
        return None
    if not Path(path).is_file():
        warnings.warn(f"VGG19 weights {path} not found: the perceptual loss is skipped", stacklevel=2)
        return None
    vgg = VGG19Features(input_style)
    vgg.load_weights(path)
    return vgg.eval()


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
    raise ValueError(f"unsupported prediction_type {prediction_type!r}; expected one of {PREDICTION_TYPES}")


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
        drop_prewarp = _rand((batch_size,), generator, device) < loss_cfg.prewarp_dropout_prob
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
    timesteps = (
        (_rand((batch_size,), generator, device) * num_train_timesteps).long().clamp_max(num_train_timesteps - 1)
    )
    noise = _randn(tuple(latents.shape), generator, device)
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
    use_pixel_loss = loss_cfg.pixel_weight > 0 or (vgg is not None and loss_cfg.vgg_weight > 0)
    if use_pixel_loss:
        warped_noise = _randn(tuple(latents.shape), generator, device)
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
        raise ValueError(f"unsupported prediction_type {prediction_type!r}; expected one of {PREDICTION_TYPES}")
    per_sample_mse = F.mse_loss(model_output[:batch_size], target, reduction="none").mean(dim=(1, 2, 3))  # (B,)
    if loss_cfg.snr_gamma is not None:
        per_sample_mse = per_sample_mse * min_snr_weights(alphas_cumprod, loss_cfg.snr_gamma, prediction_type)
    eps_loss = per_sample_mse.mean()
    loss = eps_loss
    losses = {"eps_loss": eps_loss.detach()}  # the denoising term, whatever the parametrisation
    if use_pixel_loss:
        predicted_x0 = predicted_original(noisy_warped, model_output[batch_size:], alphas_cumprod, prediction_type)
        decoded = vae.decode((predicted_x0 / vae.config.scaling_factor).to(weight_dtype)).sample.float()
        pixel_loss = F.mse_loss(decoded, batch["person"].float())
        loss = loss + loss_cfg.pixel_weight * pixel_loss
        losses["warped_start_x0_loss"] = pixel_loss.detach()
        if vgg is not None and loss_cfg.vgg_weight > 0:
            vgg_loss = vgg.perceptual_loss(decoded, batch["person"].float())
            loss = loss + loss_cfg.vgg_weight * vgg_loss
            losses["vgg_loss"] = vgg_loss.detach()
    losses["loss"] = loss
    return losses


# ----------------------------------------------------------------------------------------------------------------------
# data


class EpochSeededSampler(Sampler[int]):
    """A permutation of `range(n)` drawn from `(seed, epoch)` only: resuming at any epoch reproduces the order."""

    def __init__(self, num_samples: int, seed: int, shuffle: bool = True):
        self.num_samples = num_samples
        self.seed = seed
        self.shuffle = shuffle
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        if not self.shuffle:
            return iter(range(self.num_samples))
        generator = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        return iter(torch.randperm(self.num_samples, generator=generator).tolist())

    def __len__(self) -> int:
        return self.num_samples


def _draw_rect(image: torch.Tensor, top: int, bottom: int, left: int, right: int, value: torch.Tensor) -> None:
    image[:, max(top, 0) : max(bottom, 0), max(left, 0) : max(right, 0)] = value.view(-1, 1, 1)


class SyntheticTryOnDataset(Dataset):
    """Tiny procedural try-on samples in the `mvvton.data.sample` schema (smoke tests; no files).

    Each sample: a grey background, a body block whose torso wears a two-colour garment (front colour + a stripe
    seen from the front, back colour from the back), garment product images of both sides, an agnostic person with
    a grey torso, and a "pre-warped" composite pasting a slightly shifted garment. The person view cycles through
    front, side and back; side views hard-select the front garment (as the released sampler).
    """

    VIEWS = ("front", "side", "back")

    def __init__(self, num_samples: int = 8, height: int = 64, width: int = 64, seed: int = 0):
        self.num_samples = num_samples
        self.height = height
        self.width = width
        self.seed = seed

    def __len__(self) -> int:
        return self.num_samples

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not 0 <= index < self.num_samples:
            raise IndexError(index)
        generator = torch.Generator().manual_seed(self.seed * 7919 + index)
        height, width = self.height, self.width
        view = self.VIEWS[index % 3]
        front_colour = torch.rand(3, generator=generator) * 2 - 1
        back_colour = torch.rand(3, generator=generator) * 2 - 1
        stripe_colour = -front_colour
        body_colour = torch.tensor([0.6, 0.2, 0.0])
        shift = int(torch.randint(-2, 3, (1,), generator=generator))

        cx = width // 2
        torso = (height // 4, height * 5 // 8, cx - width // 5, cx + width // 5)
        person = torch.full((3, height, width), 0.5)
        _draw_rect(person, height // 10, height * 9 // 10, cx - width // 4, cx + width // 4, body_colour)
        garment_colour = back_colour if view == "back" else front_colour
        _draw_rect(person, *torso, garment_colour)
        if view != "back":
            _draw_rect(person, torso[0], torso[1], cx - 1, cx + 2 if view == "front" else cx + 4, stripe_colour)

        inpaint_mask = torch.zeros(1, height, width)
        _draw_rect(inpaint_mask, torso[0] - 2, torso[1] + 2, torso[2] - 2, torso[3] + 2, torch.ones(1))
        agnostic = torch.where(inpaint_mask > 0.5, torch.zeros(3, 1, 1), person)
        inpaint_image = agnostic.clone()
        t, b, lft, rgt = torso
        _draw_rect(inpaint_image, t + shift, b + shift, lft - shift, rgt - shift, garment_colour * 0.8)

        def garment_image(colour: torch.Tensor, stripe: bool) -> tuple[torch.Tensor, torch.Tensor]:
            image, mask = torch.ones(3, height, width), torch.zeros(1, height, width)
            box = (height // 6, height * 5 // 6, width // 6, width * 5 // 6)
            _draw_rect(image, *box, colour)
            _draw_rect(mask, *box, torch.ones(1))
            if stripe:
                _draw_rect(image, box[0], box[1], cx - 2, cx + 2, stripe_colour)
            return image, mask

        garment_front, garment_front_mask = garment_image(front_colour, True)
        garment_back, garment_back_mask = garment_image(back_colour, False)

        def skeleton(facing: str) -> torch.Tensor:
            image = torch.full((3, height, width), -1.0)
            _draw_rect(image, height // 8, height * 3 // 4, cx - 1, cx + 1, torch.tensor([1.0, 0.0, 0.0]))
            right = torch.tensor([0.0, 1.0, 0.3]) if facing != "back" else torch.tensor([0.0, 0.3, 1.0])
            left = -right
            _draw_rect(image, height // 4, height // 4 + 2, cx - width // 4, cx, right)
            _draw_rect(image, height // 4, height // 4 + 2, cx, cx + width // 4, left)
            return image

        return {
            "person": person,
            "inpaint_image": inpaint_image,
            "inpaint_mask": inpaint_mask,
            "agnostic": agnostic,
            "garment_front": garment_front,
            "garment_back": garment_back,
            "garment_front_mask": garment_front_mask,
            "garment_back_mask": garment_back_mask,
            "skeleton_person": skeleton(view),
            "skeleton_front": skeleton("front"),
            "skeleton_back": skeleton("back"),
            "person_keypoints": torch.zeros(18, 3),
            "view": view,
            "garment_view": "back" if view == "back" else "front",
            "sample_id": f"synthetic_{index:05d}",
        }


class CachedDataset(Dataset):
    """Keeps every sample after its first load (small datasets read from JPEG at every epoch otherwise)."""

    def __init__(self, dataset: Dataset):
        self.dataset = dataset
        self.cache: dict[int, Any] = {}

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> Any:
        if index not in self.cache:
            self.cache[index] = self.dataset[index]
        return self.cache[index]


def build_dataset(
    dataset: str,
    root: str | None,
    split: str,
    height: int,
    width: int,
    *,
    paired: bool = True,
    num_synthetic_samples: int = 8,
    max_samples: int | None = None,
    cache_in_memory: bool = False,
    seed: int = 0,
) -> Dataset:
    """A dataset returning the `mvvton.data.sample` schema.

    `synthetic`: `SyntheticTryOnDataset` (no files). `mvg` / `synthmvg`: `mvvton.data.mvg.MVGDataset(root, split)`
    (SynthMVG, written by `mvvton data synth`, uses MVG's layout). `manifest`: `mvvton.data.manifest.ManifestDataset`
    of the JSONL file `root` (or `<root>/<split>.jsonl`).
    """
    if dataset == "synthetic":
        data: Dataset = SyntheticTryOnDataset(num_synthetic_samples, height, width, seed=seed + (split != "train"))
    elif dataset in ("mvg", "synthmvg"):
        from mvvton.data.mvg import MVGDataset

        if root is None:
            raise ValueError(f"data.dataset={dataset!r} needs data.root")
        data = MVGDataset(root, split=split, paired=paired, height=height, width=width, seed=seed)
    elif dataset == "manifest":
        from mvvton.data.manifest import ManifestDataset

        if root is None:
            raise ValueError("data.dataset='manifest' needs data.root (a .jsonl file or a folder with <split>.jsonl)")
        manifest = Path(root)
        if manifest.is_dir():
            manifest = manifest / f"{split}.jsonl"
        data = ManifestDataset(manifest, height=height, width=width, seed=seed)
    else:
        raise ValueError(f"unknown dataset {dataset!r}")
    if max_samples is not None and max_samples < len(data):
        data = torch.utils.data.Subset(data, list(range(max_samples)))
    return CachedDataset(data) if cache_in_memory else data


# ----------------------------------------------------------------------------------------------------------------------
# VAE training


def vae_training_loss(
    vae: nn.Module,
    images: torch.Tensor,
    reconstruction: str = "l1",
    kl_weight: float = 1e-6,
    generator: torch.Generator | None = None,
) -> dict[str, torch.Tensor]:
    """AutoencoderKL objective: reconstruction (L1 or MSE, pixels in [-1, 1]) + `kl_weight` · KL(q(z|x) ‖ N(0, I)).

    Args:
        images: `(B, 3, H, W)` in [-1, 1].
    Returns:
        `loss` (differentiable), detached `reconstruction_loss`, `kl_loss` (mean over latent elements).
    """
    posterior = vae.encode(images).latent_dist
    latents = posterior.sample(generator)
    decoded = vae.decode(latents).sample
    if reconstruction == "l1":
        reconstruction_loss = F.l1_loss(decoded, images)
    elif reconstruction == "mse":
        reconstruction_loss = F.mse_loss(decoded, images)
    else:
        raise ValueError(f"reconstruction must be l1 or mse, got {reconstruction!r}")
    kl_loss = posterior.kl().mean() / latents[0].numel()
    loss = reconstruction_loss + kl_weight * kl_loss
    return {"loss": loss, "reconstruction_loss": reconstruction_loss.detach(), "kl_loss": kl_loss.detach()}


@torch.no_grad()
def init_posterior_logvar(vae: nn.Module, logvar: float) -> None:
    """Make a fresh AutoencoderKL's posterior start with `log σ² = logvar` for every input.

    With the default init the posterior std is ~1 while the latent means are small, so the decoder first sees mostly
    noise and learns a grey average; a tiny KL weight takes very long to shrink σ. Zeroing the log-variance half of
    `quant_conv` and setting its bias fixes σ at the start; the KL term can still raise it during training.
    """
    channels = vae.quant_conv.out_channels // 2
    vae.quant_conv.weight[channels:].zero_()
    vae.quant_conv.bias[channels:].fill_(logvar)


@torch.no_grad()
def latent_scaling_factor(vae: nn.Module, images: torch.Tensor) -> float:
    """`1 / std` of the posterior means of `images` `(B, 3, H, W)`: the `scaling_factor` giving unit-variance latents."""
    latents = vae.encode(images).latent_dist.mode()
    return float(1.0 / latents.flatten().std().clamp_min(1e-6))
