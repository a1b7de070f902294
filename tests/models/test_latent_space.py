"""adapt_unet_to_latent_space: new channel counts, one level fewer, every other weight carried over."""

from __future__ import annotations

import pytest
import torch

from mvvton.conversion.latent_space import adapt_unet_to_latent_space
from tests.testing_utils import get_dummy_components


@pytest.fixture(scope="module")
def components() -> dict:
    return get_dummy_components()


def test_adapted_unet_geometry_and_copied_weights(components):
    unet = components["unet"]  # 4 levels (8, 16, 16, 16), in 9 = 4 + 4 + 1, out 4
    adapted = adapt_unet_to_latent_space(unet, latent_channels=6, sample_size=(4, 4), num_levels=3)
    assert adapted.config.in_channels == 13 and adapted.config.out_channels == 6
    assert tuple(adapted.config.block_out_channels) == (8, 16, 16)
    assert len(adapted.down_blocks) == 3 and adapted.down_blocks[2].downsamplers is None
    old, new = unet.state_dict(), adapted.state_dict()
    # up block i of the 3-level UNet is up block i + 1 of the 4-level one (incl. the joint-attention gates)
    for key, value in new.items():
        if key.startswith("up_blocks."):
            index = int(key.split(".")[1])
            assert torch.equal(value, old[key.replace(f"up_blocks.{index}.", f"up_blocks.{index + 1}.", 1)]), key
        elif not key.startswith(("conv_in.", "conv_out.")):
            assert torch.equal(value, old[key]), key
    assert torch.equal(new["conv_in.weight"][:, 12:], old["conv_in.weight"][:, 8:])  # keep-mask filters


def test_adapted_unet_runs_with_the_unchanged_garment_encoder(components):
    adapted = adapt_unet_to_latent_space(components["unet"], latent_channels=6, sample_size=(4, 4), num_levels=3)
    garment_tokens = components["garment_encoder"](
        torch.rand(1, 2, 3, 64, 64) * 2 - 1, 999,
        person_pose_embeds=components["pose_encoder"](torch.rand(1, 3, 64, 64)),
        garment_pose_embeds=components["pose_encoder"](torch.rand(2, 3, 64, 64)).unsqueeze(0),
    ).garment_tokens  # fmt: skip
    global_tokens = torch.randn(1, 1, adapted.config.cross_attention_dim)
    sample = torch.randn(1, 13, 4, 4)
    output = adapted(sample, 500, global_tokens, garment_tokens=garment_tokens).sample
    assert output.shape == (1, 6, 4, 4) and torch.isfinite(output).all()
    # the local branch reaches the adapted decoder
    without = adapted(sample, 500, global_tokens, garment_tokens=None).sample
    assert not torch.allclose(output, without)


def test_num_levels_out_of_range(components):
    with pytest.raises(ValueError, match="num_levels"):
        adapt_unet_to_latent_space(components["unet"], latent_channels=4, sample_size=(8, 8), num_levels=5)
