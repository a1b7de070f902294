"""Sliced and xformers variants of the MV-VTON processors: same weights, same result, garment conditioning kept."""

from __future__ import annotations

import pytest
import torch
from diffusers.models.attention_processor import AttnProcessor2_0, SlicedAttnProcessor

from mvvton.errors import InvalidArgumentError, MissingDependencyError
from mvvton.models.attention_processor import (
    JointAttnProcessor2_0,
    SlicedJointAttnProcessor,
    SlicedMVVTONAttnProcessor,
    XFormersJointAttnProcessor,
    XFormersMVVTONAttnProcessor,
    xformers_ops,
)
from tests.models.test_models import unet_inputs
from tests.testing_utils import get_dummy_components


def joint_parameters(unet) -> dict[str, torch.nn.Parameter]:
    return {name: param for name, param in unet.named_parameters() if ".processor." in name}


@pytest.fixture()
def unet():
    return get_dummy_components()["unet"].eval()


@pytest.mark.parametrize("slice_size", ["auto", "max", 1, 3])
def test_sliced_processors_equal_sdpa_with_local_tokens(unet, slice_size):
    sample, t, context, tokens = unet_inputs(batch=2)
    weights_before = joint_parameters(unet)
    with torch.no_grad():
        expected = unet(sample, t, context, garment_tokens=tokens).sample
        without_tokens = unet(sample, t, context).sample
        unet.set_attention_slice(slice_size)
        sliced = unet(sample, t, context, garment_tokens=tokens).sample
    processors = unet.attn_processors
    assert sum(isinstance(p, SlicedJointAttnProcessor) for p in processors.values()) == 9  # every decoder attn2
    assert all(isinstance(p, (SlicedJointAttnProcessor, SlicedMVVTONAttnProcessor)) for p in processors.values())
    # the joint weights are the same Parameter objects (not copies), under the same state-dict names
    assert {name: id(param) for name, param in joint_parameters(unet).items()} == {
        name: id(param) for name, param in weights_before.items()
    }
    assert (sliced - expected).abs().max().item() < 1e-5
    assert (sliced - without_tokens).abs().max().item() > 1e-2  # the local branch still acts


def test_slicing_undone_with_none(unet):
    unet.set_attention_slice("max")
    unet.set_attention_slice(None)
    kinds = {type(p) for p in unet.attn_processors.values()}
    assert JointAttnProcessor2_0 in kinds and SlicedJointAttnProcessor not in kinds
    assert not any(isinstance(p, SlicedMVVTONAttnProcessor) for p in unet.attn_processors.values())


@pytest.mark.parametrize("bad", [0, -2, 1.5, "half", True])
def test_bad_slice_size_is_a_typed_error(unet, bad):
    with pytest.raises(InvalidArgumentError, match="slice_size"):
        unet.set_attention_slice(bad)
    assert all(type(p) is not SlicedJointAttnProcessor for p in unet.attn_processors.values())


def test_sliced_gradients_reach_the_joint_weights(unet):
    unet.set_attention_slice(1)
    sample, t, context, tokens = unet_inputs(batch=1)
    unet(sample, t, context, garment_tokens=tokens).sample.square().mean().backward()
    grads = [p.grad for name, p in unet.named_parameters() if name.endswith("processor.to_k_ip.weight")]
    assert grads and all(g is not None and g.abs().sum() > 0 for g in grads)


def test_garment_encoder_slicing_equals_sdpa():
    encoder = get_dummy_components()["garment_encoder"].eval()
    generator = torch.Generator().manual_seed(0)
    garments = torch.rand(2, 2, 3, 64, 64, generator=generator) * 2 - 1
    person_pose = torch.randn(2, 16, 16, generator=generator)
    garment_pose = torch.randn(2, 2, 16, 16, generator=generator)
    with torch.no_grad():
        expected = encoder(garments, 999, person_pose, garment_pose).garment_tokens
        encoder.set_attention_slice("max")
        assert any(isinstance(m.processor, SlicedAttnProcessor) for m in encoder.modules() if hasattr(m, "processor"))
        sliced = encoder(garments, 999, person_pose, garment_pose).garment_tokens
        encoder.set_attention_slice(None)
    assert max((a - b).abs().max().item() for a, b in zip(sliced, expected)) < 1e-5
    assert all(isinstance(m.processor, AttnProcessor2_0) for m in encoder.modules() if hasattr(m, "processor"))


def _xformers_skip_reason(device: torch.device) -> str | None:
    try:
        ops = xformers_ops()
        probe = torch.zeros(1, 2, 1, 8, device=device)
        ops.memory_efficient_attention(probe, probe, probe)
    except Exception as error:  # import failure or no kernel for the device
        return f"xformers not runnable on {device}: {type(error).__name__}: {str(error).splitlines()[0][:200]}"
    return None


def test_xformers_processors_equal_sdpa():
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    reason = _xformers_skip_reason(device)
    if reason is not None:
        pytest.skip(reason)
    unet = get_dummy_components()["unet"].eval().to(device)
    sample, t, context, tokens = (x.to(device) if torch.is_tensor(x) else [y.to(device) for y in x]
                                  for x in unet_inputs(batch=2))  # fmt: skip
    with torch.no_grad():
        expected = unet(sample, t, context, garment_tokens=tokens).sample
        unet.enable_xformers_memory_efficient_attention()
        ours = unet(sample, t, context, garment_tokens=tokens).sample
    kinds = {type(p) for p in unet.attn_processors.values()}
    assert kinds == {XFormersJointAttnProcessor, XFormersMVVTONAttnProcessor}
    assert (ours - expected).abs().max().item() < 1e-4


def test_xformers_unavailable_is_typed_and_changes_nothing():
    """Where xformers cannot run (no package, or no kernel for the device) enabling it raises, processors intact."""
    pipe_components = get_dummy_components()
    unet = pipe_components["unet"]
    if _xformers_skip_reason(unet.device) is None:
        pytest.skip("xformers runs here; covered by test_xformers_processors_equal_sdpa")
    before = dict(unet.attn_processors)
    with pytest.raises(MissingDependencyError, match="xformers"):
        unet.enable_xformers_memory_efficient_attention()
    assert {k: id(v) for k, v in unet.attn_processors.items()} == {k: id(v) for k, v in before.items()}
