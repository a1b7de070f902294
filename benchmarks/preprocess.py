"""Per-stage timing of `TryOnPreprocessor` on the shared person photos (CPU, offline).

Usage:
    python benchmarks/preprocess.py [--samples ../shared/samples] [--garment solidus_ruby-polo] [--repeats 3]
        [--photo-size 1024] [--garment-cache 16]

Every person photo of `samples/person` and `samples-hard/person` is first resized so that its longer side is
`--photo-size` px (as a phone photo would be after a resize; 0 keeps the files as they are). Prints one row per photo
with the median milliseconds of each stage over `--repeats` runs (after one warm-up run that also builds the
mediapipe graphs). `--garment-cache 0` segments the two product photos on every call (a new garment per request);
the default keeps them cached, as a service trying one catalogue garment on many people does.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
import warnings
from pathlib import Path

import cv2
import numpy as np

from mvvton.preprocessing.io import load_image
from mvvton.preprocessing.preprocessor import TryOnPreprocessor

STAGES = ("load", "pose", "view", "garment_mask", "mask", "warp", "total")
DEFAULT_SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "samples"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=Path, default=DEFAULT_SAMPLES, help="folder with person/ and garment/")
    parser.add_argument("--garment", default="solidus_ruby-polo", help="garment stem: <stem>_front.jpg / _back.jpg")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--height", type=int, default=512)
    parser.add_argument("--width", type=int, default=384)
    parser.add_argument("--photo-size", type=int, default=1024, help="longer side of the person photos (0: as stored)")
    parser.add_argument("--garment-cache", type=int, default=16, help="TryOnPreprocessor(garment_cache_size=...)")
    args = parser.parse_args()

    folders = [args.samples / "person", args.samples.parent / "samples-hard" / "person"]
    paths = sorted(p for folder in folders if folder.is_dir() for p in folder.glob("*.jpg"))
    persons = [(path.name, _resized(np.asarray(load_image(path)), args.photo_size)) for path in paths]
    if not persons:
        raise SystemExit(f"no person photos in {args.samples / 'person'}")
    front = args.samples / "garment" / f"{args.garment}_front.jpg"
    back = args.samples / "garment" / f"{args.garment}_back.jpg"
    preprocessor = TryOnPreprocessor(garment_cache_size=args.garment_cache)
    warnings.simplefilter("ignore", UserWarning)

    build_start = time.perf_counter()
    preprocessor(persons[0][1], front, back, height=args.height, width=args.width)  # warm-up, builds the graphs
    warmup_ms = (time.perf_counter() - build_start) * 1000

    rows = []
    for name, image in persons:
        runs = [preprocessor(image, front, back, height=args.height, width=args.width) for _ in range(args.repeats)]
        medians = {stage: statistics.median(run.timings.get(stage, 0.0) for run in runs) for stage in STAGES}
        size = f"{image.shape[1]}x{image.shape[0]}"
        rows.append((name, size, runs[0].view.value, runs[0].routed_garment.value, medians))

    print(f"# TryOnPreprocessor per-stage ms (median of {args.repeats}), canvas {args.height}x{args.width}, "
          f"garment {args.garment}, garment cache {args.garment_cache}, python {platform.python_version()}, "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}, warm-up incl. graph build "
          f"{warmup_ms:.0f} ms")  # fmt: skip
    header = ["photo", "size", "view", "routed", *STAGES]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for name, size, view, routed, medians in rows:
        cells = [name, size, view, routed, *(f"{medians[s]:.1f}" for s in STAGES)]
        print("| " + " | ".join(cells) + " |")
    totals = np.array([[r[4][s] for s in STAGES] for r in rows])
    print("| **median** | | | | " + " | ".join(f"{v:.1f}" for v in np.median(totals, axis=0)) + " |")


def _resized(image: np.ndarray, longer_side: int) -> np.ndarray:
    """`image` resized so that its longer side is `longer_side` (unchanged for 0)."""
    if longer_side <= 0:
        return image
    factor = longer_side / max(image.shape[:2])
    size = (round(image.shape[1] * factor), round(image.shape[0] * factor))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA if factor < 1 else cv2.INTER_CUBIC)


if __name__ == "__main__":
    main()
