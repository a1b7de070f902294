"""Batch inference over a dataset (MVG / VITON-HD / DressCode / manifest / photo list): sharded, resumable, reproducible.

- **Fixed batches.** The dataset is cut into consecutive batches of `batch_size` (`plan_batches`); with N processes,
  process r renders batches r, r + N, r + 2N, ... (`shard_batches`). A batch is always rendered whole, with one
  generator per sample seeded from `(seed, sample_id)`, so every image is computed from exactly the same batch
  whatever the number of processes and whatever was already done: outputs are byte-identical to a 1-process run.
- **Resume.** Outputs are named by `sample_id` and written atomically; a batch whose outputs all exist is skipped, a
  batch with some missing (a kill between two saves) is rendered again whole and only the missing images are saved.
  Temporary files left by a kill inside a save are removed at start (`clean_stale_temporaries`).
- **run.json** records the arguments, the dataset description (for `mvvton eval`), library versions, a hash of the
  model weights and, once every process is done, the per-process counts and timings.

Thread counts change floating-point reduction order: compare runs made with the same number of torch threads per
process (`torch.set_num_threads`).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset

from mvvton.errors import InvalidArgumentError
from mvvton.preprocessing.io import save_image_atomic
from mvvton.utils.atomic import atomic_write_text

OUTPUT_FORMATS = ("png", "jpg", "webp")
TEMPORARY_SUFFIX = (
    ".tmp"  # `save_image_atomic` and `write_json_atomic` write `.<name>.<random>.tmp` next to the target
)
SHARDS_FOLDER = ".run-shards"


@dataclass
class BatchInferenceConfig:
    """Arguments of a batch-inference run (all recorded in run.json).

    Args:
        output_dir: where `<sample_id>.<output_format>` and run.json go.
        seed: base seed; sample i uses `sample_seed(seed, sample_id)`.
        batch_size: samples per pipeline call; part of the result's identity (keep it when resuming or comparing).
        dataset: description of the dataset (name, root, split, paired, height, width) so `mvvton eval` can find the
            ground truth again.
    """

    output_dir: str
    seed: int = 23
    batch_size: int = 2
    num_inference_steps: int = 50
    guidance_scale: float = 1.0
    output_format: str = "png"
    num_workers: int = 0
    dataset: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise InvalidArgumentError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.num_inference_steps < 1:
            raise InvalidArgumentError(f"num_inference_steps must be >= 1, got {self.num_inference_steps}")
        if self.num_workers < 0:
            raise InvalidArgumentError(f"num_workers must be >= 0, got {self.num_workers}")
        if self.output_format not in OUTPUT_FORMATS:
            raise InvalidArgumentError(f"output_format must be one of {OUTPUT_FORMATS}, got {self.output_format!r}")


def sample_seed(seed: int, sample_id: str) -> int:
    """A per-sample seed independent of order and batching."""
    digest = hashlib.sha256(f"{seed}:{sample_id}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & 0x7FFF_FFFF_FFFF_FFFF


def weights_hash(pipe) -> str:
    """SHA-256 over every component's parameters (names, shapes and values), short form."""
    digest = hashlib.sha256()
    for name, component in sorted(pipe.components.items()):
        if isinstance(component, torch.nn.Module):
            for key, tensor in sorted(component.state_dict().items()):
                digest.update(f"{name}.{key}{tuple(tensor.shape)}".encode())
                digest.update(tensor.detach().float().cpu().numpy().tobytes())
    return digest.hexdigest()[:16]


def output_path(output_dir: Path, sample_id: str, suffix: str) -> Path:
    """`output_dir/<sample_id>.<suffix>`; ids may contain sub-folders (`test/00001_1`) but never leave the folder."""
    relative = Path(f"{sample_id}.{suffix}")
    if relative.is_absolute() or ".." in relative.parts:
        raise ValueError(f"sample id {sample_id!r} would write outside {output_dir}")
    return output_dir / relative


def write_json_atomic(path: Path, payload: dict) -> None:
    """Write JSON through a temporary file in the same folder and `os.replace` (readers never see half a file)."""
    atomic_write_text(path, json.dumps(payload, indent=2, default=str))


