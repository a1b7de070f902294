"""fp32 islands: normalisation layers and the two precision-critical softmaxes compute in float32 under bf16."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from mvvton.models.precision import FP32GroupNorm, FP32LayerNorm, upcast_normalization_layers
from tests.models.test_models import unet_inputs
from tests.testing_utils import get_dummy_components, tiny_plain_unet


def test_fp32_norms_equal_torch_norms_in_fp32():
    generator = torch.Generator().manual_seed(0)
    group, layer = nn.GroupNorm(4, 16), nn.LayerNorm(16)
    for norm in (group, layer):
        nn.init.normal_(norm.weight, generator=generator)
        nn.init.normal_(norm.bias, generator=generator)
    container = nn.Sequential(group, layer)
    upcast_normalization_layers(container)
    assert type(container[0]) is FP32GroupNorm and type(container[1]) is FP32LayerNorm
    assert container[0].weight is group.weight and container[1].bias is layer.bias  # shared, not copied
    x = torch.randn(2, 16, 5, 5, generator=generator)
    assert torch.equal(container[0](x), group(x))
    y = torch.randn(2, 7, 16, generator=generator)
    assert torch.equal(container[1](y), layer(y))


def test_fp32_norm_keeps_the_input_dtype_and_beats_a_pure_bf16_norm():
    generator = torch.Generator().manual_seed(0)
    plain = nn.GroupNorm(2, 8)
    island = nn.Sequential(nn.GroupNorm(2, 8))
    upcast_normalization_layers(island)
    x = torch.randn(1, 8, 64, 64, generator=generator) * 30 + 200  # large offset: bf16 statistics suffer
    reference = plain(x)
    x16 = x.to(torch.bfloat16)
    ours = island.to(torch.bfloat16)(x16)
    assert ours.dtype == torch.bfloat16
    naive = plain.to(torch.bfloat16)(x16)
    assert (ours.float() - reference).abs().max() <= (naive.float() - reference).abs().max()


@pytest.mark.parametrize("name", ["unet", "garment_encoder", "pose_encoder", "image_encoder"])
def test_every_norm_of_our_models_is_an_island(name):
    model = get_dummy_components()[name]
    norms = [m for m in model.modules() if isinstance(m, (nn.GroupNorm, nn.LayerNorm))]
    assert norms, "expected normalisation layers"
    assert all(type(m) in (FP32GroupNorm, FP32LayerNorm) for m in norms)


def test_islands_keep_state_dict_names_of_the_plain_unet():
    plain = tiny_plain_unet()
    ours = get_dummy_components()["unet"]
    assert set(plain.state_dict()) <= set(ours.state_dict())


def test_unet_bf16_close_to_fp32():
    unet = get_dummy_components()["unet"].eval()
    sample, t, context, tokens = unet_inputs(batch=1)
    with torch.no_grad():
        expected = unet(sample, t, context, garment_tokens=tokens).sample
        unet.to(torch.bfloat16)
        half = unet(sample.bfloat16(), t, context.bfloat16(), garment_tokens=[x.bfloat16() for x in tokens]).sample
    assert half.dtype == torch.bfloat16 and torch.isfinite(half).all()
    relative = (half.float() - expected).abs().max() / expected.abs().max()
    assert relative < 0.05, relative


def test_soft_selection_logits_are_computed_in_fp32():
    """Large pose projections: the bf16 model's selection equals the fp32 logits + softmax of its own (bf16)
    projections up to output rounding, while the same product taken in bf16 would move the selection."""
    encoder = get_dummy_components()["garment_encoder"].eval().to(torch.bfloat16)
    generator = torch.Generator().manual_seed(0)
    tokens = torch.randn(2, 5, 16, generator=generator).bfloat16()
    person = (torch.randn(1, 64, 16, generator=generator) * 8).bfloat16()
    garment = (torch.randn(2, 64, 16, generator=generator) * 8).bfloat16()
    with torch.no_grad():
        ours, person_projection, garment_projection = encoder._soft_select(tokens, 0, person, garment, 2)
    assert ours.dtype == torch.bfloat16
    person_repeated = person_projection.repeat(2, 1, 1).transpose(1, 2)  # (B*V, D, Np)
    exact = torch.bmm(
        tokens.float(), torch.softmax(torch.bmm(person_repeated.float(), garment_projection.float()), -1)
    )
    naive_logits = torch.bmm(person_repeated, garment_projection)  # bf16 product
    naive = torch.bmm(tokens.float(), torch.softmax(naive_logits.float(), -1))
    scale = exact.abs().max()
    assert (ours.float() - exact).abs().max() < 0.01 * scale
    assert (naive - exact).abs().max() > 2 * (ours.float() - exact).abs().max()
