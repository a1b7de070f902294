"""Crash-safe training checkpoints (shared by `training/train_mvvton.py` and `training/train_vae.py`).

`save_checkpoint` has every process write `accelerator.save_state` into `.checkpoint-N.partial`; the main process then
seals it with a completion marker, renames it to `checkpoint-N` and only then rotates old checkpoints away. Listing and
`--resume latest` consider sealed checkpoints only and log the incomplete ones they skip. `trim_step_log` cuts an
append-only JSON-lines log back to the resumed step, so a resumed run's log equals the uninterrupted run's.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

from accelerate import Accelerator

from mvvton.errors import IncompleteCheckpointError
from mvvton.utils.atomic import (
    COMPLETE_MARKER,
    PARTIAL_SUFFIX,
    atomic_write_text,
    incomplete_reason,
    partial_path,
    pause_point,
    publish_folder,
    read_completion_marker,
    remove_leftovers,
    remove_tree,
    write_completion_marker,
)

logger = logging.getLogger(__name__)

CHECKPOINT_PREFIX = "checkpoint-"
LOSS_LOG = "loss_log.jsonl"


def checkpoint_step(path: str | Path) -> int | None:
    """N of a `checkpoint-N` (or `.checkpoint-N.partial`) folder name, else None."""
    name = Path(path).name
    if name.startswith(".") and name.endswith(PARTIAL_SUFFIX):
        name = name[1 : -len(PARTIAL_SUFFIX)]
    digits = name[len(CHECKPOINT_PREFIX) :]
    return int(digits) if name.startswith(CHECKPOINT_PREFIX) and digits.isdigit() else None


@dataclass
class CheckpointScan:
    """The checkpoint folders of an output directory, sorted by step."""

    complete: list[Path] = field(default_factory=list)
    incomplete: list[tuple[Path, str]] = field(default_factory=list)  # (folder, why it is not usable)


def scan_checkpoints(output_dir: str | Path) -> CheckpointScan:
    """Sort `checkpoint-N` folders into complete (sealed, every file present with its size) and incomplete ones;
    interrupted saves (`.checkpoint-N.partial`) count as incomplete."""
    output_dir = Path(output_dir)
    scan = CheckpointScan()
    if not output_dir.is_dir():
        return scan
    for path in output_dir.iterdir():
        step = checkpoint_step(path)
        if step is None or not path.is_dir():
            continue
        if path.name.startswith("."):
            scan.incomplete.append((path, "interrupted save (temporary folder)"))
            continue
        reason = incomplete_reason(path)
        if reason is None:
            scan.complete.append(path)
        else:
            scan.incomplete.append((path, reason))
    scan.complete.sort(key=checkpoint_step)
    scan.incomplete.sort(key=lambda item: checkpoint_step(item[0]))
    return scan


def list_checkpoints(output_dir: str | Path) -> list[Path]:
    """Complete `checkpoint-N` folders sorted by N."""
    return scan_checkpoints(output_dir).complete


def resolve_resume_checkpoint(output_dir: str | Path, resume: str | None) -> Path | None:
    """The folder to resume from: `None` (no resume / nothing to resume), the newest complete checkpoint for
    `"latest"` (incomplete ones are skipped with a warning each), or the given folder, which must be complete.

    A `checkpoint-N` path relative to neither the working directory nor `output_dir` raises
    `IncompleteCheckpointError`, as does an explicit folder whose completion marker does not match its files. An
    explicit folder without any marker (saved before markers existed) is used with a warning.
    """
    if not resume:
        return None
    output_dir = Path(output_dir)
    if resume == "latest":
        scan = scan_checkpoints(output_dir)
        for path, reason in scan.incomplete:
            logger.warning(f"skipping incomplete checkpoint {path.name}: {reason}")
        if not scan.complete:
            logger.info(f"no complete checkpoint in {output_dir}: starting a new run")
            return None
        return scan.complete[-1]
    path = Path(resume)
    if not path.is_dir() and (output_dir / resume).is_dir():
        path = output_dir / resume
    if not path.is_dir():
        raise IncompleteCheckpointError(f"checkpoint {resume} not found; use --resume latest or a checkpoint-N folder")
    reason = incomplete_reason(path)
    if reason is not None:
        if (path / COMPLETE_MARKER).exists() or checkpoint_step(path) is None:
            raise IncompleteCheckpointError(
                f"{path} is not a complete checkpoint ({reason}); resume from one of {list_checkpoints(path.parent)} "
                "or use --resume latest"
            )
        logger.warning(f"{path} has no {COMPLETE_MARKER} (saved by an older version?): resuming from it anyway")
    return path


def resumed_step(checkpoint: str | Path) -> int:
    """The optimizer step a checkpoint was saved at (its marker's `step`, else the N of `checkpoint-N`)."""
    checkpoint = Path(checkpoint)
    if (checkpoint / COMPLETE_MARKER).is_file():
        return int(read_completion_marker(checkpoint)["step"])
    step = checkpoint_step(checkpoint)
    if step is None:
        raise IncompleteCheckpointError(f"{checkpoint}: no {COMPLETE_MARKER} and not named checkpoint-N")
    return step


def resume_training_state(accelerator: Accelerator, output_dir: str | Path, resume: str | None) -> int:
    """Resolve `resume` (`resolve_resume_checkpoint`), `accelerator.load_state` it and cut the loss log back to its
    step (main process). Call on every process after `accelerator.prepare` and `register_for_checkpointing`.

    Returns the optimizer step to continue from (0 for a new run).
    """
    output_dir = Path(output_dir)
    step = 0
    path = resolve_resume_checkpoint(output_dir, resume)
    if path is not None:
        logger.info(f"resuming from {path}")
        accelerator.load_state(str(path))
        step = resumed_step(path)
    elif resume is None and list_checkpoints(output_dir):
        logger.warning(f"{output_dir} holds checkpoints but no --resume was given: starting again from step 0")
    if accelerator.is_main_process:
        trim_step_log(output_dir / LOSS_LOG, step)
    return step


def rotate_checkpoints(output_dir: str | Path, total_limit: int | None) -> list[Path]:
    """Delete the oldest complete checkpoints beyond the newest `total_limit` (call after a save is complete);
    incomplete folders are left alone. Returns the deleted folders."""
    if total_limit is None:
        return []
    checkpoints = list_checkpoints(output_dir)
    doomed = checkpoints[: max(len(checkpoints) - total_limit, 0)]
    for path in doomed:
        logger.info(f"removing old checkpoint {path}")
        remove_tree(path)
    return doomed


def save_checkpoint(
    accelerator: Accelerator, output_dir: str | Path, step: int, total_limit: int | None = None
) -> Path:
    """`accelerator.save_state` into `output_dir/.checkpoint-N.partial` on every process, then (main process) seal it,
    rename it to `checkpoint-N` and rotate. Call on every process; returns the checkpoint folder."""
    output_dir = Path(output_dir)
    target = output_dir / f"{CHECKPOINT_PREFIX}{step}"
    staging = partial_path(target)
    if accelerator.is_main_process:
        remove_leftovers(output_dir, f"{CHECKPOINT_PREFIX}*")
    accelerator.wait_for_everyone()
    accelerator.save_state(str(staging))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        pause_point("checkpoint.staged", step)
        write_completion_marker(staging, step=step)
        publish_folder(staging, target)
        pause_point("checkpoint.published", step)
        rotate_checkpoints(output_dir, total_limit)
    accelerator.wait_for_everyone()
    return target


def trim_step_log(path: str | Path, step: int) -> int:
    """Cut a JSON-lines log (one `{"step": ...}` record per line) back to the records of steps <= `step`, dropping a
    torn last line too. Rewrites the file atomically; returns the number of dropped lines."""
    path = Path(path)
    remove_leftovers(path.parent, path.name)  # the temporary file of a trim that was itself interrupted
    if not path.is_file():
        return 0
    kept, dropped = [], 0
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            record = None
        if isinstance(record, dict) and isinstance(record.get("step"), int) and record["step"] <= step:
            kept.append(line + "\n")
        else:
            dropped += 1
    if dropped:
        atomic_write_text(path, "".join(kept))
        logger.info(f"{path.name}: dropped {dropped} record(s) after step {step} (replayed by this run)")
    return dropped
