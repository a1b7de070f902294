"""Deprecated: the old home of the training helpers, kept as a re-export for one release (0.1.x); removed in 0.2.

Import from the modules that own each concern instead (docs/training.md, "Code layout"):
`mvvton.training.config`, `.components`, `.trainable`, `.conditioning`, `.objective`, `.perceptual`, `.vae_loss`,
and `mvvton.data.synthetic` / `mvvton.data.training` for the training datasets.
"""

import warnings

from mvvton.data.synthetic import SyntheticTryOnDataset
from mvvton.data.training import CachedDataset, EpochSeededSampler, build_dataset
from mvvton.models.image_encoder import CLIP_IMAGE_MEAN, CLIP_IMAGE_STD
from mvvton.training.components import (
    COMPONENT_NAMES,
    TRAINED_COMPONENT_NAMES,
    build_components,
    default_noise_scheduler_config,
)
from mvvton.training.conditioning import cfg_dropout_mask, clip_garment_crop, drop_global_tokens, select_garment_view
from mvvton.training.config import (
    PREDICTION_TYPES,
    TRAINABLE_MODES,
    CheckpointConfig,
    ConfigT,
    DataConfig,
    LoggingConfig,
    LossConfig,
    ModelConfig,
    OptimConfig,
    ScheduleConfig,
    TrainConfig,
    VAEDataConfig,
    VAETrainConfig,
    apply_overrides,
    config_from_dict,
    config_to_dict,
    flat_config,
    load_config,
    save_config,
)
from mvvton.training.objective import (
    MVVTONTrainingModule,
    compute_training_loss,
    encode_latents,
    keep_mask_latent,
    min_snr_weights,
    predicted_original,
)
from mvvton.training.perceptual import VGG19Features, load_vgg
from mvvton.training.trainable import GATE_PARAMETER_SUFFIX, optimizer_param_groups, select_trainable
from mvvton.training.vae_loss import init_posterior_logvar, latent_scaling_factor, vae_training_loss

warnings.warn(
    "mvvton.training_utils is deprecated and will be removed in mvvton 0.2: import from mvvton.training.<concern> "
    "(config, components, trainable, conditioning, objective, perceptual, vae_loss) and mvvton.data.training / "
    "mvvton.data.synthetic (see docs/training.md, 'Code layout')",
    DeprecationWarning,
    stacklevel=2,
)

__all__ = [
    "CLIP_IMAGE_MEAN",
    "CLIP_IMAGE_STD",
    "COMPONENT_NAMES",
    "GATE_PARAMETER_SUFFIX",
    "PREDICTION_TYPES",
    "TRAINABLE_MODES",
    "TRAINED_COMPONENT_NAMES",
    "CachedDataset",
    "CheckpointConfig",
    "ConfigT",
    "DataConfig",
    "EpochSeededSampler",
    "LoggingConfig",
    "LossConfig",
    "MVVTONTrainingModule",
    "ModelConfig",
    "OptimConfig",
    "ScheduleConfig",
    "SyntheticTryOnDataset",
    "TrainConfig",
    "VAEDataConfig",
    "VAETrainConfig",
    "VGG19Features",
    "apply_overrides",
    "build_components",
    "build_dataset",
    "cfg_dropout_mask",
    "clip_garment_crop",
    "compute_training_loss",
    "config_from_dict",
    "config_to_dict",
    "default_noise_scheduler_config",
    "drop_global_tokens",
    "encode_latents",
    "flat_config",
    "init_posterior_logvar",
    "keep_mask_latent",
    "latent_scaling_factor",
    "load_config",
    "load_vgg",
    "min_snr_weights",
    "optimizer_param_groups",
    "predicted_original",
    "save_config",
    "select_garment_view",
    "select_trainable",
    "vae_training_loss",
]
