"""Typed training configs on pydantic v2: the YAML schema of `training/train_mvvton.py` and `training/train_vae.py`.

Each section is a pydantic model that forbids unknown keys; values are converted from YAML / `--set` text by
pydantic's lax mode (`"1e-5"` -> float, `"yes"` -> bool). Every failure raises
`mvvton.errors.InvalidConfigError` (a `ValueError`) whose message names the dotted key, the expected type and, for a
misspelt key, the closest valid one. `save_config` writes the resolved config as YAML that `load_config` reads back
unchanged (`train_config.yaml` next to the checkpoints).

    cfg = load_config("configs/train/tiny.yaml", ["optim.learning_rate=1e-5", "loss.snr_gamma=null"])
    save_config(cfg, "outputs/tiny/train_config.yaml")
"""

from __future__ import annotations

import contextvars
import difflib
import types
import typing
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from mvvton.errors import InvalidConfigError
from mvvton.utils.atomic import atomic_write_text

DatasetName = Literal["synthetic", "mvg", "manifest", "synthmvg"]
TrainableMode = Literal["paper", "released", "all", "decoder_attention", "local_encoders"]
PredictionType = Literal["epsilon", "v_prediction", "sample"]
TRAINABLE_MODES: tuple[str, ...] = typing.get_args(TrainableMode)
PREDICTION_TYPES: tuple[str, ...] = typing.get_args(PredictionType)
Probability = Annotated[float, Field(ge=0.0, le=1.0)]

_NULL_TEXT = {"none", "null", "~", ""}
_VALIDATING: contextvars.ContextVar[bool] = contextvars.ContextVar("mvvton_config_validating", default=False)


def _split_commas(value: Any) -> Any:
    """`"a, b"` -> `["a", "b"]` (the `--set data.image_keys=a,b` form of a list)."""
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


CommaSeparatedList = Annotated[list[str], BeforeValidator(_split_commas)]


