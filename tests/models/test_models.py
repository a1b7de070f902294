"""Unit tests of the MV-VTON components on tiny random configs."""

from __future__ import annotations

import pytest
import torch

from mvvton.models import GarmentEncoderModel, MVVTONUNet2DConditionModel, PoseEncoderModel
from mvvton.models.attention_processor import JointAttnProcessor2_0
from mvvton.models.unet_mvvton import decoder_token_levels
from tests.testing_utils import TOKEN_DIM, get_dummy_components, tiny_plain_unet


def unet_inputs(batch: int = 2, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    sample = torch.randn(batch, 9, 8, 8, generator=generator)
    context = torch.randn(batch, 1, TOKEN_DIM, generator=generator)
    tokens = [torch.randn(batch, 6, TOKEN_DIM, generator=generator) for _ in range(12)]
    return sample, torch.tensor([500] * batch), context, tokens


def test_zero_gate_unet_equals_plain_unet():
    plain = tiny_plain_unet().eval()
    ours = MVVTONUNet2DConditionModel.from_unet(plain).eval()
    sample, t, context, tokens = unet_inputs()
    with torch.no_grad():
        expected = plain(sample, t, context).sample
        assert torch.allclose(ours(sample, t, context, garment_tokens=tokens).sample, expected, atol=1e-5)
        assert torch.allclose(ours(sample, t, context).sample, expected, atol=1e-5)
        for processor in ours.joint_attention_processors.values():
            processor.ip_scale.fill_(1.0)
        assert not torch.allclose(ours(sample, t, context, garment_tokens=tokens).sample, expected, atol=1e-3)


def test_math_processors_match_sdpa():
    unet = get_dummy_components()["unet"].eval()
    sample, t, context, tokens = unet_inputs()
    with torch.no_grad():
        sdpa = unet(sample, t, context, garment_tokens=tokens).sample
        unet.set_default_attn_processor()
        assert not any(getattr(p, "use_sdpa", False) for p in unet.attn_processors.values())
        assert torch.allclose(unet(sample, t, context, garment_tokens=tokens).sample, sdpa, atol=1e-5)


def test_token_levels_cumulative_and_per_level():
    up_types = ("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D")
    cumulative = decoder_token_levels(up_types, 2, "cumulative")
    per_level = decoder_token_levels(up_types, 2, "per_level")
    assert cumulative[(1, 0)] == (8,) and cumulative[(3, 2)] == (8, 7, 6, 5, 4, 3, 2, 1, 0)  # output blocks 3 .. 11
    assert per_level[(2, 1)] == (4,) and len(per_level) == 9
    with pytest.raises(ValueError):
        decoder_token_levels(up_types, 2, "sideways")


@pytest.mark.parametrize("injection", ["cumulative", "per_level"])
def test_unet_save_load_round_trip(tmp_path, injection):
    unet = MVVTONUNet2DConditionModel.from_unet(tiny_plain_unet(), local_token_injection=injection).eval()
    with torch.no_grad():
        for processor in unet.joint_attention_processors.values():
            processor.ip_scale.normal_()
    unet.save_pretrained(tmp_path)
    loaded = MVVTONUNet2DConditionModel.from_pretrained(tmp_path).eval()
    assert loaded.config.local_token_injection == injection
    sample, t, context, tokens = unet_inputs()
    with torch.no_grad():
        assert torch.equal(unet(sample, t, context, garment_tokens=tokens).sample,
                           loaded(sample, t, context, garment_tokens=tokens).sample)  # fmt: skip


def test_garment_encoder_round_trip_and_shapes(tmp_path):
    components = get_dummy_components()
    encoder, pose = components["garment_encoder"].eval(), components["pose_encoder"].eval()
    garments = torch.rand(2, 2, 3, 64, 64) * 2 - 1
    skeletons = torch.rand(2, 3, 64, 64) * 2 - 1
    person_pose = pose(skeletons)  # (2, 4, D)
    garment_pose = torch.stack([pose(skeletons.flip(0)), pose(skeletons)], dim=1)
    with torch.no_grad():
        tokens = encoder(garments, 999, person_pose, garment_pose).garment_tokens
        assert len(tokens) == 12 and tokens[0].shape == (2, 2 * 64, TOKEN_DIM)  # 128² garment -> 16² -> 8² tokens
        encoder.save_pretrained(tmp_path / "ge")
        pose.save_pretrained(tmp_path / "pose")
        loaded = GarmentEncoderModel.from_pretrained(tmp_path / "ge").eval()
        loaded_pose = PoseEncoderModel.from_pretrained(tmp_path / "pose").eval()
        again = loaded(garments, 999, loaded_pose(skeletons), garment_pose).garment_tokens
    assert all(torch.equal(a, b) for a, b in zip(tokens, again))


def test_garment_encoder_from_unet_copies_encoder():
    plain = tiny_plain_unet()
    encoder = GarmentEncoderModel.from_unet(plain, garment_sample_size=None)
    for name in ("conv_in", "time_embedding", "down_blocks"):
        source, copied = getattr(plain, name).state_dict(), getattr(encoder, name).state_dict()
        assert source.keys() == copied.keys() and all(torch.equal(source[k], copied[k]) for k in source)


def test_soft_selection_switches_change_the_model():
    plain = tiny_plain_unet()
    base = dict(garment_sample_size=(128, 128), conditioning_embedding_out_channels=(4, 8, 8, 16))
    torch.manual_seed(0)
    shared = GarmentEncoderModel.from_unet(plain, **base).eval()
    torch.manual_seed(0)
    scaled = GarmentEncoderModel.from_unet(plain, scale_soft_selection_logits=True, **base).eval()
    torch.manual_seed(0)
    separate = GarmentEncoderModel.from_unet(plain, share_garment_pose_projection=False, **base).eval()
    assert hasattr(separate, "extra_view_pose_projections") and not hasattr(shared, "extra_view_pose_projections")
    garments = torch.rand(1, 2, 3, 64, 64) * 2 - 1
    person_pose, garment_pose = torch.randn(1, 4, TOKEN_DIM) * 3, torch.randn(1, 2, 4, TOKEN_DIM) * 3
    with torch.no_grad():
        a = shared(garments, 999, person_pose, garment_pose).garment_tokens[0]
        b = scaled(garments, 999, person_pose, garment_pose).garment_tokens[0]
    assert not torch.allclose(a, b, atol=1e-4)


def test_frontal_variant_single_view_no_pose():
    components = get_dummy_components(multiview=False)
    encoder = components["garment_encoder"].eval()
    assert components["pose_encoder"] is None and not hasattr(encoder, "person_pose_projections")
    with torch.no_grad():
        tokens = encoder(torch.rand(2, 1, 3, 64, 64), 999).garment_tokens
    assert tokens[0].shape == (2, 64, TOKEN_DIM)
    with pytest.raises(ValueError, match="view"):
        encoder(torch.rand(2, 2, 3, 64, 64), 999)


def test_joint_processor_gate_is_per_channel():
    processor = JointAttnProcessor2_0(hidden_size=8, cross_attention_dim=4, token_levels=(0,))
    assert processor.ip_scale.shape == (8,) and torch.count_nonzero(processor.ip_scale) == 0
