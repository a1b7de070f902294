"""JSONL manifests: one try-on sample per line with explicit file paths, for arbitrary folders.

Each line is a JSON object; paths are relative to the manifest's folder (or absolute):

```
{"id": "0001", "person": "persons/a.jpg", "garment_front": "garments/tee/front.jpg",
 "garment_back": "garments/tee/back.jpg", "inpaint_mask": "masks/a.png", "warped_composite": "warp/a.jpg",
 "view": "back"}
```
Required: `id`, `person`, `garment_front`, `inpaint_mask`, `view` ('front' | 'side' | 'back').
Optional: `garment_back` (default: the front image), `garment_front_mask`, `garment_back_mask` (default: estimated
from the plain background), `warped_composite` (default: the agnostic image), `agnostic` (default: the person greyed
inside the mask), `skeleton_person`, `skeleton_front`, `skeleton_back` (default: drawn from keypoints, else black),
`keypoints` (an OpenPose JSON path or an inline `[[x, y, conf] x 18]` list, in person pixels),
`garment_view` (default: back for back views, else front).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from mvvton.constants import DEFAULT_HEIGHT, DEFAULT_WIDTH, NUM_KEYPOINTS, GarmentView, PersonView
from mvvton.data.base import TryOnDataset
from mvvton.data.masks import estimate_garment_mask
from mvvton.data.sample import (
    RawSample,
    grey_out,
    hard_garment_view,
    keypoints_from_openpose_json,
    read_image,
    read_mask,
)
from mvvton.data.transforms import PairedTransform, resize_array
from mvvton.errors import DatasetError
from mvvton.preprocessing.pose import render_skeleton

MANIFEST_REQUIRED: tuple[str, ...] = ("id", "person", "garment_front", "inpaint_mask", "view")
MANIFEST_PATH_KEYS: tuple[str, ...] = (
    "person", "garment_front", "garment_back", "garment_front_mask", "garment_back_mask", "inpaint_mask",
    "warped_composite", "agnostic", "skeleton_person", "skeleton_front", "skeleton_back",
)  # fmt: skip
MANIFEST_OPTIONAL: tuple[str, ...] = tuple(k for k in MANIFEST_PATH_KEYS if k not in MANIFEST_REQUIRED) + (
    "keypoints", "garment_view",
)  # fmt: skip
# manifest key -> role name in `sample_files` (the schema calls the warped composite `inpaint_image`)
MANIFEST_ROLES: dict[str, str] = {**{k: k for k in MANIFEST_PATH_KEYS}, "warped_composite": "inpaint_image"}


def validate_record(record: dict, where: str = "manifest") -> dict:
    """Check one manifest object; returns it unchanged or raises `DatasetError` naming the problem."""
    if not isinstance(record, dict):
        raise DatasetError(f"{where}: each line must be a JSON object")
    missing = [key for key in MANIFEST_REQUIRED if key not in record]
    if missing:
        raise DatasetError(f"{where}: missing required key(s) {missing}")
    unknown = sorted(set(record) - set(MANIFEST_REQUIRED) - set(MANIFEST_OPTIONAL))
    if unknown:
        raise DatasetError(f"{where}: unknown key(s) {unknown}; allowed: {MANIFEST_REQUIRED + MANIFEST_OPTIONAL}")
    try:
        PersonView(record["view"])
        if "garment_view" in record:
            GarmentView(record["garment_view"])
    except ValueError as error:
        raise DatasetError(f"{where}: {error}") from error
    keypoints = record.get("keypoints")
    if isinstance(keypoints, list) and np.asarray(keypoints).shape != (NUM_KEYPOINTS, 3):
        raise DatasetError(f"{where}: inline keypoints must be {NUM_KEYPOINTS} x 3")
    return record


def write_manifest(path: str | Path, records: Iterable[dict]) -> Path:
    """Write records (validated) as JSONL, one object per line, keys sorted. Returns the path."""
    path = Path(path)
    lines = []
    for number, record in enumerate(records, 1):
        validate_record(record, f"record {number}")
        lines.append(json.dumps(record, sort_keys=True))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + ("\n" if lines else ""))
    return path


def read_manifest(path: str | Path) -> list[dict]:
    """Read and validate a JSONL manifest (blank lines ignored; ids must be unique)."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"manifest {path} not found")
    records, seen = [], set()
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as error:
            raise DatasetError(f"{path}:{number}: invalid JSON ({error})") from error
        validate_record(record, f"{path}:{number}")
        if record["id"] in seen:
            raise DatasetError(f"{path}:{number}: duplicate id {record['id']!r}")
        seen.add(record["id"])
        records.append(record)
    return records


