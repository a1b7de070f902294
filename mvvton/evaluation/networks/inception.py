"""Inception-v3 in the layout of the standard FID weights `pt_inception-2015-12-05-6726825d.pth`.

That file is the TensorFlow FID graph (`inception-2015-12-05.tgz`) ported to PyTorch by pytorch-fid. Its layout is
torchvision's `Inception3` (no aux classifier, 1008-class `fc`) with the FID variants of the mixed blocks: average
pools that ignore the zero padding (`count_include_pad=False`) in A/C/E blocks, and a max pool in the pool branch of
the last E block (`Mixed_7c`). Written here with torch only (torchvision is not a dependency); the parameter names
match the file exactly, e.g. `Mixed_6b.branch7x7_2.conv.weight` `(128, 128, 1, 7)`, `fc.weight` `(1008, 2048)`.

Input: `(B, 3, H, W)` in [0, 1]; by default resized to 299x299 (bilinear, `align_corners=False`) and scaled to
[-1, 1], as pytorch-fid does. Output: the 2048-d pool3 features used by FID and KID.
"""

from __future__ import annotations

import os

import torch
import torch.nn.functional as F
from torch import nn

from mvvton.evaluation.networks.loading import check_state_dict, expected_shapes_of, read_state_dict

FID_WEIGHTS_FILE = (
    "pt_inception-2015-12-05-6726825d.pth (pytorch-fid's FID Inception weights, "
    "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth)"
)
FID_INPUT_SIZE = 299
FID_FEATURE_DIM = 2048


class BasicConv2d(nn.Module):
    """Convolution without bias, BatchNorm (eps 0.001, as the TF graph), ReLU; names `conv` and `bn`."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(out_channels, eps=0.001)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


def _pool_without_padding(x: torch.Tensor) -> torch.Tensor:
    """3x3 stride-1 average pool that, like TensorFlow's, does not count the zero padding."""
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


