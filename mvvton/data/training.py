"""Data plumbing of the trainers: `build_dataset` (by config name), an in-memory cache, and a resumable sampler."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset, Sampler

from mvvton.data.manifest import ManifestDataset
from mvvton.data.mvg import MVGDataset
from mvvton.data.synthetic import SyntheticTryOnDataset
from mvvton.errors import InvalidConfigError


class EpochSeededSampler(Sampler[int]):
    """A permutation of `range(n)` drawn from `(seed, epoch)` only: resuming at any epoch reproduces the order."""

    def __init__(self, num_samples: int, seed: int, shuffle: bool = True):
        self.num_samples = num_samples
        self.seed = seed
        self.shuffle = shuffle
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        if not self.shuffle:
            return iter(range(self.num_samples))
        generator = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        return iter(torch.randperm(self.num_samples, generator=generator).tolist())

    def __len__(self) -> int:
        return self.num_samples


class CachedDataset(Dataset):
    """Keeps every sample after its first load (small datasets read from JPEG at every epoch otherwise)."""

    def __init__(self, dataset: Dataset):
        self.dataset = dataset
        self.cache: dict[int, Any] = {}

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> Any:
        if index not in self.cache:
            self.cache[index] = self.dataset[index]
        return self.cache[index]


def build_dataset(
    dataset: str,
    root: str | None,
    split: str,
    height: int,
    width: int,
    *,
    paired: bool = True,
    num_synthetic_samples: int = 8,
    max_samples: int | None = None,
    cache_in_memory: bool = False,
    seed: int = 0,
) -> Dataset:
    """A dataset returning the `mvvton.data.sample` schema.

    `synthetic`: `SyntheticTryOnDataset` (no files). `mvg` / `synthmvg`: `mvvton.data.mvg.MVGDataset(root, split)`
    (SynthMVG, written by `mvvton data synth`, uses MVG's layout). `manifest`: `mvvton.data.manifest.ManifestDataset`
    of the JSONL file `root` (or `<root>/<split>.jsonl`).
    """
    if dataset == "synthetic":
        data: Dataset = SyntheticTryOnDataset(num_synthetic_samples, height, width, seed=seed + (split != "train"))
    elif dataset in ("mvg", "synthmvg"):
        if root is None:
            raise InvalidConfigError(f"data.dataset={dataset!r} needs data.root (the dataset folder)")
        data = MVGDataset(root, split=split, paired=paired, height=height, width=width, seed=seed)
    elif dataset == "manifest":
        if root is None:
            raise InvalidConfigError(
                "data.dataset='manifest' needs data.root (a .jsonl file or a folder with <split>.jsonl)"
            )
        manifest = Path(root)
        if manifest.is_dir():
            manifest = manifest / f"{split}.jsonl"
        data = ManifestDataset(manifest, height=height, width=width, seed=seed)
    else:
        raise InvalidConfigError(f"unknown dataset {dataset!r}; expected synthetic, mvg, synthmvg or manifest")
    if max_samples is not None and max_samples < len(data):
        data = torch.utils.data.Subset(data, list(range(max_samples)))
    return CachedDataset(data) if cache_in_memory else data
