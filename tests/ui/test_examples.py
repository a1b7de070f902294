"""The page's shipped examples: small, permissively licensed, and reproducible from the library's own renderer."""

from __future__ import annotations

import numpy as np
import PIL.Image

from mvvton.ui.examples import EXAMPLES, EXAMPLES_DIR, PRODUCT_PHOTOS, example_rows, write_synth_examples

MAX_TOTAL_BYTES = 1024 * 1024


def test_every_example_file_is_shipped_and_the_folder_is_small():
    rows = example_rows()
    assert len(rows) == len(EXAMPLES)
    for row in rows:
        person, front, back, view, steps, seed, guidance = row
        assert view in ("auto", "front", "side", "back") and steps > 0 and guidance == 1.0
        for path in (person, front, back):
            if path is not None:
                assert PIL.Image.open(path).verify() is None
    assert sum(path.stat().st_size for path in EXAMPLES_DIR.iterdir()) < MAX_TOTAL_BYTES


def test_only_synthetic_renders_and_bsd_product_photos_are_shipped():
    shipped = {path.name for path in EXAMPLES_DIR.glob("*.jpg")}
    products = {name for name in shipped if not name.startswith("synth_")}
    assert products == set(PRODUCT_PHOTOS)  # the Solidus photos, nothing else from outside
    notice = (EXAMPLES_DIR / "LICENSE-solidus.md").read_text()
    assert "Redistribution and use in source and binary forms" in notice
    for name in PRODUCT_PHOTOS:
        assert name.startswith("solidus_")


def test_synthetic_examples_are_reproduced_by_the_renderer(tmp_path):
    written = write_synth_examples(tmp_path)
    assert {path.name for path in written} == {path.name for path in EXAMPLES_DIR.glob("synth_*.jpg")}
    for path in written:
        fresh = np.asarray(PIL.Image.open(path), dtype=np.int16)
        shipped = np.asarray(PIL.Image.open(EXAMPLES_DIR / path.name), dtype=np.int16)
        assert fresh.shape == shipped.shape == (128, 96, 3)
        assert np.abs(fresh - shipped).mean() < 1.0, path.name  # same render; JPEG decoders may differ by a bit


def test_example_rows_skip_missing_files(tmp_path):
    assert example_rows(tmp_path) == []
