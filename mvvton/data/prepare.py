"""`mvvton data prepare`: raw person photos + garment front/back photos -> an MVG-layout dataset.

Expected RAW_DIR:
```
RAW_DIR/
  persons/<photo>.jpg|png ...
  garments/<name>/front.jpg|png     product photo of the front
  garments/<name>/back.jpg|png      optional: product photo of the back (the front is reused without it)
  pairs.txt                         "<person photo> <garment name> [front|side|back]" per line ('#' comments)
```
Each pair becomes one sample, numbered by its line (`00001`, `00002`, ...), written in MVG layout (see
:mod:`mvvton.data.mvg`) to `OUT_DIR/<split>/`, in folder `<number>_<order>` where the order (1 / 2 / 3) is the
person view found by the preprocessor (or given in pairs.txt). One real photo per sample exists, so the
front-/back-garment view slots of `image-wo-bg/` (`1.jpg`, `3.jpg`) hold the fitted garment images; the person is
`2.jpg`. `warp_feat/` holds the preprocessor's TPS pre-warp composite; `keypoints/` the COCO-18 keypoints.

Resumable and crash-safe: a sample is complete when its marker `OUT_DIR/<split>/.prepared/<number>.json` exists and
lists files that all exist; complete samples are skipped. Each sample is first written to a temporary folder
(`.staging-<number>-*`) and fsynced; then an old marker of that sample is removed, the files are renamed into place one
by one (each rename atomic) and the marker is written last. A kill at any moment therefore leaves the sample either
complete or without a marker (it is prepared again on the next run); leftovers of interrupted runs (staging folders,
temporary marker files) are removed when the next run starts. A failing sample is logged and counted, never fatal.
One `prepare` per output folder at a time.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mvvton.constants import DEFAULT_HEIGHT, DEFAULT_WIDTH, PersonView
from mvvton.data.mvg import (
    MVG_AGNOSTIC_DIR,
    MVG_CLOTH_DIR,
    MVG_CLOTH_MASK_DIR,
    MVG_INPAINT_MASK_DIR,
    MVG_KEYPOINT_DIR,
    MVG_ORDER_TO_VIEW,
    MVG_PERSON_DIR,
    MVG_SKELETON_DIR,
    MVG_WARP_DIR,
)
from mvvton.data.sample import IMAGE_EXTENSIONS, keypoints_to_openpose_json, write_image
from mvvton.errors import DatasetError
from mvvton.utils.atomic import TMP_SUFFIX, atomic_write_text, fsync_tree, pause_point

logger = logging.getLogger(__name__)

PAIRS_FILE = "pairs.txt"
PERSONS_DIR = "persons"
GARMENTS_DIR = "garments"
MARKER_DIR = ".prepared"
STAGING_PREFIX = ".staging-"
VIEW_TO_ORDER: dict[PersonView, str] = {view: order for order, view in MVG_ORDER_TO_VIEW.items()}
# File stems of the MVG triple written for a prepared sample: [front-garment view, person, back-garment view].
FRONT_STEM, PERSON_STEM, BACK_STEM = "1", "2", "3"


@dataclass(frozen=True)
class RawPair:
    """One line of pairs.txt."""

    number: str
    person: Path
    garment_front: Path
    garment_back: Path | None
    view: str  # "auto" or a PersonView value


@dataclass
class PrepareSummary:
    """What `prepare_dataset` did."""

    written: int = 0
    skipped: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)  # (sample number, reason)


def _find_view_photo(folder: Path, stem: str) -> Path | None:
    for ext in IMAGE_EXTENSIONS:
        for candidate in (folder / f"{stem}{ext}", folder / f"{stem}{ext.upper()}"):
            if candidate.is_file():
                return candidate
    return None


def read_raw_pairs(raw_dir: str | Path) -> list[RawPair]:
    """Parse `RAW_DIR/pairs.txt` (module docstring). Missing files are left for the per-sample step to report."""
    raw_dir = Path(raw_dir)
    pairs_path = raw_dir / PAIRS_FILE
    if not pairs_path.is_file():
        raise DatasetError(f"{pairs_path} not found: list '<person photo> <garment name> [view]' per line")
    pairs = []
    for line_number, line in enumerate(pairs_path.read_text().splitlines(), 1):
        fields = line.split("#", 1)[0].split()
        if not fields:
            continue
        if len(fields) not in (2, 3):
            raise DatasetError(f"{pairs_path}:{line_number}: expected '<person photo> <garment name> [view]'")
        view = fields[2] if len(fields) == 3 else "auto"
        if view != "auto" and view not in {v.value for v in PersonView}:
            raise DatasetError(f"{pairs_path}:{line_number}: view must be front, side, back or auto, got {view!r}")
        garment_dir = raw_dir / GARMENTS_DIR / fields[1]
        front = _find_view_photo(garment_dir, "front") or garment_dir / "front.jpg"
        pairs.append(RawPair(f"{line_number:05d}", raw_dir / PERSONS_DIR / fields[0], front,
                             _find_view_photo(garment_dir, "back"), view))  # fmt: skip
    return pairs


def _marker(split_dir: Path, number: str) -> Path:
    return split_dir / MARKER_DIR / f"{number}.json"


def incomplete_reason(split_dir: Path, number: str) -> str | None:
    """None when the sample's marker exists and every file it lists exists; else why the sample is incomplete."""
    marker = _marker(split_dir, number)
    if not marker.is_file():
        return "no marker"
    try:
        files = json.loads(marker.read_text())["files"]
    except (OSError, ValueError, KeyError) as error:
        return f"unreadable marker ({error})"
    missing = [relative for relative in files if not (split_dir / relative).is_file()]
    return f"{len(missing)} file(s) missing, e.g. {missing[0]}" if missing else None


