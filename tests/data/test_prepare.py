"""`data prepare` on the shared sample photos -> an MVG-layout dataset MVGDataset loads (skips without ../shared)."""

from __future__ import annotations

import pytest

from mvvton.data.check import check_dataset
from mvvton.data.mvg import MVGDataset
from mvvton.data.prepare import prepare_dataset, read_raw_pairs

H, W = 256, 192


@pytest.fixture()
def raw_dir(shared_dir, tmp_path):
    samples = shared_dir / "samples"
    persons = {"front.jpg": "idmvton_00055_00_front.jpg", "back.jpg": "pcdms_img6_back.jpg"}
    if not all((samples / "person" / name).is_file() for name in persons.values()):
        pytest.skip("shared sample photos not found")
    raw = tmp_path / "raw"
    (raw / "persons").mkdir(parents=True)
    for link, name in persons.items():  # symlinks: the photos never leave ../shared
        (raw / "persons" / link).symlink_to(samples / "person" / name)
    garment = raw / "garments" / "tee"
    garment.mkdir(parents=True)
    (garment / "front.jpg").symlink_to(samples / "garment" / "solidus_tshirt-blue_front.jpg")
    (garment / "back.jpg").symlink_to(samples / "garment" / "solidus_tshirt-blue_back.jpg")
    (raw / "pairs.txt").write_text("front.jpg tee\nback.jpg tee back  # forced view\nmissing.jpg tee\n")
    return raw


def test_prepare_shared_samples(raw_dir, tmp_path):
    pytest.importorskip("mediapipe")
    out = tmp_path / "out"
    assert len(read_raw_pairs(raw_dir)) == 3
    calls = []
    summary = prepare_dataset(raw_dir, out, height=H, width=W, progress=lambda d, t: calls.append((d, t)))
    assert summary.written == 2 and summary.skipped == 0
    assert [number for number, _ in summary.failed] == ["00003"]  # the missing photo is counted, not fatal
    assert calls[-1] == (3, 3)
    dataset = MVGDataset(out, "test", height=H, width=W)
    assert len(dataset) == 2
    views = {}
    for index in range(len(dataset)):
        sample = dataset[index]
        views[sample["sample_id"]] = sample["view"]
        assert sample["person"].shape == (3, H, W) and (sample["person_keypoints"][:, 2] > 0).sum() >= 8
        assert 0.02 < float(sample["inpaint_mask"].mean()) < 0.8
    assert views["test/00002_3"] == "back"
    assert check_dataset(out, "mvg").ok
    # resumable: complete samples are skipped; a deleted file makes its sample redo
    again = prepare_dataset(raw_dir, out, height=H, width=W)
    assert again.written == 0 and again.skipped == 2
    (out / "test" / "warp_feat" / "00002_3.jpg").unlink()
    third = prepare_dataset(raw_dir, out, height=H, width=W)
    assert third.written == 1 and third.skipped == 1
    assert not list((out / "test").glob(".staging-*"))
