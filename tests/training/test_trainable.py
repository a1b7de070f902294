"""mvvton.training.trainable: trainable-parameter modes and the AdamW parameter groups."""

import pytest

from mvvton.training.objective import MVVTONTrainingModule
from mvvton.training.trainable import optimizer_param_groups, select_trainable


def test_trainable_groups(tiny_components):
    paper = select_trainable(tiny_components, "paper")
    assert set(paper) == {"decoder_attention", "garment_encoder", "soft_selection", "pose_encoder"}
    assert all(name.startswith("unet.up_blocks.") for name in paper["decoder_attention"])
    assert any(".processor.to_k_ip." in name for name in paper["decoder_attention"])
    assert all("pose_projections" in name for name in paper["soft_selection"])
    assert not any(p.requires_grad for p in tiny_components["vae"].parameters())
    assert not any(p.requires_grad for p in tiny_components["unet"].down_blocks.parameters())
    released = select_trainable(tiny_components, "released")
    assert set(released) == {"decoder_attention"}
    assert not any(p.requires_grad for p in tiny_components["garment_encoder"].parameters())
    everything = select_trainable(tiny_components, "all")
    assert "image_encoder_mapper" in everything
    assert not any(p.requires_grad for p in tiny_components["image_encoder"].vision_model.parameters())
    with pytest.raises(ValueError):
        select_trainable(tiny_components, "most")


def test_gate_learning_rate_group(tiny_components):
    c = tiny_components
    select_trainable(c, "paper")
    module = MVVTONTrainingModule(c["unet"], c["garment_encoder"], c["pose_encoder"], c["image_encoder"])
    trainable = {id(p) for p in module.parameters() if p.requires_grad}
    single = optimizer_param_groups(module, 1e-4, 0.01)
    assert len(single) == 1 and {id(p) for p in single[0]["params"]} == trainable
    base, gates = optimizer_param_groups(module, 1e-4, 0.01, gate_lr_multiplier=50.0)
    gate_names = {name for name, p in module.named_parameters() if p.requires_grad and name.endswith("ip_scale")}
    assert gate_names and len(gates["params"]) == len(gate_names)
    assert gates["lr"] == pytest.approx(5e-3) and gates["weight_decay"] == 0.0 and base["lr"] == 1e-4
    assert {id(p) for p in base["params"] + gates["params"]} == trainable
    assert not any(any(p is g for g in gates["params"]) for p in base["params"])
