import csv
from pathlib import Path

import numpy as np
import pytest
from PIL import Image


@pytest.fixture(scope="session")
def person_samples(shared_dir: Path) -> dict[str, str]:
    """Person photo path -> expected view, from ../shared/samples/MANIFEST.tsv (photos are read in place)."""
    manifest = shared_dir / "samples" / "MANIFEST.tsv"
    out = {}
    with manifest.open(newline="") as stream:
        for row in csv.DictReader(stream, delimiter="\t"):
            if row["path"].startswith("person/"):
                out[str(shared_dir / "samples" / row["path"])] = row["note"].split(";")[0].split()[0]
    assert len(out) == 7
    return out


@pytest.fixture(scope="session")
def garment_samples(shared_dir: Path) -> list[Path]:
    paths = sorted((shared_dir / "samples" / "garment").glob("*.jpg"))
    assert len(paths) == 9
    return paths


@pytest.fixture(scope="session")
def mediapipe_estimator():
    pytest.importorskip("mediapipe")
    from mvvton.preprocessing.person import MediaPipePoseEstimator

    estimator = MediaPipePoseEstimator()
    yield estimator
    estimator.close()


@pytest.fixture(scope="session")
def person_results(person_samples, mediapipe_estimator):
    """Pose results for every sample person photo, computed once per session."""
    results = {}
    for path in person_samples:
        image = np.asarray(Image.open(path).convert("RGB"))
        results[path] = (image, mediapipe_estimator(image))
    return results


def synthetic_keypoints(view: str = "front", scale: float = 1.0) -> np.ndarray:
    """Hand-made COCO-18 keypoints of an upright person in a 512 x 384 image."""
    kp = np.zeros((18, 3), np.float32)
    right_x, left_x = (140, 244) if view == "front" else (244, 140) if view == "back" else (188, 196)
    points = {
        0: (192, 80), 1: (192, 130),
        2: (right_x, 132), 3: (right_x - 10, 200), 4: (right_x - 14, 260),
        5: (left_x, 132), 6: (left_x + 10, 200), 7: (left_x + 14, 260),
        8: (right_x + 20 if view != "side" else 190, 290), 9: (right_x + 20, 380), 10: (right_x + 20, 470),
        11: (left_x - 20 if view != "side" else 194, 290), 12: (left_x - 20, 380), 13: (left_x - 20, 470),
        14: (184, 72), 15: (200, 72), 16: (174, 78), 17: (210, 78),
    }  # fmt: skip
    for index, (x, y) in points.items():
        kp[index] = (x * scale, y * scale, 0.9)
    return kp
