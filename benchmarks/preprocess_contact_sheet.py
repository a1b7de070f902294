"""Contact sheet of every preprocessing intermediate for the BSD-licensed sample garments (Solidus, Spree).

The people are `skimage.data.astronaut()` (NASA, public domain) and generated SynthMVG people (back and side views,
with their exact keypoints given to the preprocessor), so no non-commercial photo ends up in the repo.

Usage:
    python benchmarks/preprocess_contact_sheet.py [--samples ../shared/samples] [--out docs/preprocessing_contact_sheet.jpg]
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw

from mvvton.preprocessing.io import save_image_atomic
from mvvton.preprocessing.preprocessor import TryOnPreprocessor

GARMENTS = ("solidus_ruby-polo", "solidus_tshirt-blue", "spree_jersey")
COLUMNS = (
    "person_pose_overlay", "person_mask", "inpaint_mask", "agnostic", "garment_front_skeleton",
    "garment_front_mask", "garment_back_skeleton", "garment_back_mask", "warped_garment", "warped_composite",
)  # fmt: skip
DEFAULT_SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "samples"


def synthetic_people() -> list[tuple[str, np.ndarray, np.ndarray]]:
    """A generated SynthMVG person in a back and a side view at 512x384, with exact OpenPose-18 keypoints."""
    import tempfile

    from mvvton.data import MVGDataset
    from mvvton.data.synth import SynthConfig, generate_synthmvg

    people = {}
    with tempfile.TemporaryDirectory() as tmp:
        generate_synthmvg(tmp, SynthConfig(identities=1, height=512, width=384, seed=5, test_fraction=0.0), workers=1)
        dataset = MVGDataset(tmp, split="train", height=512, width=384)
        for index in range(len(dataset)):
            sample = dataset[index]
            if sample["view"] in ("back", "side"):
                image = ((sample["person"].permute(1, 2, 0).numpy() + 1) * 127.5).round().astype(np.uint8)
                people[sample["view"]] = (sample["view"], image, sample["person_keypoints"].numpy())
    return [people["back"], people["side"]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=Path, default=DEFAULT_SAMPLES)
    parser.add_argument("--out", type=Path, default=Path("docs/preprocessing_contact_sheet.jpg"))
    parser.add_argument("--tile-height", type=int, default=256)
    args = parser.parse_args()
    from skimage.data import astronaut  # dev dependency, only for the public-domain person photo

    person = astronaut()
    preprocessor = TryOnPreprocessor()
    th = args.tile_height
    tw = th * 3 // 4
    label_h = 18
    rows = []
    jobs = [(garment, "astronaut (public domain)", person, None) for garment in GARMENTS]
    jobs += [(garment, f"SynthMVG {view} view (generated)", image, keypoints)
             for garment, (view, image, keypoints) in zip(GARMENTS[:2], synthetic_people())]  # fmt: skip
    for garment, who, person_image, keypoints in jobs:
        front = args.samples / "garment" / f"{garment}_front.jpg"
        back = args.samples / "garment" / f"{garment}_back.jpg"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            result = preprocessor(person_image, front, back, person_keypoints=keypoints)
        images = result.to_debug_images()
        tiles = []
        for name in COLUMNS:
            tile = np.asarray(images[name].convert("RGB").resize((tw, th), Image.BILINEAR))
            canvas = Image.new("RGB", (tw, th + label_h), "white")
            canvas.paste(Image.fromarray(tile), (0, label_h))
            ImageDraw.Draw(canvas).text((3, 3), name.replace("_", " ")[:30], fill=(0, 0, 0))
            tiles.append(np.asarray(canvas))
        row = np.concatenate(tiles, axis=1)
        title = Image.new("RGB", (row.shape[1], label_h), (230, 230, 230))
        ImageDraw.Draw(title).text(
            (3, 3), f"{who} + {garment}: view={result.view.value}, routed={result.routed_garment.value}", fill=(0, 0, 0)
        )
        rows.append(np.concatenate([np.asarray(title), row], axis=0))
    sheet = np.concatenate(rows, axis=0)
    sheet = cv2.copyMakeBorder(sheet, 4, 4, 4, 4, cv2.BORDER_CONSTANT, value=(255, 255, 255))
    save_image_atomic(sheet, args.out, quality=88)
    print(f"wrote {args.out} ({sheet.shape[1]}x{sheet.shape[0]})")


if __name__ == "__main__":
    main()
