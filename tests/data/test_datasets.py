"""Tiny MVG, VITON-HD, DressCode trees and a JSONL manifest built in tmp_path, loaded through the one schema."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from mvvton.constants import COCO18_INDEX
from mvvton.data.check import check_dataset
from mvvton.data.dresscode import DressCodeDataset
from mvvton.data.manifest import ManifestDataset, read_manifest, write_manifest
from mvvton.data.mvg import MVGDataset
from mvvton.data.sample import SAMPLE_KEYS
from mvvton.data.vitonhd import VitonHDDataset
from mvvton.errors import DatasetError

H, W = 64, 48


def put(path: Path, value: int | tuple, size: tuple[int, int] = (H, W), grey: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    shape = size if grey else (*size, 3)
    cv2.imwrite(str(path), np.full(shape, value, np.uint8))
    return path


def body_keypoints(scale: float = 1.0) -> np.ndarray:
    keypoints = np.zeros((18, 3), np.float32)
    for name, (x, y) in {"neck": (24, 14), "right_shoulder": (16, 15), "left_shoulder": (32, 15),
                         "right_elbow": (13, 26), "left_elbow": (35, 26), "right_hip": (19, 40),
                         "left_hip": (29, 40), "nose": (24, 8)}.items():  # fmt: skip
        keypoints[COCO18_INDEX[name]] = (x * scale, y * scale, 0.9)
    return keypoints


def assert_schema(sample: dict) -> None:
    assert set(sample) == set(SAMPLE_KEYS)
    for key in ("person", "inpaint_image", "agnostic", "garment_front", "garment_back", "skeleton_person"):
        assert sample[key].shape == (3, H, W) and sample[key].dtype == torch.float32
    assert sample["inpaint_mask"].shape == (1, H, W) and sample["person_keypoints"].shape == (18, 3)


def test_tiny_mvg_explicit_views(tmp_path):
    split = tmp_path / "test"
    for identity, shade in (("00010", 40), ("00020", 160)):
        for order in "123":
            folder = f"{identity}_{order}"
            # names that sort as [front-garment view, person, back-garment view]
            for stem, value in (("a_front", shade), ("b_person", shade + 10), ("c_back", shade + 20)):
                put(split / "image-wo-bg" / folder / f"{stem}.jpg", value)
                put(split / "skeletons" / folder / f"{stem}.jpg", 0)
            for stem, value in (("a_front", shade + 30), ("c_back", shade + 60)):
                put(split / "cloth" / folder / f"{stem}.jpg", value, (32, 24))
                put(split / "cloth-mask" / folder / f"{stem}.jpg", 255, (32, 24), grey=True)
            put(split / "inpaint_mask" / folder / "b_person.jpg", 255, grey=True)
            put(split / "warp_feat" / f"{folder}.jpg", 90)
            put(split / "warp_feat_unpair" / f"{folder}.jpg", 91)
    (tmp_path / "unpaired.txt").write_text("00010 00020\n00020 00010\n")
    paired = MVGDataset(tmp_path, "test", paired=True, height=H, width=W)
    unpaired = MVGDataset(tmp_path, "test", paired=False, height=H, width=W)
    assert len(paired) == len(unpaired) == 6
    sample = paired[2]
    assert_schema(sample)
    assert sample["view"] == "back" and sample["garment_view"] == "back" and sample["sample_id"] == "test/00010_3"
    level = lambda t: round(float((t.mean() + 1) * 127.5))  # noqa: E731
    assert abs(level(sample["person"]) - 50) <= 2  # b_person, not a_front / c_back
    assert abs(level(sample["garment_front"]) - 70) <= 2 and abs(level(sample["garment_back"]) - 100) <= 2
    assert torch.all(sample["inpaint_mask"] > 0.99) and torch.all(sample["person_keypoints"] == 0)
    other = unpaired[0]
    assert other["sample_id"] == "test/00010_1__00020"
    assert abs(level(other["garment_front"]) - 190) <= 2 and abs(level(other["inpaint_image"]) - 91) <= 2
    assert check_dataset(tmp_path, "mvg").ok
    (split / "image-wo-bg/00020_2/c_back.jpg").unlink()  # a 2-image folder is reported, not fatal
    report = check_dataset(tmp_path, "mvg")
    assert not report.ok and report.counts()["malformed"] >= 1
    with pytest.raises(DatasetError):
        MVGDataset(tmp_path, "test")


def test_tiny_vitonhd(tmp_path):
    split = tmp_path / "test"
    big_h, big_w = 2 * H, 2 * W
    for name in ("00001_00", "00002_00"):
        put(split / "image" / f"{name}.jpg", 120, (big_h, big_w))
        put(split / "cloth" / f"{name}.jpg", 200, (big_h, big_w))
        put(split / "cloth-mask" / f"{name}.jpg", 255, (big_h, big_w), grey=True)
        body25 = np.zeros((25, 3), np.float32)
        coco = body_keypoints(2.0)
        body25[[0, 1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18]] = coco
        (split / "openpose_json").mkdir(parents=True, exist_ok=True)
        (split / "openpose_json" / f"{name}_keypoints.json").write_text(
            json.dumps({"people": [{"pose_keypoints_2d": body25.reshape(-1).tolist()}]})
        )
        put(split / "cloth-warp" / f"{name}.jpg", 30, (big_h, big_w))
        put(split / "cloth-warp-mask" / f"{name}.jpg", 255, (big_h, big_w), grey=True)
    labels = np.zeros((big_h, big_w), np.uint8)
    labels[30:80, 30:66] = 5  # upper clothes
    (split / "image-parse-v3").mkdir()
    cv2.imwrite(str(split / "image-parse-v3" / "00001_00.png"), labels)
    (tmp_path / "test_pairs.txt").write_text("00001_00.jpg 00002_00.jpg\n00002_00.jpg 00001_00.jpg\n")
    dataset = VitonHDDataset(tmp_path, "test", paired=True, height=H, width=W)
    sample = dataset[0]
    assert_schema(sample)
    assert sample["view"] == "front" and torch.equal(sample["garment_front"], sample["garment_back"])
    # keypoints come from BODY_25, rescaled to the returned frame (pixel centres)
    assert torch.allclose(sample["person_keypoints"][COCO18_INDEX["left_hip"], :2], torch.tensor([28.75, 39.75]))
    mask = sample["inpaint_mask"][0] > 0.5
    assert mask[27, 24] and not mask[2, 2]  # parsing rule: the label block (dilated), not the corner
    assert torch.allclose(sample["inpaint_image"][:, mask].mean(), torch.tensor(30 / 127.5 - 1), atol=0.03)
    assert float(dataset[1]["inpaint_mask"].sum()) > 0  # no parsing: pose-based mask
    unpaired = VitonHDDataset(tmp_path, "test", paired=False, height=H, width=W)
    assert unpaired[0]["sample_id"] == "test/00001_00__00002_00"
    assert check_dataset(tmp_path, "vitonhd").ok


def test_tiny_dresscode(tmp_path):
    root = tmp_path / "upper_body"
    big_h, big_w = 2 * H, 2 * W
    for base in ("048392", "048393"):
        put(root / "images" / f"{base}_0.jpg", 100, (big_h, big_w))
        garment = np.full((big_h, big_w, 3), 250, np.uint8)
        garment[30:100, 20:76] = (20, 40, 200)
        cv2.imwrite(str(root / "images" / f"{base}_1.jpg"), garment)
        points = body_keypoints(384 / W)  # DressCode stores keypoints for a 384-wide image
        (root / "keypoints").mkdir(exist_ok=True)
        (root / "keypoints" / f"{base}_2.json").write_text(
            json.dumps({"keypoints": [[*p, i] for i, p in enumerate(points.tolist())]})
        )
    (root / "train_pairs.txt").write_text("048392_0.jpg 048392_1.jpg\n048393_0.jpg 048393_1.jpg\n")
    (root / "test_pairs_unpaired.txt").write_text("048392_0.jpg 048393_1.jpg\n")
    dataset = DressCodeDataset(tmp_path, "train", height=H, width=W)
    assert len(dataset) == 2
    sample = dataset[0]
    assert_schema(sample)
    neck = sample["person_keypoints"][COCO18_INDEX["neck"]]
    assert torch.allclose(neck[:2], torch.tensor([24.0, 14.0]), atol=0.6)
    # garment mask estimated from the plain background
    assert abs(float(sample["garment_front_mask"].mean()) - (70 * 56) / (big_h * big_w)) < 0.03
    unpaired = DressCodeDataset(root, "test", paired=False, height=H, width=W)
    assert unpaired[0]["sample_id"] == "test/048392_0__048393_1"
    assert check_dataset(tmp_path, "dresscode").ok


def test_manifest_round_trip(tmp_path):
    put(tmp_path / "persons/p.jpg", 120)
    put(tmp_path / "garments/tee/front.jpg", 200, (40, 30))
    put(tmp_path / "garments/tee/back.jpg", 60, (40, 30))
    put(tmp_path / "masks/p.png", 255, grey=True)
    put(tmp_path / "warp/p.jpg", 77)
    records = [
        {"id": "p-back", "person": "persons/p.jpg", "garment_front": "garments/tee/front.jpg",
         "garment_back": "garments/tee/back.jpg", "inpaint_mask": "masks/p.png", "warped_composite": "warp/p.jpg",
         "view": "back", "keypoints": body_keypoints().tolist()},
        {"id": "p-front", "person": "persons/p.jpg", "garment_front": "garments/tee/front.jpg",
         "inpaint_mask": "masks/p.png", "view": "front"},
    ]  # fmt: skip
    path = write_manifest(tmp_path / "manifest.jsonl", records)
    assert read_manifest(path) == records
    dataset = ManifestDataset(path, height=H, width=W)
    batch = next(iter(DataLoader(dataset, batch_size=2)))
    assert batch["sample_id"] == ["p-back", "p-front"] and batch["garment_view"] == ["back", "front"]
    assert batch["person"].shape == (2, 3, H, W)
    assert batch["skeleton_person"][0].max() > -1 and batch["skeleton_person"][1].max() == -1
    assert torch.allclose(batch["inpaint_image"][0].mean(), torch.tensor(77 / 127.5 - 1), atol=0.02)
    assert torch.allclose(batch["inpaint_image"][1].mean(), torch.tensor(128 / 127.5 - 1), atol=0.02)  # agnostic
    assert torch.equal(batch["garment_front"][1], batch["garment_back"][1])
    assert check_dataset(path, "manifest").ok
    with pytest.raises(DatasetError):
        write_manifest(tmp_path / "bad.jsonl", [{"id": "x", "person": "p.jpg"}])
    (tmp_path / "dup.jsonl").write_text("\n".join(json.dumps(r | {"id": "same"}) for r in records))
    with pytest.raises(DatasetError):
        read_manifest(tmp_path / "dup.jsonl")


def test_write_read_image_round_trip(tmp_path):
    from mvvton.data.sample import read_image, write_image

    image = np.zeros((H, W, 3), np.uint8)
    image[:, : W // 2] = (255, 0, 0)  # red on the left, checks RGB order too
    for suffix in (".png", ".jpg"):
        write_image(tmp_path / f"x{suffix}", image)
        back = read_image(tmp_path / f"x{suffix}")
        assert back.shape == (H, W, 3) and back[H // 2, 2, 0] > 240 and back[H // 2, 2, 2] < 15
