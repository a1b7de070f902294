"""`evaluate`: per-view split sums to the whole, batch-size invariance, unpaired runs, report and sources."""

from __future__ import annotations

import json

import numpy as np
import PIL.Image
import pytest
import torch
from torch.utils.data import Dataset

from mvvton.errors import DatasetError
from mvvton.evaluation.networks.factory import build_feature_networks
from mvvton.evaluation.paper_eval import FeatureNetworks, evaluate
from mvvton.evaluation.protocol import EvalProtocol
from mvvton.evaluation.report import format_markdown, write_report
from mvvton.evaluation.sources import FolderPairSource, ManifestSource

VIEW_CYCLE = ("front", "side", "back", "front", "back", "front", "side")


class SyntheticPairs(Dataset):
    """Ground truth = smooth random images; generated = ground truth + noise; a box mask; views cycling."""

    def __init__(self, count: int = 7, size: int = 48) -> None:
        generator = torch.Generator().manual_seed(0)
        coarse = torch.rand(count, 3, 4, 4, generator=generator)
        self.reference = torch.nn.functional.interpolate(coarse, size=(size, size), mode="bicubic").clamp(0, 1)
        noise = torch.randn(self.reference.shape, generator=generator) * 0.1
        self.generated = (self.reference + noise).clamp(0, 1)
        self.mask = torch.zeros(count, 1, size, size)
        self.mask[:, :, size // 4 : 3 * size // 4, size // 4 : 3 * size // 4] = 1

    def __len__(self) -> int:
        return len(self.reference)

    def __getitem__(self, index: int) -> dict:
        return {
            "sample_id": f"s{index}", "generated": self.generated[index], "reference": self.reference[index],
            "mask": self.mask[index], "has_mask": True, "view": VIEW_CYCLE[index % len(VIEW_CYCLE)],
        }  # fmt: skip


@pytest.fixture(scope="module")
def networks():
    """Random-init LPIPS-alex only: FID's 2048x2048 eigen-decompositions are slow, so they get their own tests."""
    everything = build_feature_networks(lpips_nets=("alex",), random_init_seed=0)
    return FeatureNetworks(lpips=everything.lpips, weights={"lpips_alex": everything.weights["lpips_alex"]})


@pytest.fixture(scope="module")
def networks_with_inception():
    return build_feature_networks(lpips_nets=("alex",), random_init_seed=0)


@pytest.fixture(scope="module")
def protocol():
    return EvalProtocol(fid_resize="bilinear", kid_subsets=10, lpips_nets=("alex",))


@pytest.fixture(scope="module")
def report(networks, protocol):
    return evaluate(SyntheticPairs(), networks, protocol, batch_size=3)


def test_per_view_split_sums_to_the_whole(report):
    groups = report.groups
    views = [view for view in ("front", "side", "back") if view in groups]
    assert views == ["front", "side", "back"]
    assert sum(groups[view]["n"] for view in views) == groups["all"]["n"] == 7
    for key in ("ssim", "psnr", "lpips_alex", "ssim_garment", "lpips_alex_garment"):
        weighted = sum(groups[view]["n"] * groups[view][key] for view in views)
        assert weighted == pytest.approx(groups["all"]["n"] * groups["all"][key], rel=1e-9), key


@pytest.mark.slow
def test_distribution_metrics_per_view(networks_with_inception, protocol):
    report = evaluate(SyntheticPairs(count=5), networks_with_inception, protocol, batch_size=5)
    groups = report.groups  # views: front, side, back, front, back
    assert groups["all"]["fid"] > 0 and groups["all"]["kid_subset_size"] == 5
    assert groups["front"]["fid"] is not None and groups["back"]["fid"] is not None
    assert groups["side"]["fid"] is None and any("side: 1 image" in note for note in report.notes)
    assert "random-init" in report.networks["inception"] and "random-init" in format_markdown(report)


def test_batch_size_invariance(report, networks, protocol):
    single = evaluate(SyntheticPairs(), networks, protocol, batch_size=1)
    for first, second in zip(report.samples, single.samples):
        assert first.keys() == second.keys()
        for key, value in first.items():
            if isinstance(value, float):
                assert value == pytest.approx(second[key], rel=1e-4, abs=1e-6), key


def test_values_are_sane(report):
    whole = report.groups["all"]
    assert 0 < whole["ssim"] < 1 and whole["lpips_alex"] > 0 and 15 < whole["psnr"] < 30
    assert "fid" not in whole and any("--fid-weights" in note for note in report.notes)
    assert all("random-init" in origin for origin in report.networks.values())


@pytest.mark.slow
def test_unpaired_reports_distribution_metrics_only(networks_with_inception, protocol):
    unpaired = evaluate(SyntheticPairs(count=3), networks_with_inception, protocol, paired=False, batch_size=4)
    assert set(unpaired.groups["all"]) == {"n", "fid", "kid", "kid_std", "kid_subset_size"}
    assert any("unpaired" in note for note in unpaired.notes)


def test_report_files(report, tmp_path):
    json_path, markdown_path = write_report(report, tmp_path / "eval")
    table = markdown_path.read_text()
    assert "| all | 7 |" in table and "| back |" in table and "random-init" in table
    assert json.loads(json_path.read_text())["groups"]["all"]["n"] == 7
    assert format_markdown(report) == table


def _write_png(path, seed: int, size=(24, 32)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    PIL.Image.fromarray(np.random.default_rng(seed).integers(0, 256, (*size, 3), dtype=np.uint8)).save(path)


def test_folder_and_manifest_sources(tmp_path):
    for index in range(3):
        _write_png(tmp_path / "gen" / "sub" / f"{index}.png", index)
        _write_png(tmp_path / "ref" / "sub" / f"{index}.jpg", 10 + index, size=(48, 64))
    source = FolderPairSource(tmp_path / "gen", tmp_path / "ref")
    assert [item[0] for item in source.pairs] == ["sub/0", "sub/1", "sub/2"]
    assert source[0]["reference"].shape == (3, 48, 64) and source[0]["view"] == "unknown"
    _write_png(tmp_path / "gen" / "extra.png", 99)
    with pytest.raises(DatasetError, match="no reference"):
        FolderPairSource(tmp_path / "gen", tmp_path / "ref")
    PIL.Image.fromarray(np.full((48, 64), 255, np.uint8)).save(tmp_path / "mask.png")
    (tmp_path / "eval.jsonl").write_text(
        json.dumps({"generated": "gen/sub/0.png", "reference": "ref/sub/0.jpg", "mask": "mask.png", "view": "back"})
        + "\n"
    )
    item = ManifestSource(tmp_path / "eval.jsonl")[0]
    assert item["view"] == "back" and item["has_mask"] and float(item["mask"].mean()) == 1.0
