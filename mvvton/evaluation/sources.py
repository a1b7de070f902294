"""What `mvvton eval` compares: generated images with their ground truth, view labels and garment regions.

Three sources, each a `Dataset` of dicts `{"sample_id", "generated" (3, H, W) [0, 1], "reference" (3, H', W')
[0, 1], "mask" (1, H', W') {0, 1} (zeros when unknown; see "has_mask"), "view"}`:

- `RunFolderSource`: a batch-inference output folder; its run.json names the dataset, split and pairing, so the
  ground-truth person image, the inpainting mask (the garment region) and the view label come from that dataset;
- `FolderPairSource`: two folders matched by relative path without suffix (no views, no masks);
- `ManifestSource`: a JSONL with `generated`, `reference` and optional `mask`, `view`, `id` per line.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import PIL.Image
import torch
from torch.utils.data import Dataset

from mvvton.errors import DatasetError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
UNKNOWN_VIEW = "unknown"


def load_unit_image(path: str | Path) -> torch.Tensor:
    """RGB image file -> `(3, H, W)` float in [0, 1] (uint8 / 255)."""
    try:
        with PIL.Image.open(path) as image:
            array = np.asarray(image.convert("RGB"))
    except (OSError, ValueError) as error:
        raise DatasetError(f"cannot read image {path}: {error}") from error
    return torch.from_numpy(array.copy()).permute(2, 0, 1).float() / 255.0


def load_unit_mask(path: str | Path) -> torch.Tensor:
    """Mask file -> `(1, H, W)` float in {0, 1} (> 127 = inside)."""
    try:
        with PIL.Image.open(path) as image:
            array = np.asarray(image.convert("L")) > 127
    except (OSError, ValueError) as error:
        raise DatasetError(f"cannot read mask {path}: {error}") from error
    return torch.from_numpy(array.astype(np.float32))[None]


def _index_images(folder: Path) -> dict[str, Path]:
    return {
        path.relative_to(folder).with_suffix("").as_posix(): path
        for path in sorted(folder.rglob("*"))
        if path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")
    }


class RunFolderSource(Dataset):
    """Generated images of a batch-inference run + ground truth from the dataset its run.json describes.

    Args:
        run_dir: the `--output_dir` of `inference/infer_batch.py`.
        data_root: override the dataset root recorded in run.json (the data moved).
    """

    def __init__(self, run_dir: str | Path, data_root: str | None = None) -> None:
        from mvvton.batch_inference.datasets import build_dataset
        from mvvton.batch_inference.runner import output_path

        self.run_dir = Path(run_dir)
        run_file = self.run_dir / "run.json"
        if not run_file.is_file():
            raise DatasetError(f"{run_file} not found: give the output folder of inference/infer_batch.py")
        self.run = json.loads(run_file.read_text())
        description = dict(self.run.get("config", {}).get("dataset") or {})
        if not description:
            raise DatasetError(
                f"{run_file} does not describe its dataset (made by an older version): compare folders with "
                "`mvvton eval --generated DIR --reference DIR` instead"
            )
        if data_root is not None:
            description["root"] = str(data_root)
        self.description = description
        self.paired = bool(description.get("paired", True))
        self.dataset = build_dataset(description)
        suffix = self.run["config"].get("output_format", "png")
        self._output = lambda sample_id: output_path(self.run_dir, sample_id, suffix)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict:
        sample = self.dataset[index]
        generated = self._output(sample["sample_id"])
        if not generated.is_file():
            raise DatasetError(
                f"{generated} is missing: the run is incomplete; rerun the same infer_batch command to finish it"
            )
        return {
            "sample_id": sample["sample_id"],
            "generated": load_unit_image(generated),
            "reference": ((sample["person"].clamp(-1, 1) + 1) / 2).float(),  # [-1, 1] -> [0, 1]
            "mask": (sample["inpaint_mask"] > 0.5).float(),
            "has_mask": True,
            "view": sample["view"],
        }


class FolderPairSource(Dataset):
    """Images of `generated_dir` and `reference_dir` matched by relative path (suffix ignored)."""

    def __init__(self, generated_dir: str | Path, reference_dir: str | Path) -> None:
        generated, reference = _index_images(Path(generated_dir)), _index_images(Path(reference_dir))
        if not generated:
            raise DatasetError(f"no images in {generated_dir}")
        missing = sorted(set(generated) - set(reference))
        if missing:
            raise DatasetError(
                f"{len(missing)} generated images have no reference in {reference_dir} (e.g. {missing[:3]})"
            )
        self.pairs = [(key, generated[key], reference[key]) for key in sorted(generated)]

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> dict:
        key, generated, reference = self.pairs[index]
        image = load_unit_image(reference)
        return {
            "sample_id": key, "generated": load_unit_image(generated), "reference": image,
            "mask": torch.zeros(1, *image.shape[-2:]), "has_mask": False, "view": UNKNOWN_VIEW,
        }  # fmt: skip


class ManifestSource(Dataset):
    """JSONL lines `{"generated": path, "reference": path, "mask": path?, "view": "front|side|back"?, "id": str?}`;
    relative paths are resolved against the manifest's folder."""

    def __init__(self, manifest: str | Path) -> None:
        manifest = Path(manifest)
        if not manifest.is_file():
            raise DatasetError(f"eval manifest {manifest} not found")
        self.rows = []
        for number, line in enumerate(manifest.read_text().splitlines(), start=1):
            if not line.strip():
                continue
            row = json.loads(line)
            if "generated" not in row or "reference" not in row:
                raise DatasetError(f"{manifest}:{number}: each line needs `generated` and `reference` paths")
            resolve = lambda value: value if Path(value).is_absolute() else str(manifest.parent / value)  # noqa: E731
            self.rows.append({
                "sample_id": str(row.get("id", Path(row["generated"]).stem)),
                "generated": resolve(row["generated"]), "reference": resolve(row["reference"]),
                "mask": resolve(row["mask"]) if row.get("mask") else None, "view": row.get("view", UNKNOWN_VIEW),
            })  # fmt: skip

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> dict:
        row = self.rows[index]
        reference = load_unit_image(row["reference"])
        has_mask = row["mask"] is not None
        mask = load_unit_mask(row["mask"]) if has_mask else torch.zeros(1, *reference.shape[-2:])
        return {
            "sample_id": row["sample_id"], "generated": load_unit_image(row["generated"]), "reference": reference,
            "mask": mask, "has_mask": has_mask, "view": row["view"],
        }  # fmt: skip
