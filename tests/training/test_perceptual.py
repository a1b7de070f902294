"""mvvton.training.perceptual: VGG19 weights in both key layouts and the perceptual loss."""

import pytest
import torch

from mvvton.training.perceptual import VGG19Features, load_vgg


def test_vgg_weights_loading_and_loss(tmp_path):
    vgg = VGG19Features("torchvision")
    torchvision_keys = {}
    index = 0
    for stage, count in enumerate(VGG19Features.LAYERS, start=1):
        for layer in range(1, count + 1):
            conv = getattr(vgg, f"conv{stage}_{layer}")
            torchvision_keys[f"features.{index}.weight"] = torch.randn_like(conv.weight) * 0.05
            torchvision_keys[f"features.{index}.bias"] = torch.zeros_like(conv.bias)
            index += 2
        index += 1
    path = tmp_path / "vgg19.pth"
    torch.save(torchvision_keys, path)
    loaded = load_vgg(str(path), "torchvision")
    assert torch.equal(loaded.conv5_4.weight, torchvision_keys["features.34.weight"])
    images = torch.rand(1, 3, 32, 32) * 2 - 1
    assert loaded.perceptual_loss(images, images).item() == 0
    assert loaded.perceptual_loss(images, -images).item() > 0
    assert [f.shape[1] for f in loaded(images)] == [64, 128, 256, 512, 512]
    with pytest.warns(UserWarning, match="skipped"):
        assert load_vgg(str(tmp_path / "missing.pth")) is None
