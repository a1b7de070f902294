"""VGG19 perceptual features and loss (no torchvision), as the released training's `vgg19_conv.pth` loss."""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from torch import nn


class VGG19Features(nn.Module):
    """VGG19 conv trunk (no torchvision) returning relu1_2, relu2_2, relu3_2, relu4_2, relu5_2.

    Layer names follow the released loss's `vgg19_conv.pth` (`conv1_1` ... `conv5_4`); `load_weights` also accepts
    torchvision-style `features.<index>.*` keys.

    Args:
        input_style: `caffe` ((x+1)/2 -> BGR -> minus mean -> x255, the original) or `torchvision` (ImageNet mean/std).
    """

    LAYERS = (2, 2, 4, 4, 4)  # convs per stage
    WIDTHS = (64, 128, 256, 512, 512)
    OUTPUT_CONVS = ("conv1_2", "conv2_2", "conv3_2", "conv4_2", "conv5_2")
    LAYER_WEIGHTS = (1 / 32, 1 / 16, 1 / 8, 1 / 4, 1.0)

    def __init__(self, input_style: str = "caffe"):
        super().__init__()
        self.input_style = input_style
        channels = 3
        self.conv_names: list[str] = []
        for stage, (count, width) in enumerate(zip(self.LAYERS, self.WIDTHS), start=1):
            for index in range(1, count + 1):
                name = f"conv{stage}_{index}"
                self.add_module(name, nn.Conv2d(channels, width, kernel_size=3, padding=1))
                self.conv_names.append(name)
                channels = width
        self.requires_grad_(False)

    def load_weights(self, path: str | Path) -> None:
        """Load `conv{s}_{i}.*` or torchvision `features.{k}.*` weights from a .pth / .safetensors file."""
        path = Path(path)
        if path.suffix == ".safetensors":
            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
        state = {key.removeprefix("vgg."): value for key, value in state.items()}
        if any(key.startswith("features.") for key in state):
            conv_indices = []
            index = 0
            for count in self.LAYERS:
                conv_indices += [index + 2 * i for i in range(count)]
                index += 2 * count + 1  # conv + relu per layer, then max-pool
            state = {
                f"{self.conv_names[conv_indices.index(int(key.split('.')[1]))]}.{key.split('.')[2]}": value
                for key, value in state.items()
                if key.startswith("features.") and int(key.split(".")[1]) in conv_indices
            }
        self.load_state_dict(state, strict=True)

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        pixels = (images + 1) / 2  # (B, 3, H, W) in [0, 1]
        if self.input_style == "caffe":
            mean = torch.tensor([0.4076, 0.4580, 0.4850], device=images.device, dtype=images.dtype)
            return (pixels.flip(1) - mean.view(1, 3, 1, 1)) * 255.0
        mean = torch.tensor([0.485, 0.456, 0.406], device=images.device, dtype=images.dtype).view(1, 3, 1, 1)
        std = torch.tensor([0.229, 0.224, 0.225], device=images.device, dtype=images.dtype).view(1, 3, 1, 1)
        return (pixels - mean) / std

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        """`(B, 3, H, W)` in [-1, 1] -> 5 feature maps (relu*_2)."""
        hidden = self.preprocess(images)
        outputs = []
        for stage, count in enumerate(self.LAYERS, start=1):
            if stage > 1:
                hidden = F.max_pool2d(hidden, kernel_size=2, stride=2)
            for index in range(1, count + 1):
                name = f"conv{stage}_{index}"
                hidden = F.relu(getattr(self, name)(hidden))
                if name in self.OUTPUT_CONVS:
                    outputs.append(hidden)
        return outputs

    def perceptual_loss(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Σ_l w_l · L1(φ_l(prediction), φ_l(target)), w = 1/32, 1/16, 1/8, 1/4, 1 (the released weights)."""
        with torch.no_grad():
            target_features = self(target)
        loss = prediction.new_zeros(())
        for weight, predicted, expected in zip(self.LAYER_WEIGHTS, self(prediction), target_features):
            loss = loss + weight * F.l1_loss(predicted, expected)
        return loss


def load_vgg(path: str | None, input_style: str = "caffe") -> VGG19Features | None:
    """The VGG feature extractor, or None (with a warning) when `path` is unset or missing."""
    if not path:
        return None
    if not Path(path).is_file():
        warnings.warn(f"VGG19 weights {path} not found: the perceptual loss is skipped", stacklevel=2)
        return None
    vgg = VGG19Features(input_style)
    vgg.load_weights(path)
    return vgg.eval()
