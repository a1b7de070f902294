"""A Paint-by-Example diffusers folder -> a fresh MV-VTON model to fine-tune (the released training's init).

The denoiser and VAE are copied; the garment encoder is a copy of the denoiser's encoder; the joint-attention local
branch (`to_{q,k,v}_ip`: PyTorch default init, `ip_scale`: 0), the garment-image embedding, the tokenizers, the
soft-selection projections and the pose encoder are new. With the gates at 0 the model starts as Paint-by-Example.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import torch
from diffusers import AutoencoderKL, UNet2DConditionModel

from mvvton.errors import CheckpointConversionError
from mvvton.models import GarmentEncoderModel, GarmentImageEncoderModel, MVVTONUNet2DConditionModel, PoseEncoderModel

CLIP_VISION_KEYS = (
    "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "image_size", "patch_size",
    "hidden_act", "layer_norm_eps", "projection_dim", "num_channels",
)  # fmt: skip
MAPPER_RENAMES = (
    ("norm1.", "ln_1."),
    ("norm3.", "ln_2."),
    ("ff.net.0.proj.", "mlp.c_fc."),
    ("ff.net.2.", "mlp.c_proj."),
    ("attn1.to_out.0.", "attn.c_proj."),
)


def _read_state_dict(folder: Path) -> dict[str, torch.Tensor]:
    for name in ("model.safetensors", "diffusion_pytorch_model.safetensors"):
        if (folder / name).is_file():
            from safetensors.torch import load_file

            return load_file(str(folder / name))
    for name in ("pytorch_model.bin", "diffusion_pytorch_model.bin"):
        if (folder / name).is_file():
            return torch.load(str(folder / name), map_location="cpu", weights_only=True)
    raise CheckpointConversionError(f"no weights file in {folder}")


def convert_paint_by_example_image_encoder(folder: str | Path) -> GarmentImageEncoderModel:
    """Paint-by-Example `image_encoder/` (CLIP vision + mapper of diffusers transformer blocks) -> ours."""
    folder = Path(folder)
    config = json.loads((folder / "config.json").read_text())
    vision_config = {key: config[key] for key in CLIP_VISION_KEYS if key in config}
    source = _read_state_dict(folder)
    mapper_layers = len({m.group(1) for key in source if (m := re.match(r"mapper\.blocks\.(\d+)\.", key))})
    projection_dim = source["proj_out.weight"].shape[0]
    model = GarmentImageEncoderModel(
        vision_config=vision_config, mapper_layers=mapper_layers, mapper_heads=1, projection_dim=projection_dim
    )
    clip_prefix = "vision_model." if any(k.startswith("vision_model.vision_model.") for k in model.state_dict()) else ""
    target: dict[str, torch.Tensor] = {}
    qkv: dict[str, dict[str, torch.Tensor]] = {}
    for key, tensor in source.items():
        if key.endswith("position_ids"):
            continue
        if key.startswith("model."):
            inner = key[len("model."):].removeprefix("vision_model.")
            target[f"vision_model.{clip_prefix}{inner}"] = tensor
        elif m := re.match(r"mapper\.blocks\.(\d+)\.attn1\.to_([qkv])\.(weight|bias)", key):
            qkv.setdefault(f"mapper.{m.group(1)}.attn.c_qkv.{m.group(3)}", {})[m.group(2)] = tensor
        elif key.startswith("mapper.blocks."):
            rest = key[len("mapper.blocks."):]
            for old, new in MAPPER_RENAMES:
                rest = rest.replace(old, new)
            target["mapper." + rest] = tensor
        elif key.startswith(("final_layer_norm.", "proj_out.", "uncond_vector")):
            target[key] = tensor
        else:
            raise CheckpointConversionError(f"unexpected Paint-by-Example image-encoder key {key!r}")
    for name, parts in qkv.items():  # one head: the fused projection is [q; k; v]
        target[name] = torch.cat([parts["q"], parts["k"], parts["v"]], dim=0)
    model.load_state_dict(target, strict=True)
    return model


def init_from_paint_by_example(
    folder: str | Path,
    *,
    num_views: int = 2,
    local_token_injection: str = "cumulative",
    garment_sample_size: tuple[int, int] | None = (512, 512),
    pose_base_channels: int = 4,
    pose_sample_size: tuple[int, int] | None = None,
) -> dict[str, torch.nn.Module]:
    """Build MV-VTON components from a local Paint-by-Example diffusers folder (`unet/`, `vae/`, `image_encoder/`)."""
    folder = Path(folder)
    for sub in ("unet", "vae", "image_encoder"):
        if not (folder / sub).is_dir():
            raise CheckpointConversionError(f"{folder} is not a Paint-by-Example folder: missing {sub}/")
    plain_unet = UNet2DConditionModel.from_pretrained(str(folder / "unet"))
    multiview = num_views > 1
    components: dict[str, torch.nn.Module | None] = {
        "unet": MVVTONUNet2DConditionModel.from_unet(plain_unet, local_token_injection=local_token_injection),
        "garment_encoder": GarmentEncoderModel.from_unet(
            plain_unet, num_views=num_views, use_soft_selection=multiview, garment_sample_size=garment_sample_size
        ),
        "pose_encoder": PoseEncoderModel(
            base_channels=pose_base_channels,
            cross_attention_dim=plain_unet.config.cross_attention_dim,
            sample_size=pose_sample_size,
        )
        if multiview
        else None,
        "vae": AutoencoderKL.from_pretrained(str(folder / "vae")),
        "image_encoder": convert_paint_by_example_image_encoder(folder / "image_encoder"),
    }
    return components