class FIDInceptionA(nn.Module):
    """35x35 block (`Mixed_5b/c/d`): 1x1, 5x5, double 3x3 and pool branches -> 224 + pool_features channels."""

    def __init__(self, in_channels: int, pool_features: int) -> None:
        super().__init__()
        self.branch1x1 = BasicConv2d(in_channels, 64, 1)
        self.branch5x5_1 = BasicConv2d(in_channels, 48, 1)
        self.branch5x5_2 = BasicConv2d(48, 64, 5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, padding=1)
        self.branch_pool = BasicConv2d(in_channels, pool_features, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        wide = self.branch5x5_2(self.branch5x5_1(x))
        double = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        pooled = self.branch_pool(_pool_without_padding(x))
        return torch.cat([self.branch1x1(x), wide, double, pooled], dim=1)


class InceptionB(nn.Module):
    """Grid reduction 35 -> 17 (`Mixed_6a`)."""

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.branch3x3 = BasicConv2d(in_channels, 384, 3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        double = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([self.branch3x3(x), double, F.max_pool2d(x, kernel_size=3, stride=2)], dim=1)


class FIDInceptionC(nn.Module):
    """17x17 block with factorised 7x7 convolutions (`Mixed_6b..e`) -> 768 channels."""

    def __init__(self, in_channels: int, channels_7x7: int) -> None:
        super().__init__()
        c7 = channels_7x7
        self.branch1x1 = BasicConv2d(in_channels, 192, 1)
        self.branch7x7_1 = BasicConv2d(in_channels, c7, 1)
        self.branch7x7_2 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7_3 = BasicConv2d(c7, 192, (7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = BasicConv2d(in_channels, c7, 1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = BasicConv2d(c7, 192, (1, 7), padding=(0, 3))
        self.branch_pool = BasicConv2d(in_channels, 192, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        single = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        double = self.branch7x7dbl_1(x)
        for layer in (self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4, self.branch7x7dbl_5):
            double = layer(double)
        pooled = self.branch_pool(_pool_without_padding(x))
        return torch.cat([self.branch1x1(x), single, double, pooled], dim=1)


class InceptionD(nn.Module):
    """Grid reduction 17 -> 8 (`Mixed_7a`)."""

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.branch3x3_1 = BasicConv2d(in_channels, 192, 1)
        self.branch3x3_2 = BasicConv2d(192, 320, 3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(in_channels, 192, 1)
        self.branch7x7x3_2 = BasicConv2d(192, 192, (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(192, 192, (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(192, 192, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        narrow = self.branch3x3_2(self.branch3x3_1(x))
        wide = self.branch7x7x3_1(x)
        for layer in (self.branch7x7x3_2, self.branch7x7x3_3, self.branch7x7x3_4):
            wide = layer(wide)
        return torch.cat([narrow, wide, F.max_pool2d(x, kernel_size=3, stride=2)], dim=1)


class FIDInceptionE(nn.Module):
    """8x8 block with split 1x3 / 3x1 outputs (`Mixed_7b`, `Mixed_7c`) -> 2048 channels.

    Args:
        max_pool: the pool branch uses a 3x3 max pool (`Mixed_7c` of the FID graph) instead of the padding-free
            average pool (`Mixed_7b`).
    """

    def __init__(self, in_channels: int, max_pool: bool) -> None:
        super().__init__()
        self.max_pool = max_pool
        self.branch1x1 = BasicConv2d(in_channels, 320, 1)
        self.branch3x3_1 = BasicConv2d(in_channels, 384, 1)
        self.branch3x3_2a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 448, 1)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch_pool = BasicConv2d(in_channels, 192, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        single = self.branch3x3_1(x)
        single = torch.cat([self.branch3x3_2a(single), self.branch3x3_2b(single)], dim=1)
        double = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        double = torch.cat([self.branch3x3dbl_3a(double), self.branch3x3dbl_3b(double)], dim=1)
        if self.max_pool:
            pooled = F.max_pool2d(x, kernel_size=3, stride=1, padding=1)
        else:
            pooled = _pool_without_padding(x)
        return torch.cat([self.branch1x1(x), single, double, self.branch_pool(pooled)], dim=1)


class FIDInceptionV3(nn.Module):
    """The FID Inception-v3 returning pool3 features `(B, 2048)`.

    Args:
        resize_input: bilinearly resize the input to 299x299 first (pytorch-fid's default). Turn off when images are
            already resized (e.g. with clean-fid's PIL bicubic, `mvvton.evaluation.features`).
        normalize_input: the input is in [0, 1] and is mapped to [-1, 1] (the range the graph expects).
    """

    def __init__(self, resize_input: bool = True, normalize_input: bool = True) -> None:
        super().__init__()
        self.resize_input = resize_input
        self.normalize_input = normalize_input
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, 3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, 3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, 1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, 3)
        self.Mixed_5b = FIDInceptionA(192, pool_features=32)
        self.Mixed_5c = FIDInceptionA(256, pool_features=64)
        self.Mixed_5d = FIDInceptionA(288, pool_features=64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = FIDInceptionC(768, channels_7x7=128)
        self.Mixed_6c = FIDInceptionC(768, channels_7x7=160)
        self.Mixed_6d = FIDInceptionC(768, channels_7x7=160)
        self.Mixed_6e = FIDInceptionC(768, channels_7x7=192)
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = FIDInceptionE(1280, max_pool=False)
        self.Mixed_7c = FIDInceptionE(2048, max_pool=True)
        self.fc = nn.Linear(FID_FEATURE_DIM, 1008)  # ImageNet logits of the TF graph; unused by FID, kept for the file
        self.num_features = FID_FEATURE_DIM

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """`(B, 3, H, W)` in [0, 1] -> pool3 features `(B, 2048)`."""
        x = images
        if self.resize_input:
            x = F.interpolate(x, size=(FID_INPUT_SIZE, FID_INPUT_SIZE), mode="bilinear", align_corners=False)
        if self.normalize_input:
            x = 2 * x - 1  # [0, 1] -> [-1, 1]
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
        x = F.max_pool2d(x, kernel_size=3, stride=2)  # (B, 192, 35, 35) at 299 px
        for block in (self.Mixed_5b, self.Mixed_5c, self.Mixed_5d, self.Mixed_6a, self.Mixed_6b, self.Mixed_6c,
                      self.Mixed_6d, self.Mixed_6e, self.Mixed_7a, self.Mixed_7b, self.Mixed_7c):  # fmt: skip
            x = block(x)
        return torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)  # (B, 2048, 8, 8) -> (B, 2048)

    @classmethod
    def from_file(cls, path: str | os.PathLike, **kwargs) -> FIDInceptionV3:
        """Build the network and load `pt_inception-2015-12-05-6726825d.pth` (or a `.safetensors` copy) strictly."""
        model = cls(**kwargs)
        model.load_published_state_dict(read_state_dict(path, FID_WEIGHTS_FILE))
        return model.eval().requires_grad_(False)

    def load_published_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Load a state dict with the published names and shapes (raises `ModelLoadError` naming the expected file)."""
        checked = check_state_dict(state, expected_shapes_of(self), expected_file=FID_WEIGHTS_FILE)
        self.load_state_dict(checked, strict=False)


def random_init_(module: nn.Module, seed: int) -> nn.Module:
    """Seeded variance-preserving random weights (He-normal convs, identity BatchNorm statistics), for tests and for
    running the metrics without published weights: values are then NOT comparable with any paper."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for layer in module.modules():
            if isinstance(layer, (nn.Conv2d, nn.Linear)):
                fan_in = layer.weight[0].numel()
                layer.weight.copy_(torch.randn(layer.weight.shape, generator=generator) * (2.0 / fan_in) ** 0.5)
                if layer.bias is not None:
                    layer.bias.zero_()
            elif isinstance(layer, nn.BatchNorm2d):
                layer.reset_parameters()
    return module.eval().requires_grad_(False)
