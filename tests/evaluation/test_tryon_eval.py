"""Garment-region evaluation of try-on variants on a small SynthMVG split (dataset pre-warp and the library's TPS)."""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader

from mvvton.evaluation.tryon_eval import evaluate_tryon, format_table, tps_prewarp_batch
from mvvton.pipelines import MVVTONPipeline
from tests.testing_utils import get_dummy_components


def load_split(root, width):
    from mvvton.data import MVGDataset

    return MVGDataset(root, split="test", paired=True, height=128, width=width)


def test_tps_prewarp_uses_the_routed_photo(synth_root):
    synth_test_split = load_split(synth_root, 96)
    batch = next(iter(DataLoader(synth_test_split, batch_size=len(synth_test_split))))
    assert "back" in batch["garment_view"] and "front" in batch["garment_view"]
    routed = tps_prewarp_batch(batch)
    front_only = tps_prewarp_batch(batch, front_as_back=True)
    assert routed.shape == batch["inpaint_image"].shape and routed.min() >= -1 and routed.max() <= 1
    keep = batch["inpaint_mask"] < 0.5  # outside the regenerated region the composite is the agnostic person
    assert torch.allclose(routed.masked_select(keep), batch["agnostic"].masked_select(keep), atol=1 / 127.5 + 1e-6)
    for i, garment_view in enumerate(batch["garment_view"]):
        region = batch["inpaint_mask"][i] > 0.5
        # the garment is pasted into the region: it no longer is the agnostic grey
        assert (routed[i] - batch["agnostic"][i]).abs().masked_select(region).mean() > 0.05
        if garment_view == "front":  # the front photo is routed either way
            assert torch.equal(routed[i], front_only[i])
        else:  # back views: the warp comes from the back photo, or from the front photo in the ablation
            assert (routed[i] - front_only[i]).abs().masked_select(region).mean() > 0.05


def test_evaluate_tryon_reports_every_variant_per_view(synth_root):
    synth_test_split = load_split(synth_root, 128)  # the dummy pipeline needs multiples of 64
    torch.manual_seed(0)
    pipe = MVVTONPipeline(**get_dummy_components())
    pipe.set_progress_bar_config(disable=True)
    variants = ("agnostic", "prewarp", "model", "front_as_back", "tps_prewarp", "tps_model", "tps_front_as_back")
    results = evaluate_tryon(pipe, synth_test_split, variants=variants, num_inference_steps=2, batch_size=2)
    assert set(results) == set(variants)
    views = set(synth_test_split[i]["view"] for i in range(len(synth_test_split)))
    for variant, per_view in results.items():
        assert set(per_view) == views | {"all"}, variant
        assert per_view["all"]["n"] == len(synth_test_split)
        assert all(0 < score["psnr"] < 100 and -1 <= score["ssim"] <= 1 and score["detail"] >= 0
                   for score in per_view.values())  # fmt: skip
    # the two pre-warps are different images, so their scores differ
    assert results["prewarp"]["all"]["psnr"] != results["tps_prewarp"]["all"]["psnr"]
    table = format_table(results)
    assert table.count("\n") == len(variants) + 1 and "| tps_front_as_back |" in table


def test_evaluate_tryon_forwards_guidance_scale(synth_root):
    """CFG changes the model's pictures (two UNet passes per step), so its scores differ from guidance 1."""
    synth_test_split = load_split(synth_root, 128)
    torch.manual_seed(0)
    pipe = MVVTONPipeline(**get_dummy_components())
    pipe.set_progress_bar_config(disable=True)
    common = dict(variants=("model",), num_inference_steps=2, batch_size=2)
    plain = evaluate_tryon(pipe, synth_test_split, **common)
    guided = evaluate_tryon(pipe, synth_test_split, guidance_scale=4.0, **common)
    assert plain["model"]["all"]["n"] == guided["model"]["all"]["n"] == len(synth_test_split)
    assert plain["model"]["all"]["psnr"] != guided["model"]["all"]["psnr"]


def test_format_table_prints_psnr_ssim_and_detail_per_view():
    results = {"model": {"front": {"psnr": 15.254, "ssim": 0.3514, "detail": 0.456, "n": 15}}}
    assert "| model | 15.25 / 0.351 / 0.46 (15) |" in format_table(results)