def is_complete(split_dir: Path, number: str) -> bool:
    """True when the sample's marker exists and every file it lists exists."""
    return incomplete_reason(split_dir, number) is None


def remove_interrupted_writes(split_dir: Path) -> list[Path]:
    """Delete staging folders and temporary marker files left by a killed run; returns what was removed."""
    removed = [path for path in split_dir.glob(f"{STAGING_PREFIX}*") if path.is_dir()]
    removed += [path for path in (split_dir / MARKER_DIR).glob(f"*{TMP_SUFFIX}") if path.is_file()]
    for path in removed:
        shutil.rmtree(path) if path.is_dir() else path.unlink()
        logger.warning("removed leftover of an interrupted run: %s", path)
    return removed


def _sample_files(result: object, folder: str) -> dict[str, np.ndarray | str]:
    """Relative path (under the split folder) -> image array or JSON text, for one preprocessed sample."""
    r = result  # a PreprocessedTryOn
    mask_u8 = (np.clip(r.inpaint_mask, 0, 1) * 255).round().astype(np.uint8)  # type: ignore[attr-defined]

    def grey(mask: np.ndarray) -> np.ndarray:
        return ((mask > 0.5) * 255).astype(np.uint8)

    return {
        f"{MVG_PERSON_DIR}/{folder}/{FRONT_STEM}.jpg": r.garment_front,  # type: ignore[attr-defined]
        f"{MVG_PERSON_DIR}/{folder}/{PERSON_STEM}.jpg": r.person,  # type: ignore[attr-defined]
        f"{MVG_PERSON_DIR}/{folder}/{BACK_STEM}.jpg": r.garment_back,  # type: ignore[attr-defined]
        f"{MVG_CLOTH_DIR}/{folder}/{FRONT_STEM}.jpg": r.garment_front,  # type: ignore[attr-defined]
        f"{MVG_CLOTH_DIR}/{folder}/{BACK_STEM}.jpg": r.garment_back,  # type: ignore[attr-defined]
        f"{MVG_CLOTH_MASK_DIR}/{folder}/{FRONT_STEM}.jpg": grey(r.garment_front_mask),  # type: ignore[attr-defined]
        f"{MVG_CLOTH_MASK_DIR}/{folder}/{BACK_STEM}.jpg": grey(r.garment_back_mask),  # type: ignore[attr-defined]
        f"{MVG_SKELETON_DIR}/{folder}/{FRONT_STEM}.jpg": r.garment_front_skeleton,  # type: ignore[attr-defined]
        f"{MVG_SKELETON_DIR}/{folder}/{PERSON_STEM}.jpg": r.person_skeleton,  # type: ignore[attr-defined]
        f"{MVG_SKELETON_DIR}/{folder}/{BACK_STEM}.jpg": r.garment_back_skeleton,  # type: ignore[attr-defined]
        f"{MVG_INPAINT_MASK_DIR}/{folder}/{PERSON_STEM}.jpg": mask_u8,
        f"{MVG_AGNOSTIC_DIR}/{folder}/{PERSON_STEM}.jpg": r.agnostic,  # type: ignore[attr-defined]
        f"{MVG_WARP_DIR}/{folder}.jpg": r.warped_composite,  # type: ignore[attr-defined]
        f"{MVG_KEYPOINT_DIR}/{folder}/{FRONT_STEM}.json": keypoints_to_openpose_json(r.garment_front_keypoints),  # type: ignore[attr-defined]
        f"{MVG_KEYPOINT_DIR}/{folder}/{PERSON_STEM}.json": keypoints_to_openpose_json(r.person_keypoints),  # type: ignore[attr-defined]
        f"{MVG_KEYPOINT_DIR}/{folder}/{BACK_STEM}.json": keypoints_to_openpose_json(r.garment_back_keypoints),  # type: ignore[attr-defined]
    }  # fmt: skip


