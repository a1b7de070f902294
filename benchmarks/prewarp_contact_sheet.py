"""Side-by-side contact sheet: the old pre-warp against the body-following one, on real person photos.

Usage:
    python benchmarks/prewarp_contact_sheet.py [--shared ../shared] [--out docs/images/prewarp_old_vs_new.jpg]

Each row: the person photo, the old composite (thin-arm agnostic mask + one thin-plate spline for the whole garment)
and the new one (sleeve-aware agnostic mask + torso TPS, sleeves bent along the arms, gaps filled), both at the
512x384 working size. Persons are the CC-BY-NC(-SA) VITON-HD / DressCode / retailer demo photos of
`samples/person` (the DeepFashion photos of `samples-hard` stay out of the repository); garments are the
BSD-licensed Solidus / Spree product photos.
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from mvvton.preprocessing.io import save_image_atomic
from mvvton.preprocessing.masks import agnostic_image, upper_body_agnostic_mask
from mvvton.preprocessing.person import with_estimated_hips
from mvvton.preprocessing.preprocessor import TryOnPreprocessor
from mvvton.preprocessing.warp import warp_garment, warped_composite

DEFAULT_SHARED = Path(__file__).resolve().parents[2] / "shared"
PAIRS = (
    ("samples/person/idmvton_00055_00_front.jpg", "samples-hard/garment/solidus_long-white"),
    ("samples/person/catvton_mothr22044226e8_front.jpg", "samples/garment/spree_jersey"),
    ("samples/person/idmvton_00034_00_front.jpg", "samples/garment/solidus_tshirt-blue"),
    ("samples/person/ootd_051918_0_front.jpg", "samples-hard/garment/solidus_long-white"),
)


def old_composite(result) -> np.ndarray:
    """The previous pre-warp: thin arm lines in the agnostic mask, one TPS for the whole garment."""
    keypoints = with_estimated_hips(result.person_keypoints)
    mask = upper_body_agnostic_mask(keypoints, result.person_mask)
    routed = result.routed_garment.value
    garment, garment_mask = getattr(result, f"garment_{routed}"), getattr(result, f"garment_{routed}_mask")
    garment_kp = getattr(result, f"garment_{routed}_keypoints")
    warped, warped_mask = warp_garment(garment, garment_mask, garment_kp, keypoints, mask.shape, clip_mask=mask)
    return warped_composite(agnostic_image(result.person, mask), warped, warped_mask)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared", type=Path, default=DEFAULT_SHARED)
    parser.add_argument("--out", type=Path, default=Path("docs/images/prewarp_old_vs_new.jpg"))
    args = parser.parse_args()
    preprocessor = TryOnPreprocessor()
    rows = []
    for person, garment in PAIRS:
        front, back = args.shared / f"{garment}_front.jpg", args.shared / f"{garment}_back.jpg"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            result = preprocessor(args.shared / person, front, back)
        tiles = [result.person, old_composite(result), result.warped_composite]
        labels = [Path(person).name[:28], "old pre-warp", f"new pre-warp ({result.sleeve_length} sleeves)"]
        row = []
        for tile, label in zip(tiles, labels):
            canvas = Image.new("RGB", (tile.shape[1], tile.shape[0] + 16), "white")
            canvas.paste(Image.fromarray(tile), (0, 16))
            ImageDraw.Draw(canvas).text((3, 2), label, fill=(0, 0, 0))
            row.append(np.asarray(canvas))
        rows.append(np.concatenate(row, axis=1))
    sheet = np.concatenate([np.concatenate(rows[i : i + 2], axis=1) for i in range(0, len(rows), 2)], axis=0)
    image = Image.fromarray(sheet)
    image = image.resize((image.width * 2 // 3, image.height * 2 // 3), Image.LANCZOS)
    save_image_atomic(image, args.out)
    print(f"wrote {args.out} ({image.width}x{image.height})")


if __name__ == "__main__":
    main()
