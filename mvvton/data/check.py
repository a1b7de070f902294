"""`mvvton data check`: find missing, unreadable and size-mismatched files of a dataset.

Every file a sample would read (the dataset's `sample_files`) is opened and fully decoded once; person-frame files
must have the person photo's size, and each garment image its mask's and skeleton's size.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import cv2

from mvvton.data.base import TryOnDataset
from mvvton.errors import DatasetError

CHECK_FORMATS: tuple[str, ...] = ("mvg", "vitonhd", "dresscode", "manifest")
CATEGORIES: tuple[str, ...] = ("missing", "unreadable", "size_mismatch", "malformed")
MANIFEST_DEFAULT_NAME = "manifest.jsonl"


@dataclass
class CheckReport:
    """Problems found per category (`CATEGORIES`), each a list of human-readable lines (a path first)."""

    root: Path
    format: str
    samples: int = 0
    files: int = 0
    problems: dict[str, list[str]] = field(default_factory=lambda: {c: [] for c in CATEGORIES})

    @property
    def ok(self) -> bool:
        return self.samples > 0 and not any(self.problems.values())

    def counts(self) -> dict[str, int]:
        return {category: len(lines) for category, lines in self.problems.items()}

    def format_text(self, max_listed: int | None = 20) -> str:
        """Multi-line summary: counts per category, then the listed problems (at most `max_listed` each)."""
        status = "OK" if self.ok else "BROKEN"
        lines = [f"{self.format} dataset {self.root}: {self.samples} samples, {self.files} files checked: {status}"]
        if self.samples == 0:
            lines.append("  no samples found")
        for category, entries in self.problems.items():
            lines.append(f"  {category}: {len(entries)}")
            shown = entries if max_listed is None else entries[:max_listed]
            lines.extend(f"    {entry}" for entry in shown)
            if len(shown) < len(entries):
                lines.append(f"    ... {len(entries) - len(shown)} more")
        return "\n".join(lines)


class _FileChecker:
    """Decodes each path once; remembers its size (h, w) or the problem."""

    def __init__(self, report: CheckReport) -> None:
        self.report = report
        self.sizes: dict[Path, tuple[int, int] | None] = {}

    def size(self, path: Path) -> tuple[int, int] | None:
        if path in self.sizes:
            return self.sizes[path]
        self.report.files += 1
        size = None
        if not path.is_file():
            self.report.problems["missing"].append(str(path))
        elif path.suffix.lower() == ".json":
            try:
                json.loads(path.read_text())
                size = (0, 0)
            except (OSError, ValueError) as error:
                self.report.problems["unreadable"].append(f"{path}: {error}")
        else:
            image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
            if image is None:
                self.report.problems["unreadable"].append(f"{path}: cannot decode")
            else:
                size = image.shape[:2]
        self.sizes[path] = size
        return size


def check_datasets(datasets: Iterable[TryOnDataset], report: CheckReport) -> CheckReport:
    """Check every sample file of `datasets`, accumulating into `report`."""
    checker = _FileChecker(report)
    mismatches: set[tuple[Path, Path]] = set()

    def compare(path: Path, reference: Path, what: str) -> None:
        size, expected = checker.sizes.get(path), checker.sizes.get(reference)
        if size is None or expected is None or size == expected or (path, reference) in mismatches:
            return
        mismatches.add((path, reference))
        report.problems["size_mismatch"].append(
            f"{path}: {size[1]}x{size[0]} but {what} {reference.name} is {expected[1]}x{expected[0]}"
        )

    for dataset in datasets:
        for index in range(len(dataset)):
            report.samples += 1
            try:
                files = dataset.sample_files(index)
            except DatasetError as error:
                report.problems["malformed"].append(str(error))
                continue
            for path in files.values():
                checker.size(path)
            person = files.get("person")
            if person is not None:
                for role in dataset.PERSON_FRAME_ROLES & files.keys():
                    if role != "person":
                        compare(files[role], person, "person photo")
            for group in dataset.GARMENT_GROUPS:
                present = [files[role] for role in group if role in files]
                for path in present[1:]:
                    compare(path, present[0], "garment image")
    return report


def _mvg_datasets(root: Path, problems: list[str]) -> list[TryOnDataset]:
    from mvvton.data.mvg import MVG_UNPAIRED_FILE, MVG_WARP_UNPAIRED_DIR, MVGDataset

    datasets: list[TryOnDataset] = []
    for split in ("train", "test"):
        if not (root / split).is_dir():
            continue
        datasets.append(MVGDataset(root, split, paired=True, problems=problems))
        has_unpaired = (root / split / MVG_WARP_UNPAIRED_DIR).is_dir()
        if has_unpaired and ((root / MVG_UNPAIRED_FILE).is_file() or (root / split / MVG_UNPAIRED_FILE).is_file()):
            try:
                datasets.append(MVGDataset(root, split, paired=False, problems=problems))
            except DatasetError as error:
                problems.append(str(error))
    if not datasets:
        problems.append(f"{root}: neither train/ nor test/ found (MVG layout expected)")
    return datasets


def _vitonhd_datasets(root: Path, problems: list[str]) -> list[TryOnDataset]:
    from mvvton.data.vitonhd import VitonHDDataset

    datasets: list[TryOnDataset] = []
    for split in ("train", "test"):
        if (root / f"{split}_pairs.txt").is_file():
            datasets.append(VitonHDDataset(root, split, paired=True))
            datasets.append(VitonHDDataset(root, split, paired=False))
    if not datasets:
        problems.append(f"{root}: neither train_pairs.txt nor test_pairs.txt found (VITON-HD layout expected)")
    return datasets


def _dresscode_datasets(root: Path, problems: list[str]) -> list[TryOnDataset]:
    from mvvton.data.dresscode import DRESSCODE_CATEGORY, DressCodeDataset, dresscode_pairs_file

    category = root / DRESSCODE_CATEGORY if (root / DRESSCODE_CATEGORY).is_dir() else root
    datasets: list[TryOnDataset] = []
    for split, paired in (("train", True), ("test", True), ("test", False)):
        if (category / dresscode_pairs_file(split, paired)).is_file():
            datasets.append(DressCodeDataset(root, split, paired=paired))
    if not datasets:
        problems.append(f"{category}: no train/test pairs files found (DressCode layout expected)")
    return datasets


def _manifest_datasets(root: Path, problems: list[str]) -> list[TryOnDataset]:
    from mvvton.data.manifest import ManifestDataset

    path = root / MANIFEST_DEFAULT_NAME if root.is_dir() else root
    return [ManifestDataset(path)]


DATASET_BUILDERS: dict[str, Callable[[Path, list[str]], list[TryOnDataset]]] = {
    "mvg": _mvg_datasets,
    "vitonhd": _vitonhd_datasets,
    "dresscode": _dresscode_datasets,
    "manifest": _manifest_datasets,
}


def check_dataset(root: str | Path, format: str) -> CheckReport:
    """Check a dataset folder (or a manifest file) of the given format. Never raises for broken data: problems
    (including an unreadable layout) are reported in the returned :class:`CheckReport`."""
    if format not in DATASET_BUILDERS:
        raise ValueError(f"format must be one of {CHECK_FORMATS}, got {format!r}")
    root = Path(root)
    report = CheckReport(root=root, format=format)
    if not root.exists():
        report.problems["missing"].append(f"{root}: does not exist")
        return report
    malformed = report.problems["malformed"]
    try:
        datasets = DATASET_BUILDERS[format](root, malformed)
    except DatasetError as error:
        malformed.append(str(error))
        return report
    return check_datasets(datasets, report)
