"""Feature networks: the published key names and shapes load strictly; LPIPS properties; random-init forward."""

from __future__ import annotations

import pytest
import torch

from mvvton.errors import ModelLoadError
from mvvton.evaluation.networks import LPIPS, FIDInceptionV3, random_init_, random_init_lpips_


def _conv(out_channels: int, in_channels: int, kh: int, kw: int | None = None) -> tuple[int, ...]:
    return (out_channels, in_channels, kh, kh if kw is None else kw)


def documented_inception_layout() -> dict[str, tuple[int, ...]]:
    """pt_inception-2015-12-05 as documented by torchvision's Inception3 + pytorch-fid's FID blocks, written out
    here independently of the model code: BasicConv2d name -> conv weight shape (each also has bn.*), and fc."""
    convs: dict[str, tuple[int, ...]] = {
        "Conv2d_1a_3x3": _conv(32, 3, 3), "Conv2d_2a_3x3": _conv(32, 32, 3), "Conv2d_2b_3x3": _conv(64, 32, 3),
        "Conv2d_3b_1x1": _conv(80, 64, 1), "Conv2d_4a_3x3": _conv(192, 80, 3),
    }  # fmt: skip
    for name, cin, pool in (("Mixed_5b", 192, 32), ("Mixed_5c", 256, 64), ("Mixed_5d", 288, 64)):
        convs.update({
            f"{name}.branch1x1": _conv(64, cin, 1), f"{name}.branch5x5_1": _conv(48, cin, 1),
            f"{name}.branch5x5_2": _conv(64, 48, 5), f"{name}.branch3x3dbl_1": _conv(64, cin, 1),
            f"{name}.branch3x3dbl_2": _conv(96, 64, 3), f"{name}.branch3x3dbl_3": _conv(96, 96, 3),
            f"{name}.branch_pool": _conv(pool, cin, 1),
        })  # fmt: skip
    convs.update({
        "Mixed_6a.branch3x3": _conv(384, 288, 3), "Mixed_6a.branch3x3dbl_1": _conv(64, 288, 1),
        "Mixed_6a.branch3x3dbl_2": _conv(96, 64, 3), "Mixed_6a.branch3x3dbl_3": _conv(96, 96, 3),
    })  # fmt: skip
    for name, c7 in (("Mixed_6b", 128), ("Mixed_6c", 160), ("Mixed_6d", 160), ("Mixed_6e", 192)):
        convs.update({
            f"{name}.branch1x1": _conv(192, 768, 1), f"{name}.branch7x7_1": _conv(c7, 768, 1),
            f"{name}.branch7x7_2": _conv(c7, c7, 1, 7), f"{name}.branch7x7_3": _conv(192, c7, 7, 1),
            f"{name}.branch7x7dbl_1": _conv(c7, 768, 1), f"{name}.branch7x7dbl_2": _conv(c7, c7, 7, 1),
            f"{name}.branch7x7dbl_3": _conv(c7, c7, 1, 7), f"{name}.branch7x7dbl_4": _conv(c7, c7, 7, 1),
            f"{name}.branch7x7dbl_5": _conv(192, c7, 1, 7), f"{name}.branch_pool": _conv(192, 768, 1),
        })  # fmt: skip
    convs.update({
        "Mixed_7a.branch3x3_1": _conv(192, 768, 1), "Mixed_7a.branch3x3_2": _conv(320, 192, 3),
        "Mixed_7a.branch7x7x3_1": _conv(192, 768, 1), "Mixed_7a.branch7x7x3_2": _conv(192, 192, 1, 7),
        "Mixed_7a.branch7x7x3_3": _conv(192, 192, 7, 1), "Mixed_7a.branch7x7x3_4": _conv(192, 192, 3),
    })  # fmt: skip
    for name, cin in (("Mixed_7b", 1280), ("Mixed_7c", 2048)):
        convs.update({
            f"{name}.branch1x1": _conv(320, cin, 1), f"{name}.branch3x3_1": _conv(384, cin, 1),
            f"{name}.branch3x3_2a": _conv(384, 384, 1, 3), f"{name}.branch3x3_2b": _conv(384, 384, 3, 1),
            f"{name}.branch3x3dbl_1": _conv(448, cin, 1), f"{name}.branch3x3dbl_2": _conv(384, 448, 3),
            f"{name}.branch3x3dbl_3a": _conv(384, 384, 1, 3), f"{name}.branch3x3dbl_3b": _conv(384, 384, 3, 1),
            f"{name}.branch_pool": _conv(192, cin, 1),
        })  # fmt: skip
    layout = {}
    for name, shape in convs.items():
        layout[f"{name}.conv.weight"] = shape
        for field in ("weight", "bias", "running_mean", "running_var"):
            layout[f"{name}.bn.{field}"] = (shape[0],)
    layout["fc.weight"] = (1008, 2048)
    layout["fc.bias"] = (1008,)
    return layout


def random_state(layout: dict[str, tuple[int, ...]], seed: int = 0) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    state = {key: torch.randn(shape, generator=generator) * 0.01 for key, shape in layout.items()}
    for key in state:
        if key.endswith("running_var"):
            state[key] = state[key].abs() + 1.0
    return state


def test_inception_layout_is_the_documented_one():
    layout = documented_inception_layout()
    assert len(layout) == 94 * 5 + 2  # 94 BasicConv2d (conv + 4 bn tensors) and the 1008-class fc
    model = FIDInceptionV3()
    state = random_state(layout)
    model.load_published_state_dict(state)  # file without num_batches_tracked (old torch pickles) loads too
    assert torch.equal(model.Mixed_6e.branch7x7dbl_5.conv.weight, state["Mixed_6e.branch7x7dbl_5.conv.weight"])
    with_counters = {**state, "Conv2d_1a_3x3.bn.num_batches_tracked": torch.tensor(0)}
    model.load_published_state_dict(with_counters)