def _unwrap_optional(annotation: Any) -> tuple[Any, bool]:
    """`X | None` -> `(X, True)`; anything else (other unions included) -> `(annotation, False)`."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        options = [option for option in typing.get_args(annotation) if option is not type(None)]
        if len(options) == 1 < len(typing.get_args(annotation)):
            return options[0], True
    return annotation, False


class ConfigSection(BaseModel):
    """Base of every config section: unknown keys are errors, numbers given for strings become strings, and
    construction failures raise `InvalidConfigError` naming the key (also when a section is built in code)."""

    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True)

    def __init__(self, **values: Any) -> None:
        # pydantic calls this for nested sections too; only the outermost call turns the (merged, located)
        # ValidationError into InvalidConfigError, nested ones let pydantic collect their errors under their key
        if _VALIDATING.get():
            super().__init__(**values)
            return
        token = _VALIDATING.set(True)
        try:
            super().__init__(**values)
        except ValidationError as error:
            raise InvalidConfigError(describe_validation_error(type(self), error)) from error
        finally:
            _VALIDATING.reset(token)

    @field_validator("*", mode="before")
    @classmethod
    def _normalise_scalar(cls, value: Any, info: ValidationInfo) -> Any:
        """Text such as `none` / `null` / `~` means None where None is allowed, a boolean is never a number
        (pydantic's lax mode would read `true` as 1), and integer text may use an exponent (`2e4`)."""
        annotation, optional = _unwrap_optional(cls.model_fields[info.field_name].annotation)
        if optional and isinstance(value, str) and value.strip().lower() in _NULL_TEXT:
            return None
        if annotation in (int, float) and isinstance(value, bool):
            raise ValueError(f"expected {_describe_type(annotation)}, got the boolean {value!r}")
        if annotation is int and isinstance(value, str):  # YAML 1.1 reads `2e4` as text; it is still 20000
            try:
                number = float(value)
            except ValueError:
                return value  # pydantic reports it
            return int(number) if number.is_integer() else value
        return value


# ----------------------------------------------------------------------------------------------------------------------
# train_mvvton.py


class DataConfig(ConfigSection):
    """Which dataset feeds training (sample schema of `mvvton.data.sample`)."""

    dataset: DatasetName = "synthetic"
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


class ModelConfig(ConfigSection):
    """How the components are initialised and which of them train."""

    init: Literal["scratch", "converted", "paint_by_example"] = "scratch"
    pretrained_path: str | None = None  # converted / PbE folder (unet/, image_encoder/, vae/, ...)
    component_configs: str | None = "configs/model/tiny"  # folder of <component>.json (scratch; PbE extras)
    vae_path: str | None = None  # replace the VAE by this save_pretrained folder (e.g. from train_vae.py)
    garment_encoder_from_unet: bool = True  # scratch: copy the UNet encoder into the garment encoder (paper init)
    local_token_injection: str | None = None  # cumulative | per_level (checked by the UNet); None keeps its config
    trainable: TrainableMode = "paper"  # see docs/training.md
    garment_timestep: Literal["same", "fixed"] = "same"  # same (as the denoiser, released training) | fixed
    garment_fixed_timestep: int = 999  # used when garment_timestep == "fixed" (the released sampler's value)
    # what the denoiser predicts: None keeps the scheduler's (released: epsilon).
    # Saved into the scheduler config, so the pipeline samples with the same parametrisation.
    prediction_type: PredictionType | None = None

    @model_validator(mode="after")
    def _pretrained_path_given(self) -> ModelConfig:
        if self.init != "scratch" and not self.pretrained_path:
            raise ValueError(f"init={self.init!r} needs pretrained_path (a folder of converted components)")
        return self


class OptimConfig(ConfigSection):
    """AdamW, batching and precision."""

    learning_rate: float = 1e-5
    scale_lr: bool = False  # multiply by batch size x accumulation x processes
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    adam_weight_decay: float = 0.01
    adam_epsilon: float = 1e-8
    max_grad_norm: float | None = None  # None: no clipping (the released trainer does not clip)
    train_batch_size: int = Field(default=2, ge=1)  # per process
    gradient_accumulation_steps: int = Field(default=1, ge=1)
    gradient_checkpointing: bool = False
    mixed_precision: Literal["no", "fp16", "bf16"] = "no"  # frozen parts are cast; trainable stay fp32
    use_ema: bool = False
    ema_decay: float = 0.9999
    # learning-rate multiplier (and no weight decay) for the zero-initialised joint-attention gates `ip_scale`: at the
    # base rate Adam moves them by <= lr per step, so the local garment branch stays near-silent for thousands of steps
    gate_lr_multiplier: float = Field(default=1.0, gt=0.0)


class ScheduleConfig(ConfigSection):
    """Length of training and learning-rate schedule (diffusers.optimization.get_scheduler names)."""

    max_train_steps: int = 10
    stop_after_steps: int | None = (
        None  # end this run early at this global step (schedule still spans max_train_steps)
    )
    lr_scheduler: str = "constant_with_warmup"  # constant | constant_with_warmup | cosine | linear | ...
    lr_warmup_steps: int = 0


class LossConfig(ConfigSection):
    """The objective of mvvton-spec.md §6 and its conditioning randomisation."""

    pixel_weight: float = 0.1  # λ_pix of the warped-start x̂0 loss; 0 skips the auxiliary pass
    # > 0: the warped-start pixel MSE compares both images blurred by this many pixels (a print a few pixels off is
    # then not pushed to a smear); 0 = the released full-resolution MSE
    pixel_lowpass_sigma: float = Field(default=0.0, ge=0.0)
    # weight of the detail-energy term on the same decoded x̂0 (training/detail_loss.py): local high-pass energy of
    # prediction vs ground truth, so a sharp print near the right place costs less than none; 0 = off (released)
    detail_weight: float = Field(default=0.0, ge=0.0)
    detail_highpass_sigma: float = Field(default=1.0, gt=0.0)
    detail_window_sigma: float = Field(default=2.0, gt=0.0)
    # leave the pre-warp's grey holes (grown by 2 px) out of the detail term, so their edges earn nothing
    detail_skip_prewarp_holes: bool = False
    vgg_weight: float = 0.001
    vgg_weights_path: str | None = None  # VGG19 weights (.pth/.safetensors); None/absent: VGG term skipped
    # caffe (the original's vgg19_conv.pth) | torchvision (ImageNet mean/std)
    vgg_input_style: Literal["caffe", "torchvision"] = "caffe"
    cfg_dropout_prob: Probability = 0.2
    cfg_dropout_mode: Literal["per_sample", "per_batch"] = "per_sample"  # per_batch: released, one draw per batch
    clip_crop_enlarge_min: float = 0.1
    clip_crop_enlarge_max: float = 0.2
    sample_posterior: bool = True  # E(x) = posterior sample (original) or its mean
    # Min-SNR-γ weighting of the denoising MSE (Hang et al. 2023); None = uniform over t (released)
    snr_gamma: float | None = None
    # per sample, replace the pre-warped composite (channels 4-7 and the warped start) by the plain agnostic person
    # with this probability, so the garment appearance must come through the garment tokens (0 = released)
    prewarp_dropout_prob: Probability = 0.0
    # training timesteps are drawn uniformly from [min_timestep, max_timestep] (None: the scheduler's last one), so a
    # model used with `strength` s < 1 can spend its training on the t <= s x T it will be asked to denoise
    min_timestep: int = Field(default=0, ge=0)
    max_timestep: int | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _timestep_range_ordered(self) -> LossConfig:
        if self.max_timestep is not None and self.min_timestep > self.max_timestep:
            raise ValueError(f"min_timestep ({self.min_timestep}) must not exceed max_timestep ({self.max_timestep})")
        return self


class CheckpointConfig(ConfigSection):
    checkpointing_steps: int = 500
    checkpoints_total_limit: int | None = None
    save_frozen_components: bool = False  # also write vae/ and scheduler/ in every checkpoint


class LoggingConfig(ConfigSection):
    report_to: str | None = "tensorboard"  # tensorboard | none
    validation_steps: int | None = None  # every N optimizer steps (and at the end); None: never
    num_validation_samples: int = 2
    validation_inference_steps: int = 20
    validation_seed: int = 0


class TrainConfig(ConfigSection):
    """Everything `training/train_mvvton.py` needs; YAML keys mirror these fields (nested by section)."""

    output_dir: str = "outputs/mvvton"
    seed: int = 0
    resume_from_checkpoint: str | None = None  # latest | path to a checkpoint-N folder
    data: DataConfig = Field(default_factory=DataConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    optim: OptimConfig = Field(default_factory=OptimConfig)
    schedule: ScheduleConfig = Field(default_factory=ScheduleConfig)
    loss: LossConfig = Field(default_factory=LossConfig)
    checkpointing: CheckpointConfig = Field(default_factory=CheckpointConfig)
    logging: LoggingConfig = Field(default_factory=LoggingConfig)


# ----------------------------------------------------------------------------------------------------------------------
# train_vae.py


class VAEDataConfig(ConfigSection):
    dataset: DatasetName = "synthetic"
    root: str | None = None
    split: str = "train"
    height: int = 64
    width: int = 64
    max_samples: int | None = None
    num_synthetic_samples: int = 8
    cache_in_memory: bool = True
    crop_size: int | None = None  # train on random crop_size x crop_size crops (the VAE is convolutional)
    # which image keys of each sample the VAE learns from (each is one training image)
    image_keys: CommaSeparatedList = Field(
        default_factory=lambda: ["person", "inpaint_image", "garment_front", "garment_back"]
    )


class VAETrainConfig(ConfigSection):
    """Config of `training/train_vae.py` (a small AutoencoderKL for domains without a pretrained VAE)."""

    output_dir: str = "outputs/vae"
    seed: int = 0
    vae_config: str = "configs/model/tiny/vae.json"
    # start from this saved AutoencoderKL folder instead of a fresh `vae_config` model
    pretrained_path: str | None = None
    # False: freeze the encoder (and quant_conv) and keep the pretrained scaling_factor, so the latent space, and any
    # denoiser trained on it, stay valid; only the decoder improves (needs pretrained_path)
    train_encoder: bool = True
    data: VAEDataConfig = Field(default_factory=VAEDataConfig)
    learning_rate: float = 1e-3
    train_batch_size: int = 8
    max_train_steps: int = 200
    lr_warmup_steps: int = 0
    reconstruction: Literal["l1", "mse"] = "l1"
    kl_weight: float = 1e-6
    init_logvar: float | None = -10.0  # start the posterior nearly deterministic (None: diffusers' default init)
    log_every: int = 20
    # crash-safe checkpoint-N folders every N steps (None: none), keeping the newest `checkpoints_total_limit`
    checkpointing_steps: int | None = 500
    checkpoints_total_limit: int | None = 2
    resume_from_checkpoint: str | None = None  # "latest" or a checkpoint-N folder


ConfigT = TypeVar("ConfigT", bound=ConfigSection)

# ----------------------------------------------------------------------------------------------------------------------
# error messages


def _describe_type(annotation: Any) -> str:
    """Plain-words name of a field type, e.g. `a number or null`, `one of 'no', 'fp16', 'bf16'`."""
    annotation, optional = _unwrap_optional(annotation)
    if typing.get_origin(annotation) is Annotated:
        annotation = typing.get_args(annotation)[0]
    names = {int: "an integer", float: "a number", bool: "a boolean (true/false)", str: "a string"}
    if annotation in names:
        text = names[annotation]
    elif typing.get_origin(annotation) is Literal:
        text = "one of " + ", ".join(repr(choice) for choice in typing.get_args(annotation))
    elif typing.get_origin(annotation) is list:
        (item,) = typing.get_args(annotation) or (Any,)
        text = f"a list of {_describe_type(item).removeprefix('a ').removeprefix('an ')}s"
    elif isinstance(annotation, type) and issubclass(annotation, BaseModel):
        text = "a mapping (section)"
    else:
        text = str(annotation)
    return f"{text} or null" if optional else text


def _field_at(cls: type[BaseModel], location: tuple[str | int, ...]) -> tuple[type[BaseModel], Any]:
    """The section holding the last key of a pydantic error location, and that key's annotation (None if unknown)."""
    section, annotation = cls, None
    for part in location:
        annotation = _unwrap_optional(annotation)[0] if annotation is not None else None
        if isinstance(part, int):
            annotation = (typing.get_args(annotation) or (None,))[0]
            continue
        if annotation is not None and isinstance(annotation, type) and issubclass(annotation, BaseModel):
            section = annotation
        field = section.model_fields.get(part)
        annotation = field.annotation if field is not None else None
    return section, annotation


def _dotted(location: tuple[str | int, ...]) -> str:
    return "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in location).lstrip(".")


def describe_validation_error(cls: type[BaseModel], error: ValidationError) -> str:
    """One line per problem: the dotted key, what is accepted, what was given (and a close valid key if misspelt)."""
    lines = []
    for problem in error.errors():
        location = tuple(problem["loc"])
        key = _dotted(location) or "<top level>"
        section, annotation = _field_at(cls, location)
        if problem["type"] == "extra_forbidden":
            valid = list(section.model_fields)
            where = f"section {_dotted(location[:-1])!r}" if len(location) > 1 else "the top level"
            close = difflib.get_close_matches(str(location[-1]), valid, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            lines.append(f"unknown config key {key!r} in {where}.{hint} Valid keys: {', '.join(valid)}")
        elif problem["type"] in ("value_error", "assertion_error") or annotation is None:
            message = problem["msg"].removeprefix("Value error, ")
            lines.append(f"{key}: {message}" if location else message)
        else:
            lines.append(f"{key}: expected {_describe_type(annotation)}, got {problem['input']!r} ({problem['msg']})")
    return "invalid config: " + "; ".join(lines)


# ----------------------------------------------------------------------------------------------------------------------
# loading and saving


def config_from_dict(cls: type[ConfigT], values: dict[str, Any]) -> ConfigT:
    """Build a config from nested dicts; unknown keys and wrongly typed values raise `InvalidConfigError`."""
    not_text = [key for key in values if not isinstance(key, str)]
    if not_text:
        raise InvalidConfigError(
            f"config keys must be names, got {not_text}; valid keys: {', '.join(cls.model_fields)}"
        )
    return cls(**values)  # not model_validate: that would wrap our error into a pydantic ValidationError


def _accepts_text(cls: type[BaseModel], parts: list[str]) -> bool:
    """Whether the field at `parts` holds a string (or a string choice), so an override keeps its raw text."""
    annotation = _field_at(cls, tuple(parts))[1]
    annotation = _unwrap_optional(annotation)[0] if annotation is not None else None
    if typing.get_origin(annotation) is Literal:
        return all(isinstance(choice, str) for choice in typing.get_args(annotation))
    return annotation is str


def apply_overrides(
    values: dict[str, Any], overrides: list[str] | None, cls: type[BaseModel] | None = None
) -> dict[str, Any]:
    """Apply `section.key=value` strings to a nested dict, in order; later ones win.

    The value is read as YAML (`1e-5`, `true`, `null`, `[a, b]`), except for string fields of `cls`, which keep the
    raw text (so `--set optim.mixed_precision=no` is the string "no", not YAML's false); `null` / `none` still
    mean None there. Types are checked afterwards by `config_from_dict`.
    """
    for override in overrides or []:
        if "=" not in override:
            raise InvalidConfigError(f"override {override!r} is not of the form section.key=value")
        dotted, raw = override.split("=", 1)
        parts = [part for part in dotted.strip().split(".") if part]
        if not parts:
            raise InvalidConfigError(f"override {override!r} has an empty key")
        node = values
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise InvalidConfigError(f"override {override!r}: {part!r} is not a section")
        text = raw.strip()
        keep_text = cls is not None and _accepts_text(cls, parts) and text.lower() not in _NULL_TEXT
        node[parts[-1]] = text if keep_text else (yaml.safe_load(raw) if text else "")
    return values


def load_config(
    path: str | Path | None, overrides: list[str] | None = None, cls: type[ConfigT] = TrainConfig
) -> ConfigT:
    """Read a YAML config (or start from defaults when `path` is None), apply `--set` overrides, type-check.

    Args:
        path: YAML file whose nesting mirrors the config sections (a saved `train_config.yaml` included).
        overrides: e.g. `["optim.learning_rate=1e-5", "schedule.max_train_steps=20"]`.
        cls: the config model (`TrainConfig` or `VAETrainConfig`).
    Raises:
        InvalidConfigError: unparsable YAML, unknown key, wrong type or invalid choice.
    """
    values: dict[str, Any] = {}
    if path is not None:
        with open(path, encoding="utf-8") as handle:
            try:
                loaded = yaml.safe_load(handle)
            except yaml.YAMLError as error:
                raise InvalidConfigError(f"{path} is not valid YAML: {error}") from error
        if loaded is not None and not isinstance(loaded, dict):
            raise InvalidConfigError(f"{path}: the top level of a config must be a mapping of sections")
        values = loaded or {}
    return config_from_dict(cls, apply_overrides(values, overrides, cls))


def config_to_dict(config: BaseModel) -> dict[str, Any]:
    """Nested plain dict (JSON types only, tuples as lists) suitable for YAML / JSON."""
    return config.model_dump(mode="json")


def save_config(config: BaseModel, path: str | Path) -> None:
    """Write the resolved config as YAML (loadable again with `load_config`), atomically."""
    atomic_write_text(path, yaml.safe_dump(config_to_dict(config), sort_keys=False))


def flat_config(config: BaseModel) -> dict[str, int | float | str | bool]:
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