def clean_stale_temporaries(output_dir: str | os.PathLike) -> list[Path]:
    """Delete the hidden `.<name>.<random>.tmp` files that a kill inside an atomic save leaves behind; returns them.

    Call it only when no other process writes into `output_dir` (the runner does it on the main process before
    the others start).
    """
    removed = []
    for path in sorted(Path(output_dir).rglob(f".*{TEMPORARY_SUFFIX}")):
        if path.is_file():
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def plan_batches(num_samples: int, batch_size: int) -> list[list[int]]:
    """Consecutive dataset indices cut into batches of `batch_size` (the last one may be shorter)."""
    if num_samples < 0 or batch_size < 1:
        raise InvalidArgumentError(f"need num_samples >= 0 and batch_size >= 1, got {num_samples}, {batch_size}")
    return [list(range(start, min(start + batch_size, num_samples))) for start in range(0, num_samples, batch_size)]


def shard_batches(batches: list[list[int]], process_index: int, num_processes: int) -> list[list[int]]:
    """The batches process `process_index` of `num_processes` renders: every `num_processes`-th, from its index."""
    if not 0 <= process_index < num_processes:
        raise InvalidArgumentError(f"process_index must be in [0, {num_processes}), got {process_index}")
    return batches[process_index::num_processes]


def to_unit(image: torch.Tensor) -> torch.Tensor:
    """Images in [-1, 1] -> [0, 1] (clamped)."""
    return (image.clamp(-1, 1) + 1) / 2  # [-1, 1] -> [0, 1]


def render_batch(
    pipe,
    batch: dict,
    indices: list[int],
    seeds: list[int],
    *,
    front_as_back: bool = False,
    view: str | None = None,
    **call_kwargs,
):
    """Run the pipeline on samples `indices` of a collated dataset batch (prepared inputs, no preprocessing).

    Args:
        front_as_back: give the front garment (image, mask, skeleton) as both views (ablation).
        view: force this person view for routing instead of the dataset's (e.g. "front": hard selection off).
        call_kwargs: forwarded to the pipeline (`num_inference_steps`, `output_type`, ...).
    Returns:
        the pipeline output (`images`, and `intermediates` when `return_intermediates=True` is passed).
    """
    pick = torch.tensor(indices)
    back = "front" if front_as_back else "back"
    return pipe(
        list(to_unit(batch["person"][pick])),
        list(to_unit(batch["garment_front"][pick])),
        list(to_unit(batch[f"garment_{back}"][pick])),
        mask_image=list(batch["inpaint_mask"][pick]),
        warped_garment=list(to_unit(batch["inpaint_image"][pick])),
        pose_image=list(to_unit(batch["skeleton_person"][pick])),
        garment_front_pose_image=list(to_unit(batch["skeleton_front"][pick])),
        garment_back_pose_image=list(to_unit(batch[f"skeleton_{back}"][pick])),
        garment_front_mask=list(batch["garment_front_mask"][pick]),
        garment_back_mask=list(batch[f"garment_{back}_mask"][pick]),
        view=[view or batch["view"][i] for i in indices],
        person_keypoints=[batch["person_keypoints"][i].cpu().numpy() for i in indices],
        height=batch["person"].shape[-2],
        width=batch["person"].shape[-1],
        generator=[torch.Generator().manual_seed(seed) for seed in seeds],
        **call_kwargs,
    )


def _versions() -> dict[str, str]:
    import accelerate
    import diffusers

    import mvvton

    return {
        "mvvton": mvvton.__version__, "diffusers": diffusers.__version__, "torch": torch.__version__,
        "accelerate": accelerate.__version__,
    }  # fmt: skip


