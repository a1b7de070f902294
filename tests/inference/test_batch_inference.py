"""Batch inference: fixed batches, sharding, resume with byte-identical outputs, stale temporary files, kill -9."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mvvton.batch_inference import (
    BatchInferenceConfig,
    clean_stale_temporaries,
    output_path,
    plan_batches,
    run_batch_inference,
    sample_seed,
    shard_batches,
)
from mvvton.errors import InvalidArgumentError
from mvvton.pipelines import MVVTONPipeline
from tests.testing_utils import get_dummy_components

REPO = Path(__file__).resolve().parents[2]
SIZE = 64


def _outputs(folder: Path) -> dict[str, bytes]:
    return {path.relative_to(folder).as_posix(): path.read_bytes() for path in sorted(folder.rglob("*.png"))}


@pytest.fixture(scope="module")
def dataset(synth_root):
    from mvvton.data import MVGDataset

    return MVGDataset(synth_root, split="test", paired=True, height=SIZE, width=SIZE)


@pytest.fixture(scope="module")
def pipe():
    pipe = MVVTONPipeline(**get_dummy_components())
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.fixture(scope="module")
def reference_run(pipe, dataset, tmp_path_factory) -> Path:
    """The uninterrupted 1-process run (batch size 2, 2 steps) every other run must equal byte for byte."""
    out = tmp_path_factory.mktemp("reference")
    config = BatchInferenceConfig(output_dir=str(out), batch_size=2, num_inference_steps=2)
    counts = run_batch_inference(pipe, dataset, config, show_progress=False)
    assert counts == {"done": len(dataset), "skipped": 0, "batches": len(plan_batches(len(dataset), 2))}
    return out


def test_plan_and_shards_cover_the_dataset_disjointly():
    batches = plan_batches(7, 3)
    assert batches == [[0, 1, 2], [3, 4, 5], [6]]
    for world in (1, 2, 3, 5):
        shards = [shard_batches(batches, rank, world) for rank in range(world)]
        flat = sorted(index for shard in shards for batch in shard for index in batch)
        assert flat == list(range(7))
        assert sorted(batch for shard in shards for batch in shard) == batches  # same batch composition
    with pytest.raises(InvalidArgumentError):
        shard_batches(batches, 2, 2)
    with pytest.raises(InvalidArgumentError):
        BatchInferenceConfig(output_dir="x", batch_size=0)


def test_resume_renders_whole_batches_and_saves_only_missing(pipe, dataset, reference_run, tmp_path):
    out = tmp_path / "out"
    config = BatchInferenceConfig(output_dir=str(out), batch_size=2, num_inference_steps=2)
    run_batch_inference(pipe, dataset, config, show_progress=False)
    expected = _outputs(reference_run)
    assert _outputs(out) == expected and len(expected) == len(dataset)
    # a kill between the two saves of a batch: the second image of the first batch is missing, and a kill inside
    # a save left a hidden temporary file
    victim = out / sorted(expected)[1]
    victim.unlink()
    stale = victim.with_name(f".{victim.name}.k2j3h4.tmp")
    stale.write_bytes(b"")
    counts = run_batch_inference(pipe, dataset, config, show_progress=False)
    assert counts == {"done": 1, "skipped": len(dataset) - 1, "batches": 1}
    assert not stale.exists() and not list(out.rglob("*.tmp"))
    assert _outputs(out) == expected  # byte for byte, though rendered in a second run
    run = json.loads((out / "run.json").read_text())
    assert run["status"] == "complete" and run["totals"]["done"] == 1 and run["stale_temporaries_removed"] == 1
    assert run["num_samples"] == len(dataset) and len(run["weights_sha256_16"]) == 16


def test_clean_stale_temporaries_keeps_real_files(tmp_path):
    (tmp_path / "a").mkdir()
    keep = [tmp_path / "a" / "1.png", tmp_path / "run.json", tmp_path / ".hidden"]
    drop = [tmp_path / "a" / ".1.png.x8f.tmp", tmp_path / ".run.json.y.tmp"]
    for path in keep + drop:
        path.write_bytes(b"x")
    assert sorted(clean_stale_temporaries(tmp_path)) == sorted(drop)
    assert all(path.exists() for path in keep)


def test_output_path_stays_inside(tmp_path):
    assert output_path(tmp_path, "test/00001_1", "png") == tmp_path / "test" / "00001_1.png"
    with pytest.raises(ValueError):
        output_path(tmp_path, "../escape", "png")


def test_sample_seed_depends_on_id_only():
    assert sample_seed(1, "a") == sample_seed(1, "a") != sample_seed(1, "b") != sample_seed(2, "a")


def _script_args(model: Path, synth_root: Path, out: Path, steps: int) -> list[str]:
    return [
        str(REPO / "inference" / "infer_batch.py"), "--pretrained_model_name_or_path", str(model),
        "--dataset", "mvg", "--data_root", str(synth_root), "--split", "test", "--height", str(SIZE),
        "--width", str(SIZE), "--output_dir", str(out), "--batch_size", "2", "--num_inference_steps", str(steps),
        "--num_threads", "1", "--no_progress",
    ]  # fmt: skip


def _environment() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}


@pytest.fixture(scope="module")
def saved_model(pipe, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("model")
    pipe.save_pretrained(folder)
    return folder


@pytest.mark.slow
def test_two_process_accelerate_run_equals_one_process(saved_model, synth_root, reference_run, tmp_path):
    out = tmp_path / "sharded"
    command = [
        sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
        "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", "0",
        *_script_args(saved_model, synth_root, out, steps=2),
    ]  # fmt: skip
    result = subprocess.run(command, env=_environment(), capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert _outputs(out) == _outputs(reference_run)
    run = json.loads((out / "run.json").read_text())
    assert run["num_processes"] == 2 and run["status"] == "complete"
    assert [shard["process_index"] for shard in run["processes"]] == [0, 1]
    assert all(shard["done"] > 0 for shard in run["processes"])  # both processes rendered a shard
    assert run["totals"]["done"] == len(_outputs(reference_run))


@pytest.mark.slow
def test_sigkill_mid_run_then_resume_is_byte_identical(saved_model, synth_root, dataset, pipe, tmp_path):
    steps = 6
    reference = tmp_path / "reference"
    run_batch_inference(
        pipe, dataset, BatchInferenceConfig(output_dir=str(reference), batch_size=2, num_inference_steps=steps),
        show_progress=False,
    )  # fmt: skip
    out = tmp_path / "killed"
    process = subprocess.Popen(
        [sys.executable, *_script_args(saved_model, synth_root, out, steps)], env=_environment()
    )
    deadline = time.monotonic() + 300
    while not list(out.rglob("*.png")) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    written = _outputs(out)
    assert 0 < len(written) < len(dataset), "the kill must land after the first batch and before the last"
    (out / "test").mkdir(exist_ok=True)
    (out / "test" / ".interrupted.png.abc123.tmp").write_bytes(b"")  # what a kill inside a save leaves
    result = subprocess.run(
        [sys.executable, *_script_args(saved_model, synth_root, out, steps)], env=_environment(), capture_output=True,
        text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"skipped {len(written)}" in result.stdout
    assert not list(out.rglob("*.tmp"))
    assert _outputs(out) == _outputs(reference)
