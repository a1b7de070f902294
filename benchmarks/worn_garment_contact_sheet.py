"""Contact sheet and table of `garment_from_worn_photo` on every shared person photo, or on publishable people.

For each photo: the photo with the extracted garment outlined (green = usable, orange = returned with a warning,
red = refused with a typed error), and the product-photo layout that the try-on would use. A markdown table of the
measured torso coverage, share below the hip line, skin share, fragmentation, method and outcome goes to stdout.

Default: the person photos of ../shared (VITON-HD, DressCode, DeepFashion and retailer photos, non-commercial research
licences; see the MANIFEST.tsv files there). The sheet is written to a gitignored path and must not be committed.

`--public`: people we may publish instead: SynthMVG people (the project's own generator, front and back views) and
`skimage.data.astronaut()` (NASA, public domain). Everything runs through the default mediapipe path, as for a photo.

Usage:
    python benchmarks/worn_garment_contact_sheet.py [--shared ../shared] [--out docs/images/worn_garment_contact_sheet.png]
    python benchmarks/worn_garment_contact_sheet.py --public [--out docs/images/worn_garment_public_sheet.jpg]
"""

from __future__ import annotations

import argparse
import math
import time
import warnings
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw

from mvvton.errors import MVVTONError
from mvvton.preprocessing.io import save_image_atomic
from mvvton.preprocessing.worn_garment import WornGarmentWarning, WornPhotoAnalyzer, garment_from_worn_photo

DEFAULT_SHARED = Path(__file__).resolve().parents[2] / "shared"
TILE_HEIGHT = 200
COLOURS = {"ok": (40, 170, 60), "warning": (235, 140, 20), "error": (210, 40, 40)}


def person_photos(shared: Path) -> list[Path]:
    """The person photos of ../shared/samples and ../shared/samples-hard, in manifest order."""
    paths = []
    for folder in ("samples", "samples-hard"):
        manifest = shared / folder / "MANIFEST.tsv"
        for line in manifest.read_text().splitlines()[1:]:
            name = line.split("\t")[0]
            if name.startswith("person/"):
                paths.append(shared / folder / name)
    return paths


def _fit(image: np.ndarray, height: int) -> np.ndarray:
    scale = height / image.shape[0]
    return cv2.resize(image, (max(1, round(image.shape[1] * scale)), height), interpolation=cv2.INTER_AREA)


def public_people(identities: int = 6, seed: int = 5) -> list[tuple[str, np.ndarray]]:
    """`(name, (H, W, 3) uint8 photo)`: SynthMVG people at 512x384 in the front and back views, and the astronaut."""
    from skimage.data import astronaut  # dev dependency, only for the public-domain photo

    from mvvton.data import synth

    height, width = 512, 384
    people = []
    for index in range(identities):
        body, garment, _ = synth.identity_specs(seed, index)
        skeleton = synth.build_skeleton(body, height, width)
        background = synth.background_image(body, height, width)
        texture = synth.build_texture(garment, height)
        for view, name in ((synth.FRONT_VIEW_INDEX, "front"), (synth.BACK_VIEW_INDEX, "back")):
            yaw = math.radians(synth.SYNTH_YAWS_DEG[view])
            image, _ = synth.render_person(skeleton, body, garment, texture, yaw, background)
            people.append((f"synthmvg_{seed}_{index}_{name}", image))
    people.append(("astronaut (public domain)", astronaut()))
    return people


