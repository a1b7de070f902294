"""Which parameters train (`select_trainable` modes of docs/training.md) and their AdamW parameter groups."""

from __future__ import annotations

from typing import Any

from torch import nn

from mvvton.errors import InvalidArgumentError
from mvvton.training.config import TRAINABLE_MODES


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
        raise InvalidArgumentError(f"trainable must be one of {TRAINABLE_MODES}, got {mode!r}")
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
