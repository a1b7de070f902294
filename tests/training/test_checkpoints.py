"""mvvton.training.checkpoints: only sealed checkpoints count; incomplete ones are skipped with a reason."""

import json
import logging

import pytest

from mvvton.errors import IncompleteCheckpointError
from mvvton.training.checkpoints import (
    checkpoint_step,
    list_checkpoints,
    resolve_resume_checkpoint,
    resumed_step,
    rotate_checkpoints,
    scan_checkpoints,
    trim_step_log,
)
from mvvton.utils.atomic import write_completion_marker


def make_checkpoint(output_dir, name, sealed=True, step=None):
    folder = output_dir / name
    (folder / "unet").mkdir(parents=True)
    (folder / "unet" / "diffusion_pytorch_model.safetensors").write_bytes(b"weights")
    (folder / "optimizer.bin").write_bytes(b"adam state")
    if sealed:
        write_completion_marker(folder, step=step if step is not None else checkpoint_step(folder))
    return folder


@pytest.fixture()
def run_dir(tmp_path):
    """checkpoint-2 and -4 complete; checkpoint-6 lost its optimizer.bin; -8 has no marker; -10 is an interrupted save."""
    make_checkpoint(tmp_path, "checkpoint-2")
    make_checkpoint(tmp_path, "checkpoint-4")
    (make_checkpoint(tmp_path, "checkpoint-6") / "optimizer.bin").unlink()
    make_checkpoint(tmp_path, "checkpoint-8", sealed=False)
    make_checkpoint(tmp_path, ".checkpoint-10.partial", sealed=False)
    (tmp_path / "checkpoint-final").mkdir()  # not a checkpoint-N name: ignored
    return tmp_path


def test_scan_sorts_complete_and_incomplete(run_dir):
    scan = scan_checkpoints(run_dir)
    assert [path.name for path in scan.complete] == ["checkpoint-2", "checkpoint-4"]
    reasons = {path.name: reason for path, reason in scan.incomplete}
    assert list(reasons) == ["checkpoint-6", "checkpoint-8", ".checkpoint-10.partial"]
    assert reasons["checkpoint-6"] == "optimizer.bin is missing"
    assert "no complete.json" in reasons["checkpoint-8"]
    assert "interrupted save" in reasons[".checkpoint-10.partial"]
    assert list_checkpoints(run_dir) == scan.complete


def test_resume_latest_takes_the_newest_complete_and_says_what_it_skipped(run_dir, caplog):
    with caplog.at_level(logging.WARNING, logger="mvvton.training.checkpoints"):
        path = resolve_resume_checkpoint(run_dir, "latest")
    assert path == run_dir / "checkpoint-4" and resumed_step(path) == 4
    skipped = [record.getMessage() for record in caplog.records]
    assert skipped[0] == "skipping incomplete checkpoint checkpoint-6: optimizer.bin is missing"
    assert any(".checkpoint-10.partial" in message for message in skipped) and len(skipped) == 3


def test_resume_latest_without_complete_checkpoints_starts_fresh(tmp_path):
    make_checkpoint(tmp_path, ".checkpoint-2.partial", sealed=False)
    assert resolve_resume_checkpoint(tmp_path, "latest") is None
    assert resolve_resume_checkpoint(tmp_path / "missing", "latest") is None
    assert resolve_resume_checkpoint(tmp_path, None) is None


def test_explicit_resume_paths(run_dir, caplog):
    assert resolve_resume_checkpoint(run_dir, "checkpoint-2") == run_dir / "checkpoint-2"  # relative to output_dir
    with pytest.raises(IncompleteCheckpointError, match="optimizer.bin is missing"):
        resolve_resume_checkpoint(run_dir, str(run_dir / "checkpoint-6"))
    with pytest.raises(FileNotFoundError, match="checkpoint-12 not found"):
        resolve_resume_checkpoint(run_dir, "checkpoint-12")
    # a checkpoint saved before markers existed is accepted when named explicitly, with a warning
    with caplog.at_level(logging.WARNING, logger="mvvton.training.checkpoints"):
        assert resolve_resume_checkpoint(run_dir, "checkpoint-8") == run_dir / "checkpoint-8"
    assert "older version" in caplog.text and resumed_step(run_dir / "checkpoint-8") == 8


def test_rotation_keeps_the_newest_complete_and_leaves_incomplete_alone(run_dir):
    make_checkpoint(run_dir, "checkpoint-12")
    deleted = rotate_checkpoints(run_dir, 2)
    assert [path.name for path in deleted] == ["checkpoint-2"]
    assert [path.name for path in list_checkpoints(run_dir)] == ["checkpoint-4", "checkpoint-12"]
    assert (run_dir / "checkpoint-6").is_dir() and (run_dir / "checkpoint-8").is_dir()
    assert rotate_checkpoints(run_dir, None) == []


def test_trim_step_log_cuts_back_to_the_checkpoint_and_drops_a_torn_line(tmp_path):
    log = tmp_path / "loss_log.jsonl"
    lines = [json.dumps({"step": step, "loss": 1.0 / step}) for step in (1, 2, 3, 4, 3, 4)]
    log.write_text("\n".join(lines) + '\n{"step": 5, "lo')  # steps 3-4 replayed once already, then a torn write
    assert trim_step_log(log, 2) == 5
    assert [json.loads(line)["step"] for line in log.read_text().splitlines()] == [1, 2]
    assert log.read_text().endswith("\n")
    assert trim_step_log(log, 2) == 0
    assert trim_step_log(tmp_path / "missing.jsonl", 0) == 0
    assert trim_step_log(log, 0) == 2 and log.read_text() == ""
