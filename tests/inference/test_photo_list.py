"""Raw-photo batch input: photo-list validation, and preprocessing inside DataLoader worker processes."""

from __future__ import annotations

import json

import pytest
from torch.utils.data import DataLoader

from mvvton.batch_inference.photos import PhotoTripletDataset, read_photo_list
from mvvton.errors import DatasetError


def test_csv_and_jsonl_lists(tmp_path):
    (tmp_path / "list.csv").write_text(
        "person,garment_front,garment_back\np/a.jpg,g/f.jpg,g/b.jpg\np/b.jpg,g/f.jpg,\n"
    )
    rows = read_photo_list(tmp_path / "list.csv")
    assert [row["id"] for row in rows] == ["a", "b"] and "garment_back" not in rows[1]
    assert rows[0]["view"] == "auto"
    (tmp_path / "list.jsonl").write_text(
        json.dumps({"id": "x", "person": "a.jpg", "garment_front": "f.jpg", "view": "back"})
    )
    assert read_photo_list(tmp_path / "list.jsonl")[0]["view"] == "back"


@pytest.mark.parametrize(
    "content, message",
    [
        ("person\na.jpg\n", "missing"),
        ("person,garment_front,colour\na.jpg,f.jpg,red\n", "unknown"),
        ("person,garment_front,view\na.jpg,f.jpg,top\n", "view must be"),
        ("person,garment_front\nx/a.jpg,f.jpg\ny/a.jpg,f.jpg\n", "duplicate id"),
        ("person,garment_front\n", "no rows"),
    ],
)
def test_bad_lists_are_rejected(tmp_path, content, message):
    (tmp_path / "list.csv").write_text(content)
    with pytest.raises(DatasetError, match=message):
        read_photo_list(tmp_path / "list.csv")


@pytest.mark.slow
def test_photos_are_preprocessed_in_worker_processes(shared_dir, tmp_path):
    samples = shared_dir / "samples"
    (tmp_path / "list.csv").write_text(
        "id,person,garment_front,garment_back\n"
        f"back,{samples}/person/pcdms_img6_back.jpg,{samples}/garment/solidus_ruby-polo_front.jpg,"
        f"{samples}/garment/solidus_ruby-polo_back.jpg\n"
        f"front,{samples}/person/idmvton_00055_00_front.jpg,{samples}/garment/solidus_ruby-polo_front.jpg,\n"
    )
    dataset = PhotoTripletDataset(tmp_path / "list.csv", height=128, width=96)
    # the preprocessor is built in the worker; spawned, as the runner does (mediapipe aborts in a forked child
    # once the parent process has used it)
    batches = list(DataLoader(dataset, batch_size=2, num_workers=1, multiprocessing_context="spawn"))
    assert len(batches) == 1 and dataset.preprocessor is None
    batch = batches[0]
    assert batch["sample_id"] == ["back", "front"] and batch["view"] == ["back", "front"]
    assert batch["person"].shape == (2, 3, 128, 96) and batch["inpaint_mask"].shape == (2, 1, 128, 96)
    assert 0 < float(batch["inpaint_mask"].mean()) < 1 and batch["person"].min() >= -1
