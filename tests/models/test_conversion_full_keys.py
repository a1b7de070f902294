"""The converter maps every key of the released full-size checkpoint layout onto a full-size mvvton model.

Built on the meta device (names and shapes only, no 7 GB allocation).
"""

from __future__ import annotations

import json

import pytest
import torch

from mvvton.conversion.ldm_checkpoint import build_components, convert_ldm_state_dict
from mvvton.errors import CheckpointConversionError


@pytest.fixture(scope="module")
def full_size_state_dict(shared_dir) -> dict[str, torch.Tensor]:
    keys = json.loads((shared_dir / "reference" / "mvvton_full_keys.json").read_text())["keys"]
    assert len(keys) == 1961
    dtypes = {"float32": torch.float32, "int64": torch.int64, "float16": torch.float16}
    return {name: torch.empty(spec["shape"], dtype=dtypes[spec["dtype"]], device="meta") for name, spec in keys.items()}


def test_every_full_size_key_maps_with_matching_shapes(full_size_state_dict):
    result = convert_ldm_state_dict(full_size_state_dict, num_attention_heads=8, clip_num_heads=16)
    assert result.variant == "multiview" and result.absent_components == []
    unet = result.configs["unet"]
    assert unet["block_out_channels"] == (320, 640, 1280, 1280) and unet["in_channels"] == 9
    assert unet["cross_attention_dim"] == 768
    assert result.configs["image_encoder"]["vision_config"]["num_hidden_layers"] == 24
    assert result.configs["pose_encoder"] == {"in_channels": 3, "base_channels": 4, "cross_attention_dim": 768}
    mapped = sum(len(sd) for sd in result.state_dicts.values())
    dropped = sum(result.unused_groups.values())
    assert mapped + dropped == len(full_size_state_dict)
    assert result.unused_groups["vgg (training loss backbone)"] == 32
    # build_components instantiates each component on the meta device and checks names AND shapes both ways
    components = build_components(result, device="meta")
    assert set(components) == {"unet", "garment_encoder", "pose_encoder", "image_encoder", "vae"}
    joint = components["unet"].joint_attention_processors
    assert len(joint) == 9 and all(p.to_k_ip.weight.shape[1] == 768 for p in joint.values())


def test_unknown_key_fails_loudly(full_size_state_dict):
    broken = dict(full_size_state_dict)
    broken["model.diffusion_model.some_new_layer.weight"] = torch.empty(3, device="meta")
    with pytest.raises(CheckpointConversionError, match="some_new_layer"):
        convert_ldm_state_dict(broken)


def test_missing_key_fails_loudly(full_size_state_dict):
    broken = {k: v for k, v in full_size_state_dict.items() if "output_blocks.4.1.transformer_blocks.0.attn2.to_k_ip" not in k}
    result = convert_ldm_state_dict(broken, num_attention_heads=8, clip_num_heads=16)
    with pytest.raises(CheckpointConversionError, match="missing"):
        build_components(result, device="meta")


def test_frontal_checkpoint_layout_converts(full_size_state_dict):
    """vitonhd.ckpt (Frontal-View VTON) = the same layout without the pose model and soft-selection linears."""
    frontal = {k: v for k, v in full_size_state_dict.items()
               if not k.startswith("pose_model.") and ".ehs_" not in k}  # fmt: skip
    result = convert_ldm_state_dict(frontal, num_attention_heads=8, clip_num_heads=16)
    assert result.variant == "frontal" and "pose_encoder" not in result.configs
    components = build_components(result, device="meta")
    encoder = components["garment_encoder"]
    assert encoder.config.num_views == 1 and not encoder.config.use_soft_selection
