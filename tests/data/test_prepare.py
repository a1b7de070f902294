"""`data prepare` on the shared sample photos -> an MVG-layout dataset MVGDataset loads (skips without ../shared)."""

from __future__ import annotations

import sys

import pytest

from mvvton.data.check import check_dataset
from mvvton.data.mvg import MVGDataset
from mvvton.data.prepare import prepare_dataset, read_raw_pairs
from tests.testing_utils import load_kill_drill

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


@pytest.mark.slow
def test_prepare_killed_while_moving_files_resumes_to_the_same_dataset(raw_dir, tmp_path):
    """SIGKILL (by PID) while sample 00002's files are being moved into place, rerun: same bytes as one clean run."""
    pytest.importorskip("mediapipe")
    drill = load_kill_drill()

    def command(out):
        code = "import sys; from mvvton.cli import main; sys.exit(main(sys.argv[1:]))"
        return [sys.executable, "-c", code, "data", "prepare", str(raw_dir), str(out), "--size", f"{H}x{W}",
                "--no-progress"]  # fmt: skip

    reference, out = tmp_path / "reference", tmp_path / "killed"
    with pytest.raises(RuntimeError, match="prepared 2 sample"):  # exit code 1: the missing photo is counted
        drill.run_to_end(command(reference), tmp_path / "reference.log")
    drill.start_and_kill_at_pause(command(out), "prepare.moving:2", tmp_path, tmp_path / "killed.log")
    assert list((out / "test").glob(".staging-00002-*")) and not (out / "test" / ".prepared" / "00002.json").exists()
    with pytest.raises(RuntimeError, match="prepared 1 sample.*skipped 1 complete"):
        drill.run_to_end(command(out), tmp_path / "rerun.log")
    assert "removed leftover of an interrupted run" in (tmp_path / "rerun.log").read_text()
    assert drill.tree_digest(out) == drill.tree_digest(reference)
