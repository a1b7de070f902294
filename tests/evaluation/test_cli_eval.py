"""`mvvton eval --run`: a batch-inference folder evaluated against the dataset its run.json names."""

from __future__ import annotations

import json

import pytest

from mvvton.batch_inference import BatchInferenceConfig, run_batch_inference
from mvvton.batch_inference.datasets import build_dataset, describe_dataset
from mvvton.cli import main
from mvvton.pipelines import MVVTONPipeline
from tests.testing_utils import get_dummy_components


@pytest.fixture(scope="module")
def run_dir(synth_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    pipe = MVVTONPipeline(**get_dummy_components())
    pipe.set_progress_bar_config(disable=True)
    description = describe_dataset("mvg", str(synth_root), split="test", paired=True, height=64, width=64)
    config = BatchInferenceConfig(output_dir=str(out), batch_size=3, num_inference_steps=2, dataset=description)
    run_batch_inference(pipe, build_dataset(description), config, show_progress=False)
    return out


def test_eval_run_folder_per_view(run_dir, capsys):
    assert main(["eval", "--run", str(run_dir)]) == 0
    report = json.loads((run_dir / "eval.json").read_text())
    groups = report["groups"]
    assert report["paired"] and report["source"]["dataset"]["kind"] == "mvg"
    assert sum(groups[view]["n"] for view in ("front", "side", "back") if view in groups) == groups["all"]["n"] == 3
    assert 0 < groups["all"]["ssim"] < 1 and 0 < groups["all"]["ssim_garment"] < 1 and groups["all"]["psnr"] > 5
    assert any("--fid-weights" in note for note in report["notes"])
    table = (run_dir / "eval.md").read_text()
    assert "| all | 3 |" in table and "SSIM garment" in table and table in capsys.readouterr().out


def test_eval_rejects_missing_outputs_and_weights(run_dir, tmp_path, capsys):
    missing = next(run_dir.rglob("*.png"))
    saved = missing.read_bytes()
    missing.unlink()
    try:
        assert main(["eval", "--run", str(run_dir), "--out", str(tmp_path / "e")]) == 2
        assert "rerun the same infer_batch command" in capsys.readouterr().err
    finally:
        missing.write_bytes(saved)
    assert main(["eval", "--run", str(run_dir), "--fid-weights", str(tmp_path / "none.pth")]) == 2
    assert "pt_inception-2015-12-05-6726825d.pth" in capsys.readouterr().err