def _summary(warning: str, limit: int = 160) -> str:
    """A warning without its advice sentence, shortened for a table cell."""
    text = warning.split(" Pass a product photo")[0].split(": check")[0].replace("|", "/")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def tile(name: str, photo: np.ndarray, analyzer: WornPhotoAnalyzer) -> tuple[np.ndarray, dict[str, str]]:
    """One contact-sheet tile (photo + outline | garment layout + caption) and its table row."""
    start = time.perf_counter()
    row = {"photo": name}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", WornGarmentWarning)
            result = garment_from_worn_photo(photo, analyzer=analyzer, strict=False)
        outcome = "warning" if result.warnings else "ok"
        mask, layout = result.photo_mask, result.image
        q = result.quality
        row.update(
            coverage=f"{q.torso_coverage:.2f}", below_hip=f"{q.below_hip_fraction:.3f}", skin=f"{q.skin_fraction:.3f}",
            hands=f"{q.occluded_fraction:.3f}",
            fragmentation=f"{q.fragmentation:.3f}", method=result.method, view=result.view.value,
            person_view=result.person_view.value,
            outcome=outcome, note=" / ".join(_summary(w) for w in result.warnings),
        )  # fmt: skip
        caption = (f"{outcome} {result.view.value} cov {q.torso_coverage:.2f} hip {q.below_hip_fraction:.2f} "
                   f"skin {q.skin_fraction:.2f}")  # fmt: skip
    except MVVTONError as error:
        outcome, mask, layout = "error", np.zeros(photo.shape[:2], np.float32), None
        row.update(coverage="", below_hip="", skin="", hands="", fragmentation="", method="", view="", outcome="error",
                   note=f"{type(error).__name__}: {str(error)[:90]}")  # fmt: skip
        caption = f"error: {type(error).__name__}"
    row["seconds"] = f"{time.perf_counter() - start:.2f}"
    shown = photo.copy()
    contours, _ = cv2.findContours((mask > 0.5).astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    cv2.drawContours(shown, contours, -1, COLOURS[outcome], max(1, photo.shape[0] // 200))
    left = _fit(shown, TILE_HEIGHT)
    right = _fit(layout, TILE_HEIGHT) if layout is not None else np.full((TILE_HEIGHT, 110, 3), 235, np.uint8)
    body = np.concatenate([left, np.full((TILE_HEIGHT, 4, 3), 255, np.uint8), right], axis=1)
    banner = Image.new("RGB", (max(body.shape[1], 190), 16), COLOURS[outcome])
    ImageDraw.Draw(banner).text((3, 2), caption, fill=(255, 255, 255))
    canvas = np.full((TILE_HEIGHT + 16, banner.width, 3), 255, np.uint8)
    canvas[:16] = np.asarray(banner)
    canvas[16:, : body.shape[1]] = body
    return canvas, row


def contact_sheet(tiles: list[np.ndarray], columns: int = 4, gap: int = 6) -> np.ndarray:
    """Tiles in a grid on white."""
    rows = [tiles[i : i + columns] for i in range(0, len(tiles), columns)]
    widths = [sum(t.shape[1] for t in row) + gap * (len(row) - 1) for row in rows]
    height = sum(max(t.shape[0] for t in row) for row in rows) + gap * (len(rows) - 1)
    sheet = np.full((height, max(widths), 3), 255, np.uint8)
    y = 0
    for row in rows:
        x = 0
        for t in row:
            sheet[y : y + t.shape[0], x : x + t.shape[1]] = t
            x += t.shape[1] + gap
        y += max(t.shape[0] for t in row) + gap
    return sheet


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shared", type=Path, default=DEFAULT_SHARED)
    parser.add_argument("--public", action="store_true", help="SynthMVG people and the astronaut (committable)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.public:
        photos = public_people()
        out = args.out or Path("docs/images/worn_garment_public_sheet.jpg")
    else:
        photos = [(path.name, np.asarray(Image.open(path).convert("RGB"))) for path in person_photos(args.shared)]
        out = args.out or Path("docs/images/worn_garment_contact_sheet.png")
    tiles, rows = [], []
    with WornPhotoAnalyzer() as analyzer:
        for name, photo in photos:
            image, row = tile(name, photo, analyzer)
            tiles.append(image)
            rows.append(row)
    jpeg = {"quality": 88} if out.suffix.lower() in (".jpg", ".jpeg") else {}
    save_image_atomic(Image.fromarray(contact_sheet(tiles)), out, **jpeg)
    print(f"wrote {out}")
    keys = "photo person_view view method coverage below_hip skin hands fragmentation outcome seconds note".split()
    print("| " + " | ".join(keys) + " |")
    print("|" + "---|" * len(keys))
    for row in rows:
        print("| " + " | ".join(row.get(k, "") for k in keys) + " |")


if __name__ == "__main__":
    main()
