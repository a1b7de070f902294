"""View-classification accuracy on the shared person photos and labelled transformed copies.

Usage:
    python benchmarks/view_accuracy.py [--shared ../shared] [--height 512] [--width 384]

Every person photo of `samples/` and `samples-hard/` (true view = first word of the MANIFEST note) is classified as
the preprocessor does it (letterboxed canvas, pose on the photo's box, `decide_view`), together with copies whose
view label is known: mirrored, rotated by ±8°, rescaled to 0.5× and 2×, and cropped just below the nose (the head
cut off, as in a chin crop). Prints a markdown table (rows = transform, accuracy per true view) and the misses.
"""

from __future__ import annotations

import argparse
import csv
from collections import defaultdict
from pathlib import Path

import cv2
import numpy as np

from mvvton.errors import MVVTONError
from mvvton.preprocessing.io import load_image
from mvvton.preprocessing.person import MediaPipePoseEstimator
from mvvton.preprocessing.preprocessor import estimate_pose_in_box, fit_to_canvas
from mvvton.preprocessing.view import decide_view

DEFAULT_SHARED = Path(__file__).resolve().parents[2] / "shared"


def labelled_photos(shared: Path) -> list[tuple[Path, str]]:
    """(photo path, true view) for every person photo listed in the shared MANIFEST files."""
    rows = []
    for folder in ("samples", "samples-hard"):
        manifest = shared / folder / "MANIFEST.tsv"
        with manifest.open(newline="") as stream:
            for row in csv.DictReader(stream, delimiter="\t"):
                if row["path"].startswith("person/"):
                    rows.append((shared / folder / row["path"], row["note"].split(";")[0].split()[0]))
    return rows


def rotate(image: np.ndarray, degrees: float) -> np.ndarray:
    """Rotate about the centre, keeping the size, border replicated."""
    height, width = image.shape[:2]
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), degrees, 1.0)
    return cv2.warpAffine(image, matrix, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def rescale(image: np.ndarray, factor: float) -> np.ndarray:
    height, width = image.shape[:2]
    size = (max(32, round(width * factor)), max(32, round(height * factor)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA if factor < 1 else cv2.INTER_CUBIC)


def below_nose(image: np.ndarray, nose_y: float) -> np.ndarray | None:
    """The photo cut a little below the nose (head removed), or None when that leaves too little."""
    top = int(round(nose_y + 0.02 * image.shape[0]))
    if top <= 0 or image.shape[0] - top < 0.6 * image.shape[0]:
        return None
    return np.ascontiguousarray(image[top:])


def classify(estimator, image: np.ndarray, height: int, width: int):
    canvas, box = fit_to_canvas(image, height, width)
    pose = estimate_pose_in_box(estimator, canvas, box)
    return decide_view(pose.keypoints, pose.landmarks, pose.world_landmarks), pose


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared", type=Path, default=DEFAULT_SHARED)
    parser.add_argument("--height", type=int, default=512)
    parser.add_argument("--width", type=int, default=384)
    args = parser.parse_args()
    estimator = MediaPipePoseEstimator()
    hits: dict[str, dict[str, list[bool]]] = defaultdict(lambda: defaultdict(list))
    misses = []
    for path, truth in labelled_photos(args.shared):
        image = np.asarray(load_image(path))
        variants = {
            "original": image,
            "mirrored": np.ascontiguousarray(image[:, ::-1]),
            "rotated +8°": rotate(image, 8),
            "rotated -8°": rotate(image, -8),
            "rescaled 0.5x": rescale(image, 0.5),
            "rescaled 2x": rescale(image, 2.0),
        }
        try:
            decision, pose = classify(estimator, image, args.height, args.width)
            nose = pose.keypoints[0]
            box_nose_y = (float(nose[1]) - fit_to_canvas(image, args.height, args.width)[1].top) / max(
                fit_to_canvas(image, args.height, args.width)[1].scale, 1e-6
            )
            if nose[2] > 0:
                cropped = below_nose(image, box_nose_y)
                if cropped is not None:
                    variants["cut below the nose"] = cropped
        except MVVTONError:
            pass
        for name, variant in variants.items():
            try:
                got = classify(estimator, variant, args.height, args.width)[0]
                view, note = got.view.value, f"{got.confidence:.2f} {got.explanation}"
            except MVVTONError as exc:
                view, note = "error", str(exc)[:80]
            hits[name][truth].append(view == truth)
            hits[name]["all"].append(view == truth)
            if view != truth:
                misses.append(f"{path.name} [{name}]: true {truth}, got {view} ({note})")
    views = ("front", "side", "back", "all")
    print(f"# view accuracy, canvas {args.height}x{args.width}")
    print("| transform | " + " | ".join(views) + " |")
    print("|---|" + "---|" * len(views))
    total = defaultdict(list)
    for name, per_view in hits.items():
        cells = []
        for view in views:
            values = per_view.get(view, [])
            total[view] += values
            cells.append(f"{sum(values)}/{len(values)}" if values else "-")
        print(f"| {name} | " + " | ".join(cells) + " |")
    print("| **total** | " + " | ".join(f"**{sum(total[v])}/{len(total[v])}**" for v in views) + " |")
    print("\nmisses:")
    for line in misses:
        print("-", line)
    estimator.close()


if __name__ == "__main__":
    main()
