"""LPIPS v0.1 (Zhang et al., CVPR 2018) with AlexNet or VGG16 trunks, torch only.

Two published files make one network:

- the trunk: torchvision's ImageNet classifier weights, `alexnet-owt-7be5be79.pth` or `vgg16-397923af.pth`, keys
  `features.<i>.weight|bias` (the `classifier.*` keys of that file are accepted and ignored);
- the linear heads: `lpips/weights/v0.1/alex.pth` or `vgg.pth` of richzhang/PerceptualSimilarity (also shipped inside
  the torchmetrics wheel as `torchmetrics/functional/image/lpips_models/`), keys `lin<k>.model.1.weight` of shape
  `(1, C_k, 1, 1)`.

Distance: inputs in [0, 1] -> [-1, 1] -> the LPIPS scaling layer; at each of the 5 taps the features are unit-normalised
along channels, squared differences are weighted by the head and averaged spatially (or upsampled to the input size
for a spatial map), and the 5 layers are summed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from mvvton.errors import InvalidArgumentError
from mvvton.evaluation.networks.inception import random_init_
from mvvton.evaluation.networks.loading import check_state_dict, expected_shapes_of, read_state_dict

LPIPS_SHIFT = (-0.030, -0.088, -0.188)
LPIPS_SCALE = (0.458, 0.448, 0.450)


@dataclass(frozen=True)
class TrunkSpec:
    """A torchvision `features` stack: `layers` as ("conv", in, out, kernel, stride, padding) / ("relu",) / ("pool",
    kernel, stride); LPIPS reads the outputs after the layers at `taps` (indices into `features`)."""

    layers: tuple[tuple, ...]
    taps: tuple[int, ...]
    channels: tuple[int, ...]
    trunk_file: str
    heads_file: str


def _vgg16_layers() -> tuple[tuple, ...]:
    layers: list[tuple] = []
    in_channels = 3
    for stage, (width, depth) in enumerate(((64, 2), (128, 2), (256, 3), (512, 3), (512, 3))):
        if stage:
            layers.append(("pool", 2, 2))
        for _ in range(depth):
            layers += [("conv", in_channels, width, 3, 1, 1), ("relu",)]
            in_channels = width
    return tuple(layers)


TRUNKS: dict[str, TrunkSpec] = {
    "alex": TrunkSpec(
        layers=(
            ("conv", 3, 64, 11, 4, 2),
            ("relu",),
            ("pool", 3, 2),
            ("conv", 64, 192, 5, 1, 2),
            ("relu",),
            ("pool", 3, 2),
            ("conv", 192, 384, 3, 1, 1),
            ("relu",),
            ("conv", 384, 256, 3, 1, 1),
            ("relu",),
            ("conv", 256, 256, 3, 1, 1),
            ("relu",),
        ),  # fmt: skip
        taps=(1, 4, 7, 9, 11),  # relu1 .. relu5
        channels=(64, 192, 384, 256, 256),
        trunk_file="alexnet-owt-7be5be79.pth (torchvision AlexNet ImageNet weights)",
        heads_file="alex.pth (LPIPS v0.1 linear heads, richzhang/PerceptualSimilarity lpips/weights/v0.1/alex.pth)",
    ),
    "vgg": TrunkSpec(
        layers=_vgg16_layers(),
        taps=(3, 8, 15, 22, 29),  # relu1_2, relu2_2, relu3_3, relu4_3, relu5_3
        channels=(64, 128, 256, 512, 512),
        trunk_file="vgg16-397923af.pth (torchvision VGG16 ImageNet weights)",
        heads_file="vgg.pth (LPIPS v0.1 linear heads, richzhang/PerceptualSimilarity lpips/weights/v0.1/vgg.pth)",
    ),
}


class LPIPSTrunk(nn.Module):
    """The convolutional `features` stack of AlexNet / VGG16 with torchvision's indices (`features.0.weight`...)."""

    def __init__(self, spec: TrunkSpec) -> None:
        super().__init__()
        modules: list[nn.Module] = []
        for layer in spec.layers:
            if layer[0] == "conv":
                _, in_channels, out_channels, kernel, stride, padding = layer
                modules.append(nn.Conv2d(in_channels, out_channels, kernel, stride=stride, padding=padding))
            elif layer[0] == "relu":
                modules.append(nn.ReLU())
            else:
                modules.append(nn.MaxPool2d(kernel_size=layer[1], stride=layer[2]))
        self.features = nn.Sequential(*modules)
        self.taps = spec.taps

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """`(B, 3, H, W)` scaled input -> the 5 tapped activations."""
        outputs = []
        for index, layer in enumerate(self.features):
            x = layer(x)
            if index in self.taps:
                outputs.append(x)
            if index == self.taps[-1]:
                break
        return outputs


