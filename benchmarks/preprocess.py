"""Per-stage timing of `TryOnPreprocessor` on the sample person photos (CPU, offline).

Usage:
    python benchmarks/preprocess.py [--samples ../shared/samples] [--garment solidus_ruby-polo] [--repeats 3]

Prints one row per photo with the median milliseconds of each stage over `--repeats` runs (after one warm-up run
that also builds the mediapipe graphs).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
import warnings
from pathlib import Path

import numpy as np

from mvvton.preprocessing.io import load_image
from mvvton.preprocessing.preprocessor import TryOnPreprocessor

STAGES = ("load", "pose", "mask", "view", "garment_mask", "warp", "total")
DEFAULT_SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "samples"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=Path, default=DEFAULT_SAMPLES, help="folder with person/ and garment/")
    parser.add_argument("--garment", default="solidus_ruby-polo", help="garment stem: <stem>_front.jpg / _back.jpg")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--height", type=int, default=512)
    parser.add_argument("--width", type=int, default=384)
    args = parser.parse_args()

    persons = sorted((args.samples / "person").glob("*.jpg"))
    if not persons:
        raise SystemExit(f"no person photos in {args.samples / 'person'}")
    front = args.samples / "garment" / f"{args.garment}_front.jpg"
    back = args.samples / "garment" / f"{args.garment}_back.jpg"
    preprocessor = TryOnPreprocessor()
    warnings.simplefilter("ignore", UserWarning)

    build_start = time.perf_counter()
    preprocessor(persons[0], front, back, height=args.height, width=args.width)  # warm-up, builds mediapipe graphs
    warmup_ms = (time.perf_counter() - build_start) * 1000

    rows = []
    for path in persons:
        runs = [preprocessor(path, front, back, height=args.height, width=args.width) for _ in range(args.repeats)]
        size = load_image(path).size
        medians = {stage: statistics.median(run.timings.get(stage, 0.0) for run in runs) for stage in STAGES}
        rows.append((path.name, f"{size[0]}x{size[1]}", runs[0].view.value, runs[0].routed_garment.value, medians))

    print(f"# TryOnPreprocessor per-stage ms (median of {args.repeats}), canvas {args.height}x{args.width}, "
          f"garment {args.garment}, python {platform.python_version()}, {os.cpu_count()} CPUs, "
          f"warm-up incl. graph build {warmup_ms:.0f} ms")  # fmt: skip
    header = ["photo", "size", "view", "routed", *STAGES]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for name, size, view, routed, medians in rows:
        cells = [name, size, view, routed, *(f"{medians[s]:.1f}" for s in STAGES)]
        print("| " + " | ".join(cells) + " |")
    totals = np.array([[r[4][s] for s in STAGES] for r in rows])
    print("| **median** | | | | " + " | ".join(f"{v:.1f}" for v in np.median(totals, axis=0)) + " |")


if __name__ == "__main__":
    main()
