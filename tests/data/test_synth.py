"""SynthMVG: MVG round trip, determinism, view cues, data check."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from mvvton.cli import main as cli_main
from mvvton.constants import COCO18_INDEX
from mvvton.data.check import check_dataset
from mvvton.data.mvg import MVGDataset
from mvvton.data.sample import SAMPLE_KEYS
from mvvton.data.synth import (
    SYNTH_YAWS_DEG,
    SynthConfig,
    build_skeleton,
    generate_synthmvg,
    identity_specs,
    person_keypoints,
    render_identity,
)

H, W = 128, 96
CONFIG = SynthConfig(identities=5, height=H, width=W, seed=7, test_fraction=0.4)


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("synth")
    generate_synthmvg(root, CONFIG, workers=1)
    return root


def tree_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_roundtrip_paired(synth_root):
    dataset = MVGDataset(synth_root, "train", paired=True, height=H, width=W)
    assert len(dataset) == 3 * 3  # 3 train identities x 3 MVG folders
    batch = next(iter(DataLoader(dataset, batch_size=3)))
    assert set(batch) == set(SAMPLE_KEYS)
    for key in ("person", "inpaint_image", "agnostic", "garment_front", "garment_back", "skeleton_person"):
        assert batch[key].shape == (3, 3, H, W) and batch[key].dtype == torch.float32
        assert batch[key].min() >= -1 and batch[key].max() <= 1
    assert batch["inpaint_mask"].shape == (3, 1, H, W)
    assert set(torch.unique(batch["garment_front_mask"]).tolist()) == {0.0, 1.0}
    # folder order 1/2/3 -> front/side/back person views; hard selection picks the back garment for back views
    assert batch["view"] == ["front", "side", "back"]
    assert batch["garment_view"] == ["front", "front", "back"]
    # exact keypoints are read back, in the tensor frame
    keypoints = batch["person_keypoints"]
    assert keypoints.shape == (3, 18, 3) and (keypoints[:, :, 2] > 0).sum() > 30
    # the masked region is regenerated: the agnostic image is grey there, the person is not
    sample = dataset[2]
    inside = sample["inpaint_mask"][0] > 0.9
    assert inside.float().mean() > 0.05
    assert sample["agnostic"][:, inside].abs().mean() < 0.05
    assert (sample["person"][:, inside] - sample["agnostic"][:, inside]).abs().mean() > 0.1
    # front and back product images differ (different prints)
    assert (sample["garment_front"] - sample["garment_back"]).abs().mean() > 0.02


def test_roundtrip_unpaired(synth_root):
    paired = MVGDataset(synth_root, "test", paired=True, height=H, width=W)
    unpaired = MVGDataset(synth_root, "test", paired=False, height=H, width=W)
    assert len(unpaired) == len(paired) == 6
    partners = dict(line.split() for line in (synth_root / "unpaired.txt").read_text().splitlines())
    by_id = {paired[i]["sample_id"]: paired[i] for i in range(len(paired))}
    for index in range(len(unpaired)):
        sample = unpaired[index]
        folder = sample["sample_id"].split("/")[1].split("__")[0]
        identity, order = folder.split("_")
        donor = by_id[f"test/{partners[identity]}_{order}"]
        own = by_id[f"test/{folder}"]
        assert partners[identity] != identity
        assert torch.equal(sample["garment_front"], donor["garment_front"])
        assert torch.equal(sample["person"], own["person"])
        assert not torch.equal(sample["inpaint_image"], own["inpaint_image"])  # warp_feat_unpair


def test_same_seed_same_bytes(tmp_path):
    config = SynthConfig(identities=3, height=H, width=W, seed=11)
    generate_synthmvg(tmp_path / "a", config, workers=1)
    generate_synthmvg(tmp_path / "b", config, workers=2)
    generate_synthmvg(tmp_path / "c", SynthConfig(identities=3, height=H, width=W, seed=12), workers=1)
    a, b, c = (tree_bytes(tmp_path / name) for name in "abc")
    assert a == b
    shared = a.keys() & c.keys()
    assert len(a) == len(c) and sum(a[k] != c[k] for k in shared) > len(shared) // 2


def test_view_cues_from_geometry():
    for index in range(6):
        body, _, _ = identity_specs(3, index)
        skeleton = build_skeleton(body, H, W)
        front, side, back = (person_keypoints(skeleton, math.radians(d), H, W) for d in (0, 90, 180))
        rs, ls = COCO18_INDEX["right_shoulder"], COCO18_INDEX["left_shoulder"]
        assert front[rs, 0] < front[ls, 0]  # facing the camera: the right shoulder is on the image left
        assert back[rs, 0] > back[ls, 0]  # facing away: left/right order swaps
        for face in ("nose", "right_eye", "left_eye"):
            assert front[COCO18_INDEX[face], 2] > 0 and back[COCO18_INDEX[face], 2] == 0
        # a 90-degree profile shows one eye only
        assert (side[COCO18_INDEX["right_eye"], 2] > 0) != (side[COCO18_INDEX["left_eye"], 2] > 0)


def test_rendered_views_and_agnostic():
    render = render_identity(CONFIG, 0, 1)
    assert len(render.persons) == len(SYNTH_YAWS_DEG)
    assert render.persons[0].shape == (H, W, 3) and render.persons[0].dtype == np.uint8
    assert not np.array_equal(render.products[0], render.products[1])
    for view, agnostic in render.agnostics.items():
        mask = render.inpaint_masks[view] > 127
        # the person wearing G0 gives the same agnostic image as the person wearing G
        from_g0 = render.persons_g0[view].copy()
        from_g0[mask] = 128
        assert np.array_equal(from_g0, agnostic)
        assert not np.array_equal(render.persons_g0[view], render.persons[view])
        # the pre-warp differs from the target inside the mask (an imperfect composite) and equals it outside
        warp = render.warps[view]
        assert np.array_equal(warp[~mask], render.persons[view][~mask])
        assert np.abs(warp[mask].astype(int) - render.persons[view][mask]).mean() > 5


def test_config_limits():
    with pytest.raises(ValueError):
        SynthConfig(identities=1, height=1024, width=768)
    with pytest.raises(ValueError):
        SynthConfig(identities=0)


def test_check_clean_and_broken(synth_root, tmp_path, capsys):
    report = check_dataset(synth_root, "mvg")
    assert report.ok, report.format_text()
    assert cli_main(["data", "check", str(synth_root), "--format", "mvg"]) == 0

    broken = tmp_path / "broken"
    shutil.copytree(synth_root, broken)
    (broken / "train/warp_feat" / next(iter(sorted(p.name for p in (broken / "train/warp_feat").iterdir())))).unlink()
    skeleton = sorted((broken / "test/skeletons").rglob("*.jpg"))[0]
    skeleton.write_bytes(b"not a jpeg")
    mask = sorted((broken / "train/inpaint_mask").rglob("*.jpg"))[0]
    cv2.imwrite(str(mask), np.zeros((H // 2, W // 2), np.uint8))
    report = check_dataset(broken, "mvg")
    counts = report.counts()
    assert not report.ok
    assert counts["missing"] == 1 and counts["unreadable"] == 1 and counts["size_mismatch"] == 1
    capsys.readouterr()
    assert cli_main(["data", "check", str(broken), "--format", "mvg"]) == 1
    out = capsys.readouterr().out
    assert "missing: 1" in out and "unreadable: 1" in out and "size_mismatch: 1" in out
    assert cli_main(["data", "check", str(tmp_path / "nowhere"), "--format", "mvg"]) == 1


def test_cli_synth(tmp_path, capsys):
    assert cli_main(["data", "synth", str(tmp_path / "s"), "--identities", "2", "--size", "64x48", "--seed", "1",
                     "--workers", "1", "--no-progress", "--contact-sheet", str(tmp_path / "sheet.png")]) == 0
    assert (tmp_path / "s/unpaired.txt").is_file() and (tmp_path / "sheet.png").is_file()
    assert cli_main(["data", "synth", str(tmp_path / "x"), "--identities", "2", "--size", "2048x96"]) == 2
