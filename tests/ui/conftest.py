from __future__ import annotations

from pathlib import Path

import pytest

from mvvton.ui.examples import EXAMPLES_DIR

# a tiny random pipeline works at this size (its UNet needs latent sides divisible by 8 / 8 = 1 after 3 downsamples)
TINY_HEIGHT, TINY_WIDTH = 128, 64


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A tiny random mvvton pipeline saved like a converted model (`--model DIR`), working size 128x64."""
    from mvvton.pipelines import MVVTONPipeline
    from tests.testing_utils import get_dummy_components

    folder = tmp_path_factory.mktemp("tiny_model")
    components = {**get_dummy_components(), "default_height": TINY_HEIGHT, "default_width": TINY_WIDTH}
    MVVTONPipeline(**components).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_pipe(tiny_model_dir):
    from mvvton.ui import load_pipeline

    return load_pipeline(tiny_model_dir)


@pytest.fixture
def example_photos() -> dict[str, Path]:
    """A shipped example: a SynthMVG person (front view) and another garment's front and back product shots."""
    return {
        "person": EXAMPLES_DIR / "synth_person_2_front.jpg",
        "garment_front": EXAMPLES_DIR / "synth_garment_0_front.jpg",
        "garment_back": EXAMPLES_DIR / "synth_garment_0_back.jpg",
    }


@pytest.fixture
def corrupt_photo(tmp_path) -> Path:
    """A file that claims to be a JPEG (right magic bytes, right suffix) but is not decodable."""
    path = tmp_path / "corrupt_person.jpg"
    path.write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg" + bytes(range(256)))
    return path
