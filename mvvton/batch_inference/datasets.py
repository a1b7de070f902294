"""Datasets batch inference can run on, built from a small JSON-able description (recorded in run.json, so
`mvvton eval` can rebuild the same samples and find their ground truth)."""

from __future__ import annotations

from pathlib import Path

from torch.utils.data import Dataset

from mvvton.errors import InvalidArgumentError

DATASET_KINDS = ("mvg", "vitonhd", "dresscode", "manifest", "photos")


def describe_dataset(
    kind: str, root: str, *, split: str = "test", paired: bool = True, height: int, width: int
) -> dict:
    """The description `build_dataset` reads: kind, absolute root, split, pairing and size."""
    if kind not in DATASET_KINDS:
        raise InvalidArgumentError(f"dataset kind must be one of {DATASET_KINDS}, got {kind!r}")
    return {
        "kind": kind, "root": str(Path(root).resolve()), "split": split, "paired": bool(paired),
        "height": int(height), "width": int(width),
    }  # fmt: skip


def build_dataset(description: dict) -> Dataset:
    """The dataset a description names: MVG / VITON-HD / DressCode folders, a JSONL manifest of prepared inputs, or a
    CSV / JSONL list of raw photo triples (`photos`, preprocessed in the DataLoader workers)."""
    kind = description.get("kind")
    size = dict(height=description["height"], width=description["width"])
    root, split, paired = description["root"], description.get("split", "test"), description.get("paired", True)
    if kind == "mvg":
        from mvvton.data import MVGDataset

        return MVGDataset(root, split=split, paired=paired, **size)
    if kind == "vitonhd":
        from mvvton.data.vitonhd import VitonHDDataset

        return VitonHDDataset(root, split=split, paired=paired, **size)
    if kind == "dresscode":
        from mvvton.data.dresscode import DressCodeDataset

        return DressCodeDataset(root, split=split, paired=paired, **size)
    if kind == "manifest":
        from mvvton.data.manifest import ManifestDataset

        return ManifestDataset(root, **size)
    if kind == "photos":
        from mvvton.batch_inference.photos import PhotoTripletDataset

        return PhotoTripletDataset(root, **size)
    raise InvalidArgumentError(f"dataset kind must be one of {DATASET_KINDS}, got {kind!r}")
