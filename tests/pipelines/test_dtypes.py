"""Half precision and memory helpers on tiny components: bf16 loading, layerwise casting, warmup, xformers switch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mvvton.errors import MissingDependencyError
from mvvton.models.attention_processor import JointAttnProcessor2_0, xformers_ops
from mvvton.pipelines import MVVTONPipeline
from tests.pipelines.test_pipeline_mvvton import dummy_inputs, make_pipe


@pytest.fixture(scope="module")
def saved_pipe(tmp_path_factory):
    pipe = make_pipe()
    path = tmp_path_factory.mktemp("tiny_pipe")
    pipe.save_pretrained(path)
    return path, pipe(**dummy_inputs()).images


def test_bf16_from_pretrained_loads_and_runs_close_to_fp32(saved_pipe):
    path, expected = saved_pipe
    pipe = MVVTONPipeline.from_pretrained(path, torch_dtype=torch.bfloat16)
    pipe.set_progress_bar_config(disable=True)
    for name in ("unet", "garment_encoder", "pose_encoder", "image_encoder", "vae"):
        assert {p.dtype for p in getattr(pipe, name).parameters()} == {torch.bfloat16}, name
    with torch.backends.mkldnn.flags(enabled=False):  # bf16 NCHW convs via oneDNN are very slow without bf16 ISA
        images = pipe(**dummy_inputs()).images
    assert np.isfinite(images).all()
    assert np.abs(images - expected).mean() < 0.02


def test_layerwise_casting_halves_weights_and_stays_close(saved_pipe):
    path, expected = saved_pipe
    pipe = MVVTONPipeline.from_pretrained(path, torch_dtype=torch.bfloat16)
    pipe.set_progress_bar_config(disable=True)
    pipe.enable_layerwise_casting()
    assert pipe.unet.conv_in.weight.dtype == torch.bfloat16 and pipe.unet.dtype == torch.float32  # compute dtype
    images = pipe(**dummy_inputs()).images
    assert np.abs(images - expected).mean() < 0.01
    assert len(pipe.unet.joint_attention_processors) == 9


def test_warmup_runs_one_step_at_the_working_size():
    pipe = make_pipe()
    steps = []
    hook = pipe.unet.register_forward_hook(lambda module, args, output: steps.append(args[0].shape))
    try:
        pipe.warmup()
    finally:
        hook.remove()
    assert steps == [torch.Size([1, 9, 8, 8])]


def test_pipeline_xformers_switch_keeps_the_joint_attention():
    pipe = make_pipe()
    try:
        probe = torch.zeros(1, 2, 1, 8)
        xformers_ops().memory_efficient_attention(probe, probe, probe)
        runnable = True
    except Exception:
        runnable = False
    if runnable:  # pragma: no cover - only where xformers has a kernel for the device
        pipe.enable_xformers_memory_efficient_attention()
    else:
        with pytest.raises(MissingDependencyError, match="xformers"):
            pipe.enable_xformers_memory_efficient_attention()
    joint = [p for p in pipe.unet.attn_processors.values() if isinstance(p, JointAttnProcessor2_0)]
    assert len(joint) == 9