def _merge_if_complete(output_dir: Path, world: int) -> bool:
    """Merge the per-process summaries into run.json once all `world` exist; True when this call merged."""
    shards_dir = output_dir / SHARDS_FOLDER
    try:
        shards = [json.loads((shards_dir / f"process-{r}.json").read_text()) for r in range(world)]
        header = json.loads((output_dir / "run.json").read_text())
    except FileNotFoundError:  # another process is still rendering, or has merged already
        return False
    totals = {key: sum(shard[key] for shard in shards) for key in ("done", "skipped", "batches")}
    write_json_atomic(output_dir / "run.json", {**header, "status": "complete", "totals": totals, "processes": shards})
    shutil.rmtree(shards_dir, ignore_errors=True)
    return True


def run_batch_inference(
    pipe, dataset: Dataset, config: BatchInferenceConfig, *, state=None, show_progress: bool = True
) -> dict[str, int]:
    """Render this process's shard of `dataset` (the `mvvton.data` sample schema) into `config.output_dir`.

    Args:
        state: an `accelerate.PartialState` (default: the current one; a plain `python` run is 1 process).
        show_progress: one tqdm bar per process (`position` = process index).
    Returns:
        this process's counts: `done` (rendered and saved now), `skipped` (already present), `batches` (rendered).
    """
    from accelerate import PartialState
    from tqdm.auto import tqdm

    state = state if state is not None else PartialState()
    rank, world = state.process_index, state.num_processes
    output_dir = Path(config.output_dir)
    shards_dir = output_dir / SHARDS_FOLDER
    if state.is_main_process:
        output_dir.mkdir(parents=True, exist_ok=True)
        removed = clean_stale_temporaries(output_dir)
        shutil.rmtree(shards_dir, ignore_errors=True)
        header = {
            "config": asdict(config), "versions": _versions(), "weights_sha256_16": weights_hash(pipe),
            "num_samples": len(dataset), "num_processes": world, "stale_temporaries_removed": len(removed),
        }  # fmt: skip
        write_json_atomic(output_dir / "run.json", {**header, "status": "running"})
    state.wait_for_everyone()

    started = time.perf_counter()
    batches = shard_batches(plan_batches(len(dataset), config.batch_size), rank, world)
    known_id = getattr(dataset, "sample_id", None)  # lets complete batches be skipped without loading them
    counts = {"done": 0, "skipped": 0, "batches": 0}
    todo_batches = []
    for indices in batches:
        if callable(known_id) and all(
            output_path(output_dir, known_id(i), config.output_format).exists() for i in indices
        ):
            counts["skipped"] += len(indices)
        else:
            todo_batches.append(indices)
    progress = tqdm(
        total=sum(len(indices) for indices in batches), initial=counts["skipped"], position=rank,
        desc=f"process {rank}/{world}", disable=not show_progress, leave=True,
    )  # fmt: skip
    # spawned workers: mediapipe (and torch's thread pools) abort in a child forked after the parent used them
    context = "spawn" if config.num_workers > 0 else None
    loader = DataLoader(
        dataset, batch_sampler=todo_batches, num_workers=config.num_workers, multiprocessing_context=context
    )
    for batch in loader:
        ids = list(batch["sample_id"])
        targets = [output_path(output_dir, sample_id, config.output_format) for sample_id in ids]
        missing = [i for i, target in enumerate(targets) if not target.exists()]
        counts["skipped"] += len(ids) - len(missing)
        if missing:
            # the whole batch, always: an image's bytes must not depend on which neighbours were already saved
            images = render_batch(
                pipe, batch, list(range(len(ids))), [sample_seed(config.seed, sample_id) for sample_id in ids],
                num_inference_steps=config.num_inference_steps, guidance_scale=config.guidance_scale,
                output_type="pil",
            ).images  # fmt: skip
            for index in missing:
                save_image_atomic(images[index], targets[index])
            counts["done"] += len(missing)
            counts["batches"] += 1
        progress.update(len(ids))
    progress.close()

    seconds = time.perf_counter() - started
    write_json_atomic(shards_dir / f"process-{rank}.json", {"process_index": rank, **counts, "seconds": seconds})
    # no barrier here: shards can finish hours apart (e.g. one was already done), longer than a collective's
    # timeout. Each process writes its summary first, then merges if every summary is there, so the last to finish
    # always merges (two finishing together both write the same merged file).
    _merge_if_complete(output_dir, world)
    return counts
