"""Example inputs shipped with the web page: SynthMVG renders made by `mvvton.data.synth` and BSD-3 product photos.

Every file in `EXAMPLES_DIR` is reproducible: `write_examples(out_dir, product_photos_dir=...)` renders the synthetic
people and garments from `EXAMPLES_SEED` (identities never used for training, as in `mvvton demo`) and shrinks the
Solidus product photos (BSD-3-Clause, notice in `EXAMPLES_DIR / "LICENSE-solidus.md"`). Non-commercial sample photos
(VITON-HD, DressCode, DeepFashion) are never shipped.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

EXAMPLES_DIR = Path(__file__).resolve().parents[1] / "assets" / "ui_examples"
EXAMPLES_SEED = 20261121  # the held-out identities of `mvvton demo` (the training data uses another seed)
SYNTH_HEIGHT, SYNTH_WIDTH = 128, 96  # the embedded default model's working size
SYNTH_IDENTITIES = 6
EXAMPLE_STEPS = 30
EXAMPLE_SEED = 23
PRODUCT_PHOTO_SIDE = 320  # shipped product photos are shrunk to this many pixels on their long side
JPEG_QUALITY = 90

# identity index -> which person views to ship (SynthMVG view index: 1 = 45 deg "front", 2 = 90 deg side, 3 = 135 deg
# back), and which identities' garments to ship (front and back product shots).
SYNTH_PERSONS: dict[int, tuple[int, ...]] = {1: (1,), 2: (1,), 3: (2, 3), 4: (3,)}
SYNTH_GARMENTS: tuple[int, ...] = (0, 1, 2)
VIEW_NAMES = {1: "front", 2: "side", 3: "back"}
# shipped name -> file name in the product-photo folder (the Solidus sample images, BSD-3-Clause)
PRODUCT_PHOTOS: dict[str, str] = {
    "solidus_ruby_polo_front.jpg": "solidus_ruby-polo_front.jpg",
    "solidus_ruby_polo_back.jpg": "solidus_ruby-polo_back.jpg",
    "solidus_tshirt_blue_front.jpg": "solidus_tshirt-blue_front.jpg",
    "solidus_tshirt_blue_back.jpg": "solidus_tshirt-blue_back.jpg",
}


@dataclass(frozen=True)
class Example:
    """One row of the page's examples: file names inside `EXAMPLES_DIR`, the view override and a caption."""

    person: str
    garment_front: str
    garment_back: str | None
    view: str
    caption: str


EXAMPLES: tuple[Example, ...] = (
    Example("synth_person_2_front.jpg", "synth_garment_0_front.jpg", "synth_garment_0_back.jpg", "auto",
            "synthetic person, front view, striped shirt"),
    Example("synth_person_3_side.jpg", "synth_garment_1_front.jpg", "synth_garment_1_back.jpg", "side",
            "synthetic person, side view (set): the arm-order rule picks the photo"),
    Example("synth_person_3_back.jpg", "synth_garment_2_front.jpg", "synth_garment_2_back.jpg", "auto",
            "synthetic person, back view: the back photo is routed"),
    Example("synth_person_4_back.jpg", "synth_garment_1_front.jpg", None, "back",
            "no back photo: the front is reused (warned); view forced to back"),
    Example("synth_person_1_front.jpg", "solidus_ruby_polo_front.jpg", "solidus_ruby_polo_back.jpg", "auto",
            "real product photos (Solidus, BSD-3) on a synthetic person"),
    Example("synth_person_2_front.jpg", "solidus_tshirt_blue_front.jpg", "solidus_tshirt_blue_back.jpg", "auto",
            "real product photos (Solidus, BSD-3) on a synthetic person"),
)  # fmt: skip


def example_rows(examples_dir: Path = EXAMPLES_DIR) -> list[list]:
    """`gr.Examples` rows `[person, garment_front, garment_back, view, steps, seed, guidance]` whose files exist."""
    rows = []
    for example in EXAMPLES:
        names = [example.person, example.garment_front, example.garment_back]
        paths = [None if name is None else examples_dir / name for name in names]
        if all(path is None or path.is_file() for path in paths):
            rows.append([None if path is None else str(path) for path in paths]
                        + [example.view, EXAMPLE_STEPS, EXAMPLE_SEED, 1.0])  # fmt: skip
    return rows


def _save_jpeg(image: np.ndarray | Image.Image, path: Path) -> None:
    from mvvton.preprocessing.io import save_image_atomic

    save_image_atomic(image, path, quality=JPEG_QUALITY)


def write_synth_examples(out_dir: str | Path, seed: int = EXAMPLES_SEED) -> list[Path]:
    """Render the SynthMVG people (`synth_person_<identity>_<view>.jpg`) and garments
    (`synth_garment_<identity>_{front,back}.jpg`) at 128x96; a pure function of `seed`."""
    from mvvton.data.synth import SynthConfig, render_identity

    out_dir = Path(out_dir)
    config = SynthConfig(identities=SYNTH_IDENTITIES, height=SYNTH_HEIGHT, width=SYNTH_WIDTH, seed=seed)
    written = []
    for index in sorted(set(SYNTH_PERSONS) | set(SYNTH_GARMENTS)):
        render = render_identity(config, index, partner=(index + 1) % SYNTH_IDENTITIES)
        for view in SYNTH_PERSONS.get(index, ()):
            path = out_dir / f"synth_person_{index}_{VIEW_NAMES[view]}.jpg"
            _save_jpeg(render.persons[view], path)
            written.append(path)
        if index in SYNTH_GARMENTS:
            for side, product in zip(("front", "back"), render.products):
                path = out_dir / f"synth_garment_{index}_{side}.jpg"
                _save_jpeg(product, path)
                written.append(path)
    return written


def write_product_examples(product_photos_dir: str | Path, out_dir: str | Path) -> list[Path]:
    """Shrink the Solidus product photos (long side `PRODUCT_PHOTO_SIDE`) into `out_dir` under their shipped names."""
    from mvvton.preprocessing.io import load_image

    written = []
    for shipped, source in PRODUCT_PHOTOS.items():
        image = load_image(Path(product_photos_dir) / source, name=source)
        scale = PRODUCT_PHOTO_SIDE / max(image.size)
        if scale < 1:
            image = image.resize((round(image.width * scale), round(image.height * scale)), Image.Resampling.LANCZOS)
        path = Path(out_dir) / shipped
        _save_jpeg(image, path)
        written.append(path)
    return written


if __name__ == "__main__":  # regenerate the shipped assets: python -m mvvton.ui.examples [PRODUCT_PHOTOS_DIR]
    import sys

    files = write_synth_examples(EXAMPLES_DIR)
    if len(sys.argv) > 1:
        files += write_product_examples(sys.argv[1], EXAMPLES_DIR)
    print("\n".join(str(path) for path in files))  # noqa: T201