class ManifestDataset(TryOnDataset):
    """Samples listed in a JSONL manifest (module docstring); returns the sample dict of :mod:`mvvton.data.sample`.

    Args:
        manifest: path of the `.jsonl` file.
        root: folder relative paths are resolved against (default: the manifest's folder).
    """

    def __init__(
        self,
        manifest: str | Path,
        root: str | Path | None = None,
        height: int = DEFAULT_HEIGHT,
        width: int = DEFAULT_WIDTH,
        transform: PairedTransform | None = None,
        seed: int | None = None,
    ) -> None:
        super().__init__(height, width, transform, seed)
        self.manifest = Path(manifest)
        self.root = Path(root) if root is not None else self.manifest.parent
        self.records = read_manifest(self.manifest)

    def _resolve(self, value: str) -> Path:
        path = Path(value)
        return path if path.is_absolute() else self.root / path

    def sample_files(self, index: int) -> dict[str, Path]:
        record: dict = self.records[index]  # type: ignore[assignment]
        files = {MANIFEST_ROLES[key]: self._resolve(record[key]) for key in MANIFEST_PATH_KEYS if key in record}
        if isinstance(record.get("keypoints"), str):
            files["keypoints"] = self._resolve(record["keypoints"])
        return files

    def load_raw(self, index: int) -> RawSample:
        record: dict = self.records[index]  # type: ignore[assignment]
        files = self.sample_files(index)
        person = read_image(files["person"])
        size = person.shape[:2]
        mask = resize_array(read_mask(files["inpaint_mask"]), *size)
        keypoints = None
        if "keypoints" in files:
            keypoints = keypoints_from_openpose_json(files["keypoints"])
        elif isinstance(record.get("keypoints"), list):
            keypoints = np.asarray(record["keypoints"], dtype=np.float32)
        agnostic = resize_array(read_image(files["agnostic"]), *size) if "agnostic" in files else grey_out(person, mask)
        inpaint = resize_array(read_image(files["inpaint_image"]), *size) if "inpaint_image" in files else agnostic

        def optional_image(role: str, shape: tuple[int, int]) -> np.ndarray | None:
            return resize_array(read_image(files[role]), *shape) if role in files else None

        skeleton_person = optional_image("skeleton_person", size)
        if skeleton_person is None and keypoints is not None:
            skeleton_person = render_skeleton(keypoints, *size)
        garments = {}
        for side in ("front", "back"):
            role = f"garment_{side}" if f"garment_{side}" in files else "garment_front"
            image = read_image(files[role])
            mask_role = f"garment_{side}_mask" if role == f"garment_{side}" else "garment_front_mask"
            if mask_role in files:
                garment_mask = resize_array(read_mask(files[mask_role], binarize=True), *image.shape[:2])
            else:
                garment_mask = estimate_garment_mask(image)
            garments[side] = (image, garment_mask, optional_image(f"skeleton_{side}", image.shape[:2]))
        view = PersonView(record["view"])
        return RawSample(
            person=person,
            inpaint_image=inpaint,
            inpaint_mask=mask,
            agnostic=agnostic,
            garment_front=garments["front"][0],
            garment_front_mask=garments["front"][1],
            skeleton_front=garments["front"][2],
            garment_back=garments["back"][0],
            garment_back_mask=garments["back"][1],
            skeleton_back=garments["back"][2],
            skeleton_person=skeleton_person,
            person_keypoints=keypoints,
            view=view.value,
            garment_view=record.get("garment_view", hard_garment_view(view, keypoints).value),
            sample_id=str(record["id"]),
        )
