"""Official MV-VTON Lightning checkpoints (`mvg.ckpt`, `vitonhd.ckpt`) -> mvvton components.

The mapping works on key names only; every size (channels, levels, widths, token dim) is read from the tensors' shapes,
so the same code converts the released model and the tiny reference fixture. Head counts are not visible in shapes and
are arguments. Keys the original code never uses are reported by group and dropped; any other key that does not map,
and any model parameter left without a value, is an error.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from mvvton.errors import CheckpointConversionError

UNET_PREFIX = "model.diffusion_model."
VAE_PREFIX = "first_stage_model."
CLIP_PREFIX = "cond_stage_model.transformer."
MAPPER_PREFIX = "cond_stage_model.mapper.resblocks."
GARMENT_ENCODER_PREFIX = "local_controlnet."
POSE_PREFIX = "pose_model."

SCHEDULE_BUFFERS = frozenset(
    {
        "betas",
        "alphas_cumprod",
        "alphas_cumprod_prev",
        "sqrt_alphas_cumprod",
        "sqrt_one_minus_alphas_cumprod",
        "log_one_minus_alphas_cumprod",
        "sqrt_recip_alphas_cumprod",
        "sqrt_recipm1_alphas_cumprod",
        "posterior_variance",
        "posterior_log_variance_clipped",
        "posterior_mean_coef1",
        "posterior_mean_coef2",
        "logvar",
        "lvlb_weights",
    }
)

# (group name, predicate) of keys the original forward never reads.
UNUSED_GROUPS: tuple[tuple[str, Callable[[str], bool]], ...] = (
    ("vgg (training loss backbone)", lambda key: key.startswith("vgg.")),
    ("diffusion schedule buffers (recomputed by the scheduler)", lambda key: key in SCHEDULE_BUFFERS),
    ("EMA weights (use_ema was off)", lambda key: key.startswith("model_ema.")),
    ("CLIP position_ids buffer", lambda key: key.endswith("embeddings.position_ids")),
    (
        "joint-attention parameters of self-attention layers (never used)",
        lambda key: key.startswith(UNET_PREFIX) and ".attn1." in key and ("_ip." in key or key.endswith("ip_scale")),
    ),
    (
        "joint-attention parameters of encoder / middle cross-attention (no local tokens reach them)",
        lambda key: key.startswith((UNET_PREFIX + "input_blocks.", UNET_PREFIX + "middle_block."))
        and ("_ip." in key or key.endswith("ip_scale")),
    ),
    (
        "garment-encoder middle block (computed and discarded by the original)",
        lambda key: key.startswith((GARMENT_ENCODER_PREFIX + "mid_block.", GARMENT_ENCODER_PREFIX + "controlnet_mid_block.")),
    ),
)

RESNET_RENAMES = (
    ("in_layers.0.", "norm1."),
    ("in_layers.2.", "conv1."),
    ("emb_layers.1.", "time_emb_proj."),
    ("out_layers.0.", "norm2."),
    ("out_layers.3.", "conv2."),
    ("skip_connection.", "conv_shortcut."),
)
JOINT_PARAMETERS = ("to_q_ip.", "to_k_ip.", "to_v_ip.", "ip_scale")


@dataclass
class ConversionResult:
    """Per component (`unet`, `garment_encoder`, `pose_encoder`, `image_encoder`, `vae`): config and state dict."""

    configs: dict[str, dict] = field(default_factory=dict)
    state_dicts: dict[str, dict[str, torch.Tensor]] = field(default_factory=dict)
    unused_groups: dict[str, int] = field(default_factory=dict)  # group -> number of keys dropped
    absent_components: list[str] = field(default_factory=list)
    variant: str = "multiview"


# ------------------------------------------------------------------------------------------------------------------
# loading


def load_ldm_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a Lightning `.ckpt` (safely: `weights_only=True`) or a `.safetensors` state dict."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointConversionError(f"checkpoint not found: {path}")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    try:
        checkpoint = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as error:  # pickle with disallowed globals, truncated file, ...
        raise CheckpointConversionError(
            f"could not read {path} as a weights-only torch checkpoint ({error}). Only plain tensor checkpoints are "
            "loaded (no arbitrary pickled code); re-save it with torch.save(ckpt['state_dict']) or as safetensors."
        ) from error
    state_dict = checkpoint.get("state_dict", checkpoint) if isinstance(checkpoint, dict) else None
    if not isinstance(state_dict, dict):
        raise CheckpointConversionError(f"{path} holds no state_dict")
    return state_dict


# ------------------------------------------------------------------------------------------------------------------
# key maps (source key without prefix -> target key)


def _rename(key: str, renames: tuple[tuple[str, str], ...]) -> str:
    for old, new in renames:
        key = key.replace(old, new)
    return key


def _unet_geometry(keys: list[str]) -> tuple[int, int]:
    """(number of resolution levels, res-blocks per level) read from the LDM UNet key names."""
    input_indices = {int(m.group(1)) for key in keys if (m := re.match(r"input_blocks\.(\d+)\.", key))}
    output_indices = {int(m.group(1)) for key in keys if (m := re.match(r"output_blocks\.(\d+)\.", key))}
    num_inputs, num_outputs = max(input_indices) + 1, max(output_indices) + 1
    # num_outputs = L (n + 1); num_inputs = 1 + L n + (L - 1) = L (n + 1)  ->  need the downsampler positions
    downsamplers = {int(m.group(1)) for key in keys if (m := re.match(r"input_blocks\.(\d+)\.0\.op\.", key))}
    num_levels = len(downsamplers) + 1
    layers_per_block = num_outputs // num_levels - 1
    if num_inputs != num_levels * (layers_per_block + 1):
        raise CheckpointConversionError(
            f"unexpected UNet layout: {num_inputs} input blocks, {num_outputs} output blocks, {num_levels} levels"
        )
    return num_levels, layers_per_block


def map_unet_key(key: str, num_levels: int, layers_per_block: int, attention_output_blocks: set[int]) -> str | None:
    """LDM `UNetModel` key (prefix stripped) -> diffusers `UNet2DConditionModel` key; joint params -> processor."""
    period = layers_per_block + 1
    if key.startswith("time_embed.0."):
        return key.replace("time_embed.0.", "time_embedding.linear_1.")
    if key.startswith("time_embed.2."):
        return key.replace("time_embed.2.", "time_embedding.linear_2.")
    if key.startswith("input_blocks.0.0."):
        return key.replace("input_blocks.0.0.", "conv_in.")
    if key.startswith("out.0."):
        return key.replace("out.0.", "conv_norm_out.")
    if key.startswith("out.2."):
        return key.replace("out.2.", "conv_out.")
    if m := re.match(r"input_blocks\.(\d+)\.(\d+)\.(.*)", key):
        index, part, rest = int(m.group(1)), int(m.group(2)), m.group(3)
        level, position = divmod(index - 1, period)
        if position == layers_per_block:
            return f"down_blocks.{level}.downsamplers.0.conv.{rest.removeprefix('op.')}"
        if part == 0:
            return f"down_blocks.{level}.resnets.{position}.{_rename(rest, RESNET_RENAMES)}"
        return f"down_blocks.{level}.attentions.{position}.{rest}"
    if m := re.match(r"middle_block\.(\d+)\.(.*)", key):
        part, rest = int(m.group(1)), m.group(2)
        if part == 1:
            return f"mid_block.attentions.0.{rest}"
        return f"mid_block.resnets.{part // 2}.{_rename(rest, RESNET_RENAMES)}"
    if m := re.match(r"output_blocks\.(\d+)\.(\d+)\.(.*)", key):
        index, part, rest = int(m.group(1)), int(m.group(2)), m.group(3)
        up_level, position = divmod(index, period)
        if part == 0:
            return f"up_blocks.{up_level}.resnets.{position}.{_rename(rest, RESNET_RENAMES)}"
        if part == 1 and index in attention_output_blocks:
            target = f"up_blocks.{up_level}.attentions.{position}.{rest}"
            if any(parameter in rest for parameter in JOINT_PARAMETERS):  # held by the joint attention processor
                target = target.replace(".attn2.", ".attn2.processor.")
            return target
        return f"up_blocks.{up_level}.upsamplers.0.{rest}"
    return None


VAE_RESNET_RENAMES = (("nin_shortcut.", "conv_shortcut."),)
VAE_ATTENTION_RENAMES = (
    ("attn_1.norm.", "attentions.0.group_norm."),
    ("attn_1.q.", "attentions.0.to_q."),
    ("attn_1.k.", "attentions.0.to_k."),
    ("attn_1.v.", "attentions.0.to_v."),
    ("attn_1.proj_out.", "attentions.0.to_out.0."),
)


def map_vae_key(key: str, num_levels: int) -> str | None:
    """LDM `AutoencoderKL` key (prefix stripped) -> diffusers `AutoencoderKL` key."""
    if key.startswith(("quant_conv.", "post_quant_conv.")):
        return key
    m = re.match(r"(encoder|decoder)\.(.*)", key)
    if not m:
        return None
    side, rest = m.group(1), m.group(2)
    if rest.startswith(("conv_in.", "conv_out.")):
        return f"{side}.{rest}"
    if rest.startswith("norm_out."):
        return f"{side}.{rest.replace('norm_out.', 'conv_norm_out.')}"
    if m := re.match(r"(down|up)\.(\d+)\.(block|downsample|upsample)\.(.*)", rest):
        direction, level, kind, tail = m.group(1), int(m.group(2)), m.group(3), m.group(4)
        block = level if direction == "down" else num_levels - 1 - level
        name = "down_blocks" if direction == "down" else "up_blocks"
        if kind == "block":
            return f"{side}.{name}.{block}.resnets.{_rename(tail, VAE_RESNET_RENAMES)}"
        sampler = "downsamplers" if kind == "downsample" else "upsamplers"
        return f"{side}.{name}.{block}.{sampler}.0.{tail}"
    if rest.startswith("mid.block_1."):
        return f"{side}.mid_block.resnets.0.{_rename(rest[len('mid.block_1.'):], VAE_RESNET_RENAMES)}"
    if rest.startswith("mid.block_2."):
        return f"{side}.mid_block.resnets.1.{_rename(rest[len('mid.block_2.'):], VAE_RESNET_RENAMES)}"
    if rest.startswith("mid.attn_1."):
        return f"{side}.mid_block.{_rename(rest[len('mid.'):], VAE_ATTENTION_RENAMES)}"
    return None


def map_garment_encoder_key(key: str) -> str | None:
    """`local_controlnet.` key (prefix stripped, diffusers-style names) -> `GarmentEncoderModel` key."""
    renames = (
        ("controlnet_cond_embedding.", "garment_embedding."),
        ("controlnet_down_blocks.", "token_projections."),
        ("ehs_p_down_blocks.", "person_pose_projections."),
        ("ehs_c_down_blocks.", "garment_pose_projections."),
    )
    for old, new in renames:
        if key.startswith(old):
            return new + key[len(old):]
    if key.startswith(("conv_in.", "time_embedding.", "down_blocks.")):
        return key
    return None


def map_image_encoder_key(key: str, clip_key_prefix: str) -> str | None:
    """Global-branch keys (full names) -> `GarmentImageEncoderModel` keys."""
    if key.startswith(CLIP_PREFIX):
        inner = key[len(CLIP_PREFIX):]
        inner = inner.removeprefix("vision_model.")
        return f"vision_model.{clip_key_prefix}{inner}"
    if key.startswith(MAPPER_PREFIX):
        return "mapper." + key[len(MAPPER_PREFIX):]
    if key.startswith("cond_stage_model.final_ln."):
        return key.replace("cond_stage_model.final_ln.", "final_layer_norm.")
    if key.startswith("proj_out."):
        return key
    if key == "learnable_vector":
        return "uncond_vector"
    return None


# ------------------------------------------------------------------------------------------------------------------
# configs read from shapes


def _count(keys, pattern: str) -> int:
    return len({m.group(1) for key in keys if (m := re.match(pattern, key))})


def infer_configs(state_dict: dict[str, torch.Tensor], num_attention_heads: int, clip_num_heads: int | None) -> dict:
    """Component configs from tensor shapes (head counts given)."""
    unet_keys = [key[len(UNET_PREFIX):] for key in state_dict if key.startswith(UNET_PREFIX)]
    unet = {key: state_dict[UNET_PREFIX + key] for key in unet_keys}
    num_levels, layers_per_block = _unet_geometry(unet_keys)
    block_out_channels = tuple(
        unet[f"input_blocks.{level * (layers_per_block + 1) + 1}.0.out_layers.3.weight"].shape[0]
        for level in range(num_levels)
    )
    attention_levels = [
        f"input_blocks.{level * (layers_per_block + 1) + 1}.1.proj_in.weight" in unet for level in range(num_levels)
    ]
    cross_attention_dim = next(v.shape[1] for k, v in unet.items() if k.endswith("attn2.to_k.weight"))
    down_block_types = tuple("CrossAttnDownBlock2D" if a else "DownBlock2D" for a in attention_levels)
    up_block_types = tuple("CrossAttnUpBlock2D" if a else "UpBlock2D" for a in reversed(attention_levels))
    configs: dict[str, dict] = {
        "unet": dict(
            in_channels=unet["input_blocks.0.0.weight"].shape[1],
            out_channels=unet["out.2.weight"].shape[0],
            block_out_channels=block_out_channels,
            layers_per_block=layers_per_block,
            down_block_types=down_block_types,
            up_block_types=up_block_types,
            cross_attention_dim=cross_attention_dim,
            attention_head_dim=num_attention_heads,
            local_token_injection="cumulative",
        )
    }
    if any(key.startswith(GARMENT_ENCODER_PREFIX) for key in state_dict):
        encoder = {k[len(GARMENT_ENCODER_PREFIX):]: v for k, v in state_dict.items() if k.startswith(GARMENT_ENCODER_PREFIX)}
        num_blocks = _count(encoder, r"down_blocks\.(\d+)\.")
        embedding_channels = [encoder["controlnet_cond_embedding.conv_in.weight"].shape[0]] + [
            encoder[f"controlnet_cond_embedding.blocks.{2 * i + 1}.weight"].shape[0]
            for i in range(_count(encoder, r"controlnet_cond_embedding\.blocks\.(\d+)\.") // 2)
        ]
        encoder_attention = [f"down_blocks.{i}.attentions.0.proj_in.weight" in encoder for i in range(num_blocks)]
        has_pose = "ehs_p_down_blocks.0.weight" in encoder
        configs["garment_encoder"] = dict(
            in_channels=encoder["conv_in.weight"].shape[1],
            conditioning_embedding_out_channels=tuple(embedding_channels),
            block_out_channels=tuple(encoder[f"down_blocks.{i}.resnets.0.conv1.weight"].shape[0] for i in range(num_blocks)),
            down_block_types=tuple("CrossAttnDownBlock2D" if a else "DownBlock2D" for a in encoder_attention),
            layers_per_block=_count(encoder, r"down_blocks\.0\.resnets\.(\d+)\."),
            cross_attention_dim=next(v.shape[1] for k, v in encoder.items() if k.endswith("attn2.to_k.weight")),
            attention_head_dim=num_attention_heads,
            token_dim=encoder["controlnet_down_blocks.0.weight"].shape[0],
            num_views=2 if has_pose else 1,
            use_soft_selection=has_pose,
            garment_sample_size=(512, 512),
        )
    if POSE_PREFIX + "conv1.weight" in state_dict:
        configs["pose_encoder"] = dict(
            in_channels=state_dict[POSE_PREFIX + "conv1.weight"].shape[1],
            base_channels=state_dict[POSE_PREFIX + "conv1.weight"].shape[0],
            cross_attention_dim=state_dict[POSE_PREFIX + "linear.weight"].shape[0],
        )
    if any(key.startswith(CLIP_PREFIX) for key in state_dict):
        clip = {k[len(CLIP_PREFIX):].removeprefix("vision_model."): v for k, v in state_dict.items() if k.startswith(CLIP_PREFIX)}
        hidden = clip["embeddings.patch_embedding.weight"].shape[0]
        patch = clip["embeddings.patch_embedding.weight"].shape[-1]
        num_patches = clip["embeddings.position_embedding.weight"].shape[0] - 1
        configs["image_encoder"] = dict(
            vision_config=dict(
                hidden_size=hidden,
                intermediate_size=clip["encoder.layers.0.mlp.fc1.weight"].shape[0],
                num_hidden_layers=_count(clip, r"encoder\.layers\.(\d+)\."),
                num_attention_heads=clip_num_heads or max(1, hidden // 64),
                image_size=int(round(num_patches**0.5)) * patch,
                patch_size=patch,
                hidden_act="quick_gelu",
                layer_norm_eps=1e-5,
                projection_dim=state_dict["proj_out.weight"].shape[0],
            ),
            mapper_layers=_count(state_dict, r"cond_stage_model\.mapper\.resblocks\.(\d+)\."),
            mapper_heads=1,
            projection_dim=state_dict["proj_out.weight"].shape[0],
        )
    if any(key.startswith(VAE_PREFIX) for key in state_dict):
        vae = {k[len(VAE_PREFIX):]: v for k, v in state_dict.items() if k.startswith(VAE_PREFIX)}
        num_vae_levels = _count(vae, r"encoder\.down\.(\d+)\.")
        configs["vae"] = dict(
            in_channels=vae["encoder.conv_in.weight"].shape[1],
            out_channels=vae["decoder.conv_out.weight"].shape[0],
            down_block_types=("DownEncoderBlock2D",) * num_vae_levels,
            up_block_types=("UpDecoderBlock2D",) * num_vae_levels,
            block_out_channels=tuple(vae[f"encoder.down.{i}.block.0.conv1.weight"].shape[0] for i in range(num_vae_levels)),
            layers_per_block=_count(vae, r"encoder\.down\.0\.block\.(\d+)\."),
            latent_channels=vae["post_quant_conv.weight"].shape[0],
            norm_num_groups=32,
            scaling_factor=0.18215,
        )
    return configs


# ------------------------------------------------------------------------------------------------------------------


def _clip_key_prefix(configs: dict) -> str:
    """Whether the installed transformers nests CLIP weights under `vision_model.` (v4) or not (v5)."""
    from transformers import CLIPVisionConfig, CLIPVisionModel

    with torch.device("meta"):
        probe = CLIPVisionModel(CLIPVisionConfig(hidden_size=8, intermediate_size=8, num_hidden_layers=1,
                                                 num_attention_heads=1, image_size=28, patch_size=14))
    return "vision_model." if any(k.startswith("vision_model.") for k in probe.state_dict()) else ""


def convert_ldm_state_dict(
    state_dict: dict[str, torch.Tensor],
    num_attention_heads: int = 8,
    clip_num_heads: int | None = None,
) -> ConversionResult:
    """Map an original MV-VTON state dict onto mvvton components (names only; shapes come from the tensors)."""
    result = ConversionResult()
    result.configs = infer_configs(state_dict, num_attention_heads, clip_num_heads)
    result.variant = "multiview" if "pose_encoder" in result.configs else "frontal"
    unet_keys = [key[len(UNET_PREFIX):] for key in state_dict if key.startswith(UNET_PREFIX)]
    num_levels, layers_per_block = _unet_geometry(unet_keys)
    attention_output_blocks = {
        int(m.group(1)) for key in unet_keys if (m := re.match(r"output_blocks\.(\d+)\.1\.proj_in\.", key))
    }
    num_vae_levels = _count(state_dict, r"first_stage_model\.encoder\.down\.(\d+)\.")
    clip_key_prefix = _clip_key_prefix(result.configs) if "image_encoder" in result.configs else ""

    state_dicts: dict[str, dict[str, torch.Tensor]] = {name: OrderedDict() for name in result.configs}
    unmapped: list[str] = []
    for key, tensor in state_dict.items():
        group = next((name for name, is_unused in UNUSED_GROUPS if is_unused(key)), None)
        if group is not None:
            result.unused_groups[group] = result.unused_groups.get(group, 0) + 1
            continue
        component, target = None, None
        if key.startswith(UNET_PREFIX):
            component = "unet"
            target = map_unet_key(key[len(UNET_PREFIX):], num_levels, layers_per_block, attention_output_blocks)
        elif key.startswith(VAE_PREFIX):
            component, target = "vae", map_vae_key(key[len(VAE_PREFIX):], num_vae_levels)
            if target and re.search(r"attentions\.0\.(to_q|to_k|to_v|to_out\.0)\.weight$", target) and tensor.ndim == 4:
                tensor = tensor[:, :, 0, 0]  # 1x1 conv -> linear
        elif key.startswith(GARMENT_ENCODER_PREFIX):
            component, target = "garment_encoder", map_garment_encoder_key(key[len(GARMENT_ENCODER_PREFIX):])
        elif key.startswith(POSE_PREFIX):
            component, target = "pose_encoder", key[len(POSE_PREFIX):]
        else:
            component, target = "image_encoder", map_image_encoder_key(key, clip_key_prefix)
        if target is None or component not in state_dicts:
            unmapped.append(key)
            continue
        state_dicts[component][target] = tensor
    if unmapped:
        raise CheckpointConversionError(
            f"{len(unmapped)} checkpoint key(s) have no place in the mvvton model, e.g. {unmapped[:8]}. "
            "This is not an MV-VTON checkpoint, or a variant this converter does not know."
        )
    result.state_dicts = state_dicts
    result.absent_components = [
        name for name in ("vae", "image_encoder", "garment_encoder", "pose_encoder") if name not in result.configs
    ]
    if result.variant == "frontal" and "pose_encoder" in result.absent_components:
        result.absent_components.remove("pose_encoder")
    return result


def build_components(result: ConversionResult, device: str | torch.device = "cpu") -> dict[str, torch.nn.Module]:
    """Instantiate every converted component and load its weights strictly (missing or extra keys raise)."""
    from accelerate import init_empty_weights

    from mvvton.models import COMPONENT_CLASSES as classes

    components = {}
    for name, config in result.configs.items():
        with init_empty_weights():  # parameters on meta, buffers real; weights are assigned below
            model = classes[name](**config)
        expected = model.state_dict()
        given = result.state_dicts[name]
        missing = sorted(set(expected) - set(given))
        extra = sorted(set(given) - set(expected))
        wrong_shape = [k for k in set(expected) & set(given) if tuple(expected[k].shape) != tuple(given[k].shape)]
        if missing or extra or wrong_shape:
            raise CheckpointConversionError(
                f"{name}: {len(missing)} missing (e.g. {missing[:4]}), {len(extra)} unexpected (e.g. {extra[:4]}), "
                f"{len(wrong_shape)} wrong-shape (e.g. {wrong_shape[:4]}) parameter(s)"
            )
        model.load_state_dict(given, strict=True, assign=True)
        components[name] = model.to(device)
    return components