@pytest.mark.parametrize("change", ["missing", "unexpected", "shape"])
def test_inception_loader_is_strict(change, tmp_path):
    state = random_state(documented_inception_layout())
    if change == "missing":
        del state["Mixed_7c.branch_pool.conv.weight"]
    elif change == "unexpected":
        state["AuxLogits.fc.weight"] = torch.zeros(1000, 768)
    else:
        state["fc.weight"] = torch.zeros(1000, 2048)
    with pytest.raises(ModelLoadError, match="pt_inception-2015-12-05"):
        FIDInceptionV3().load_published_state_dict(state)


def test_inception_file_round_trip_and_missing_file(tmp_path):
    state = random_state(documented_inception_layout(), seed=1)
    path = tmp_path / "pt_inception-2015-12-05-6726825d.pth"
    torch.save(state, path)
    model = FIDInceptionV3.from_file(path)
    assert torch.equal(model.fc.weight, state["fc.weight"]) and not model.training
    with pytest.raises(ModelLoadError, match="pt_inception-2015-12-05-6726825d.pth"):
        FIDInceptionV3.from_file(tmp_path / "absent.pth")


def test_inception_features_shape_and_determinism():
    model = random_init_(FIDInceptionV3(resize_input=False), seed=0)
    images = torch.rand(2, 3, 80, 80, generator=torch.Generator().manual_seed(0))
    features = model(images)
    assert features.shape == (2, 2048) and torch.isfinite(features).all() and features.std() > 0
    assert torch.allclose(model(images[:1]), features[:1], atol=1e-5)


def documented_lpips_layout(net: str) -> tuple[dict[str, tuple[int, ...]], dict[str, tuple[int, ...]]]:
    """torchvision trunk keys (`features.<i>`, plus the classifier the published file carries) and LPIPS v0.1 head
    keys (`lin<k>.model.1.weight`), written out from torchvision / richzhang/PerceptualSimilarity."""
    if net == "alex":
        convs = {
            0: (64, 3, 11, 11),
            3: (192, 64, 5, 5),
            6: (384, 192, 3, 3),
            8: (256, 384, 3, 3),
            10: (256, 256, 3, 3),
        }
        classifier = {1: (4096, 9216), 4: (4096, 4096), 6: (1000, 4096)}
        channels = (64, 192, 384, 256, 256)
    else:
        widths = [(64, 3), (64, 64), (128, 64), (128, 128), (256, 128), (256, 256), (256, 256), (512, 256),
                  (512, 512), (512, 512), (512, 512), (512, 512), (512, 512)]  # fmt: skip
        indices = [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28]
        convs = {i: (out, cin, 3, 3) for i, (out, cin) in zip(indices, widths)}
        classifier = {0: (4096, 25088), 3: (4096, 4096), 6: (1000, 4096)}
        channels = (64, 128, 256, 512, 512)
    trunk = {}
    for index, shape in convs.items():
        trunk[f"features.{index}.weight"], trunk[f"features.{index}.bias"] = shape, (shape[0],)
    for index, shape in classifier.items():
        trunk[f"classifier.{index}.weight"], trunk[f"classifier.{index}.bias"] = shape, (shape[0],)
    heads = {f"lin{k}.model.1.weight": (1, c, 1, 1) for k, c in enumerate(channels)}
    return trunk, heads


@pytest.mark.parametrize("net", ["alex", "vgg"])
def test_lpips_loads_published_layout_strictly(net, tmp_path):
    trunk_layout, heads_layout = documented_lpips_layout(net)
    trunk, heads = random_state(trunk_layout), {k: v.abs() for k, v in random_state(heads_layout).items()}
    torch.save(trunk, tmp_path / "trunk.pth")
    torch.save(heads, tmp_path / "heads.pth")
    model = LPIPS.from_files(net, tmp_path / "trunk.pth", tmp_path / "heads.pth")
    assert torch.equal(model.lin4.model[1].weight, heads["lin4.model.1.weight"])
    with pytest.raises(ModelLoadError, match="LPIPS v0.1 linear heads"):
        LPIPS(net).load_published_state_dicts(trunk, {k: v for k, v in heads.items() if k != "lin2.model.1.weight"})
    with pytest.raises(ModelLoadError, match="ImageNet weights"):
        LPIPS(net).load_published_state_dicts({**trunk, "features.0.weight": torch.zeros(1)}, heads)


@pytest.mark.parametrize("net", ["alex", "vgg"])
def test_lpips_identity_symmetry_and_batch_invariance(net):
    model = random_init_lpips_(LPIPS(net), seed=0)
    generator = torch.Generator().manual_seed(1)
    x, y = torch.rand(3, 3, 64, 64, generator=generator), torch.rand(3, 3, 64, 64, generator=generator)
    assert torch.equal(model(x, x), torch.zeros(3))
    forward, backward = model(x, y), model(y, x)
    assert (forward > 0).all() and torch.allclose(forward, backward, rtol=1e-5)
    assert torch.allclose(torch.cat([model(x[i : i + 1], y[i : i + 1]) for i in range(3)]), forward, rtol=1e-4)
    mask = torch.zeros(3, 1, 64, 64)
    mask[:, :, 16:48, 16:48] = 1
    region = model(x, y, mask)
    assert region.shape == (3,) and (region > 0).all()
    assert torch.equal(model(x, x, mask), torch.zeros(3))
