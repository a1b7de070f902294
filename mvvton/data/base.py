"""Shared base class of the try-on datasets."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from mvvton.constants import DEFAULT_HEIGHT, DEFAULT_WIDTH
from mvvton.data.sample import RawSample
from mvvton.data.transforms import PairedTransform


class TryOnDataset(Dataset):
    """Base class: subclasses list their samples in `self.records` and implement :meth:`load_raw`.

    Args:
        height, width: output size of every image tensor.
        transform: a :class:`PairedTransform` (default: plain resize to `(height, width)`).
        seed: seeds the per-sample random draws of the transform (`(seed, index)`); None = fresh entropy.
    """

    def __init__(
        self,
        height: int = DEFAULT_HEIGHT,
        width: int = DEFAULT_WIDTH,
        transform: PairedTransform | None = None,
        seed: int | None = None,
    ) -> None:
        self.height = height
        self.width = width
        self.transform = transform if transform is not None else PairedTransform(height, width)
        if (self.transform.height, self.transform.width) != (height, width):
            raise ValueError("transform size must equal the dataset's (height, width)")
        self.seed = seed
        self.records: Sequence[object] = []

    def __len__(self) -> int:
        return len(self.records)

    # Roles of `sample_files` that share the person image's geometry (checked against its size).
    PERSON_FRAME_ROLES: frozenset[str] = frozenset(
        {"person", "inpaint_image", "inpaint_mask", "agnostic", "skeleton_person", "parse", "warped_garment",
         "warped_mask"}
    )  # fmt: skip
    # Groups of garment-frame roles that must share one size (garment skeletons may come from another photo).
    GARMENT_GROUPS: tuple[tuple[str, ...], ...] = (
        ("garment_front", "garment_front_mask"),
        ("garment_back", "garment_back_mask"),
    )

    def sample_files(self, index: int) -> dict[str, Path]:  # pragma: no cover - abstract
        """Files sample `index` reads, by role (image roles, plus 'keypoints' for JSON); required files are listed
        even when missing, optional ones only when present."""
        raise NotImplementedError

    def load_raw(self, index: int) -> RawSample:  # pragma: no cover - abstract
        """Read sample `index` from disk at file resolution."""
        raise NotImplementedError

    def __getitem__(self, index: int) -> dict[str, torch.Tensor | str]:
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(index)
        raw = self.load_raw(index)
        random = self.transform.crop_scale is not None or self.transform.flip_prob > 0
        rng = None
        if random:
            rng = np.random.default_rng(None if self.seed is None else [self.seed, index])
        return self.transform(raw, rng).to_dict()