def _write_sample(split_dir: Path, pair: RawPair, files: dict[str, np.ndarray | str], view: PersonView) -> None:
    """Stage every file in a temp folder (fsynced), drop the sample's old marker, rename each file into place, then
    write the marker atomically."""
    split_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f"{STAGING_PREFIX}{pair.number}-", dir=split_dir))
    try:
        for relative, content in files.items():
            target = staging / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, str):
                target.write_text(content)
            else:
                write_image(target, content)
        fsync_tree(staging)
        marker = _marker(split_dir, pair.number)
        marker.unlink(missing_ok=True)  # from here until the new marker the sample counts as incomplete
        for index, relative in enumerate(files):
            destination = split_dir / relative
            destination.parent.mkdir(parents=True, exist_ok=True)
            os.replace(staging / relative, destination)
            if index == 0:
                pause_point("prepare.moving", int(pair.number))
        record = {"files": sorted(files), "person": str(pair.person), "garment_front": str(pair.garment_front),
                  "garment_back": str(pair.garment_back) if pair.garment_back else None, "view": view.value}  # fmt: skip
        atomic_write_text(marker, json.dumps(record, indent=1, sort_keys=True))
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def prepare_dataset(
    raw_dir: str | Path,
    out_dir: str | Path,
    *,
    split: str = "test",
    height: int = DEFAULT_HEIGHT,
    width: int = DEFAULT_WIDTH,
    preprocessor: object | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> PrepareSummary:
    """Preprocess every pair of `raw_dir` into an MVG-layout dataset at `out_dir/<split>` (module docstring).

    Args:
        preprocessor: a `mvvton.preprocessing.TryOnPreprocessor` (default: one with the offline mediapipe backend).
        progress: called as `progress(done, total)` after each pair.
    Returns:
        Counts of written / skipped samples and the failures with their reasons.
    """
    pairs = read_raw_pairs(raw_dir)
    split_dir = Path(out_dir) / split
    summary = PrepareSummary()
    if preprocessor is None:
        from mvvton.preprocessing.preprocessor import TryOnPreprocessor

        preprocessor = TryOnPreprocessor()
    if split_dir.is_dir():
        remove_interrupted_writes(split_dir)
    for done, pair in enumerate(pairs, 1):
        incomplete = incomplete_reason(split_dir, pair.number)
        if incomplete is None:
            summary.skipped += 1
        else:
            if incomplete != "no marker":
                logger.info("sample %s is incomplete (%s): preparing it again", pair.number, incomplete)
            try:
                result = preprocessor(pair.person, pair.garment_front, pair.garment_back,  # type: ignore[operator]
                                      view=pair.view, height=height, width=width)  # fmt: skip
                view = PersonView(result.view)
                folder = f"{pair.number}_{VIEW_TO_ORDER[view]}"
                _write_sample(split_dir, pair, _sample_files(result, folder), view)
                summary.written += 1
            except Exception as error:  # noqa: BLE001 - one bad photo must not stop the run
                reason = f"{type(error).__name__}: {error}"
                logger.warning("sample %s (%s) failed: %s", pair.number, pair.person.name, reason)
                summary.failed.append((pair.number, reason))
        if progress is not None:
            progress(done, len(pairs))
    return summary
