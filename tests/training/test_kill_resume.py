"""SIGKILL (by PID) inside save windows, then resume with no manual step: the result is bit-identical to an
uninterrupted run. The trainer is paused deterministically inside the window by the `MVVTON_PAUSE_AT` hook
(`mvvton.utils.atomic.pause_point`); process control comes from benchmarks/kill_drill.py."""

import json
import sys

import pytest

from mvvton.utils.atomic import incomplete_reason
from tests.testing_utils import load_kill_drill

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def drill():
    return load_kill_drill()


def test_train_mvvton_killed_in_checkpoint_and_final_saves_resumes_bit_identical(tmp_path, drill):
    steps = ["--set", "schedule.max_train_steps=4"]  # checkpoints at 2 and 4, total limit 1
    reference, run = tmp_path / "uninterrupted", tmp_path / "killed"
    drill.run_to_end(drill.train_command(reference, *steps), tmp_path / "reference.log")

    # 1. killed while checkpoint-4 is half written: components saved, optimizer.bin / RNG states not yet
    drill.start_and_kill_at_pause(
        drill.train_command(run, *steps), "checkpoint.components:4", tmp_path, tmp_path / "1.log"
    )
    partial = run / ".checkpoint-4.partial"
    assert (partial / "unet" / "diffusion_pytorch_model.safetensors").is_file()
    assert not (partial / "optimizer.bin").exists() and not (run / "checkpoint-4").exists()
    assert incomplete_reason(run / "checkpoint-2") is None  # not rotated away before the new one is complete
    assert drill.logged_steps(run) == [1, 2, 3, 4]

    # 2. resumed (no manual step) and killed again inside the final save
    command = drill.train_command(run, *steps, "--resume", "latest")
    drill.start_and_kill_at_pause(command, "final.staged", tmp_path, tmp_path / "2.log")
    text = (tmp_path / "2.log").read_text()
    assert "skipping incomplete checkpoint .checkpoint-4.partial: interrupted save" in text
    assert "resuming from" in text and "checkpoint-2" in text
    assert "loss_log.jsonl: dropped 2 record(s) after step 2" in text
    assert (run / ".final.partial" / "model_index.json").is_file() and not (run / "final").exists()
    assert [path.name for path in run.glob("checkpoint-*")] == ["checkpoint-4"]

    # 3. resumed from the complete checkpoint-4: only the final save is redone, its leftovers removed first
    drill.run_to_end(command, tmp_path / "3.log")
    assert drill.tree_digest(run / "final") == drill.tree_digest(reference / "final")
    assert (run / "loss_log.jsonl").read_bytes() == (reference / "loss_log.jsonl").read_bytes()
    assert drill.leftovers(run) == []
    losses = [json.loads(line)["loss"] for line in (run / "loss_log.jsonl").read_text().splitlines()]
    assert len(set(losses)) == 4  # the steps genuinely differ, so the comparison is not trivially satisfied


def vae_command(repo_root, output_dir, *extra):
    overrides = ["data.height=32", "data.width=32", "data.num_synthetic_samples=4", "train_batch_size=2",
                 "max_train_steps=4", "checkpointing_steps=2", "checkpoints_total_limit=1", "log_every=1"]  # fmt: skip
    command = [sys.executable, str(repo_root / "training" / "train_vae.py"), "--output_dir", str(output_dir),
               "--set", f"vae_config={repo_root / 'configs/model/tiny/vae.json'}"]  # fmt: skip
    for override in overrides:
        command += ["--set", override]
    return command + list(extra)


def test_train_vae_killed_in_checkpoint_and_final_saves_resumes_bit_identical(tmp_path, repo_root, drill):
    reference, run = tmp_path / "uninterrupted", tmp_path / "killed"
    drill.run_to_end(vae_command(repo_root, reference), tmp_path / "reference.log")
    assert (reference / "config.json").is_file() and (reference / "checkpoint-4").is_dir()

    drill.start_and_kill_at_pause(vae_command(repo_root, run), "checkpoint.staged:4", tmp_path, tmp_path / "1.log")
    assert (run / ".checkpoint-4.partial" / "model.safetensors").is_file()
    assert incomplete_reason(run / "checkpoint-2") is None

    command = vae_command(repo_root, run, "--resume", "latest")
    drill.start_and_kill_at_pause(command, "config.json.pending", tmp_path, tmp_path / "2.log")
    assert "skipping incomplete checkpoint .checkpoint-4.partial" in (tmp_path / "2.log").read_text()
    # the new weights are in place but config.json (what loaders open) is not: never a half-old, half-new VAE
    assert (run / "diffusion_pytorch_model.safetensors").is_file() and not (run / "config.json").exists()

    drill.run_to_end(command, tmp_path / "3.log")
    for name in ("config.json", "diffusion_pytorch_model.safetensors", "loss_log.jsonl"):
        assert (run / name).read_bytes() == (reference / name).read_bytes(), name
    assert drill.leftovers(run) == []