class LinearHead(nn.Module):
    """1x1 convolution to one channel, no bias; the published key is `model.1.weight` (index 0 was a Dropout)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.model = nn.Sequential(nn.Identity(), nn.Conv2d(channels, 1, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


def _unit_normalize(features: torch.Tensor, eps: float = 1e-10) -> torch.Tensor:
    return features / (features.pow(2).sum(dim=1, keepdim=True).sqrt() + eps)


class LPIPS(nn.Module):
    """LPIPS distance. Parameter names: `net.features.<i>.*` (trunk) and `lin<k>.model.1.weight` (heads).

    Args:
        net: "alex" (the LaDI-VTON / MV-VTON protocol) or "vgg".
    """

    def __init__(self, net: str = "alex") -> None:
        super().__init__()
        if net not in TRUNKS:
            raise InvalidArgumentError(f"LPIPS net must be one of {sorted(TRUNKS)}, got {net!r}")
        self.spec = TRUNKS[net]
        self.net_name = net
        self.register_buffer("shift", torch.tensor(LPIPS_SHIFT).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor(LPIPS_SCALE).view(1, 3, 1, 1), persistent=False)
        self.net = LPIPSTrunk(self.spec)
        for index, channels in enumerate(self.spec.channels):
            self.add_module(f"lin{index}", LinearHead(channels))

    def forward(
        self, prediction: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Per-sample distance `(B,)` between images `(B, 3, H, W)` in [0, 1].

        With `mask` `(B, 1, H, W)` in {0, 1}, each layer's distance map is upsampled (bilinear) to `(H, W)`, summed
        over layers and averaged over the masked pixels (LPIPS's `spatial=True` map restricted to a region).
        """
        if prediction.shape != target.shape or prediction.ndim != 4 or prediction.shape[1] != 3:
            raise InvalidArgumentError(
                f"LPIPS expects two (B, 3, H, W) tensors of one shape, got {tuple(prediction.shape)} and {tuple(target.shape)}"
            )
        first, second = (self.net((2 * image - 1 - self.shift) / self.scale) for image in (prediction, target))
        height, width = prediction.shape[-2:]
        total = None
        for index, (a, b) in enumerate(zip(first, second)):
            difference = (_unit_normalize(a) - _unit_normalize(b)).pow(2)
            layer_map = getattr(self, f"lin{index}")(difference)  # (B, 1, h_k, w_k)
            if mask is None:
                value = layer_map.mean(dim=(1, 2, 3))
            else:
                value = F.interpolate(layer_map, size=(height, width), mode="bilinear", align_corners=False)
            total = value if total is None else total + value
        if mask is None:
            return total
        region = mask.to(total.dtype)
        return (total * region).sum(dim=(1, 2, 3)) / region.sum(dim=(1, 2, 3)).clamp_min(1.0)

    def trunk_expected_shapes(self) -> dict[str, tuple[int, ...]]:
        """Published trunk keys (`features.<i>.weight|bias`) and shapes."""
        return expected_shapes_of(self.net)

    def heads_expected_shapes(self) -> dict[str, tuple[int, ...]]:
        """Published head keys (`lin<k>.model.1.weight`) and shapes."""
        return {key: shape for key, shape in expected_shapes_of(self).items() if key.startswith("lin")}

    def load_published_state_dicts(self, trunk: dict[str, torch.Tensor], heads: dict[str, torch.Tensor]) -> None:
        """Load the torchvision trunk file and the LPIPS heads file strictly (raises `ModelLoadError`)."""
        trunk = check_state_dict(
            trunk, self.trunk_expected_shapes(), expected_file=self.spec.trunk_file, ignored_prefixes=("classifier.",)
        )
        heads = check_state_dict(heads, self.heads_expected_shapes(), expected_file=self.spec.heads_file)
        self.net.load_state_dict(trunk)
        self.load_state_dict(heads, strict=False)

    @classmethod
    def from_files(cls, net: str, trunk_path: str | os.PathLike, heads_path: str | os.PathLike) -> LPIPS:
        """Build LPIPS-`net` from the local trunk and head files (see the module docstring for which files)."""
        model = cls(net)
        model.load_published_state_dicts(
            read_state_dict(trunk_path, model.spec.trunk_file), read_state_dict(heads_path, model.spec.heads_file)
        )
        return model.eval().requires_grad_(False)


def random_init_lpips_(model: LPIPS, seed: int) -> LPIPS:
    """Seeded random trunk (He-normal) and non-negative random heads (published heads are non-negative, so the
    distance stays >= 0). For tests and for running without published weights: NOT comparable with papers."""
    random_init_(model.net, seed)
    generator = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for index, _ in enumerate(model.spec.channels):
            weight = getattr(model, f"lin{index}").model[1].weight
            weight.copy_(torch.rand(weight.shape, generator=generator) / weight.shape[1])
    return model.eval().requires_grad_(False)
