"""`mvvton demo` writes the grid (here with a tiny random pipeline passed as --model)."""

from __future__ import annotations

import numpy as np
import PIL.Image

from mvvton.cli import main as cli_main
from mvvton.pipelines import MVVTONPipeline
from tests.testing_utils import get_dummy_components


def test_demo_grid_with_given_model(tmp_path, capsys):
    pipe = MVVTONPipeline(**{**get_dummy_components(), "default_height": 128, "default_width": 64})
    pipe.save_pretrained(tmp_path / "model")
    out = tmp_path / "grid.png"
    assert cli_main(["demo", "--model", str(tmp_path / "model"), "--output", str(out), "--identities", "1",
                     "--steps", "2"]) == 0  # fmt: skip
    grid = np.asarray(PIL.Image.open(out))
    assert grid.shape[0] > 3 * 128 and grid.shape[1] >= 7 * 64  # 3 views x 7 columns
    printed = capsys.readouterr().out
    assert "metrics: garment-region PSNR" in printed and "detail ratio" in printed


def test_demo_without_model_is_a_clear_error(tmp_path, capsys):
    assert cli_main(["demo", "--model", str(tmp_path), "--output", str(tmp_path / "g.png")]) == 2
    assert "not an mvvton pipeline folder" in capsys.readouterr().err


def test_demo_runs_the_embedded_default_model(tmp_path, capsys):
    """The README's main job: the embedded SynthMVG model, offline, on held-out synthetic people."""
    from mvvton.cli.demo import DEFAULT_MODEL_DIR

    assert (DEFAULT_MODEL_DIR / "model_index.json").is_file()
    sizes = [p.stat().st_size for p in DEFAULT_MODEL_DIR.rglob("*.safetensors")]
    assert 0 < sum(sizes) <= 30 * 1024 * 1024  # the embedded weights stay under 30 MB
    out = tmp_path / "demo.png"
    assert cli_main(["demo", "--output", str(out), "--identities", "1", "--steps", "10"]) == 0
    printed = capsys.readouterr().out
    assert out.is_file() and "metrics: garment-region PSNR" in printed
    grid = np.asarray(PIL.Image.open(out))
    assert grid.shape[1] >= 7 * 96 and grid.shape[0] >= 3 * 128
