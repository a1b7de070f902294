"""Raw-photo batch input: a CSV or JSONL list of (person, garment_front, garment_back) photo paths.

Each row is preprocessed (pose, masks, garment warp; `mvvton.preprocessing.TryOnPreprocessor`) inside
`__getitem__`, so with `DataLoader(num_workers > 0)` the preprocessing of the next batches runs in worker processes
while the model renders the current one.

CSV: a header with at least `person,garment_front` (optional `garment_back`, `id`, `view`). JSONL: one object per
line with the same keys. Relative paths are resolved against the list's folder. `id` defaults to the person file's
stem (it names the output); `view` defaults to "auto" (detected from the pose).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from mvvton.constants import DEFAULT_HEIGHT, DEFAULT_WIDTH, GarmentView, PersonView
from mvvton.data.base import TryOnDataset
from mvvton.data.sample import RawSample
from mvvton.errors import DatasetError

PHOTO_LIST_REQUIRED = ("person", "garment_front")
PHOTO_LIST_KEYS = ("id", "person", "garment_front", "garment_back", "view")
PHOTO_VIEWS = ("auto", "front", "side", "back")


def read_photo_list(path: str | Path) -> list[dict[str, str]]:
    """Rows of a `.csv` or `.jsonl` photo list, validated (required keys, known keys and views, unique ids)."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"photo list {path} not found: give a .csv or .jsonl with columns {PHOTO_LIST_KEYS}")
    if path.suffix.lower() == ".csv":
        with path.open(newline="") as stream:
            rows = [
                {key: value for key, value in row.items() if value not in (None, "")} for row in csv.DictReader(stream)
            ]
    elif path.suffix.lower() in (".jsonl", ".json"):
        rows = []
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as error:
                    raise DatasetError(f"{path}:{number}: not valid JSON ({error})") from error
    else:
        raise DatasetError(f"photo list {path} must end in .csv or .jsonl")
    seen: set[str] = set()
    for number, row in enumerate(rows, start=1):
        where = f"{path} row {number}"
        if not isinstance(row, dict):
            raise DatasetError(f"{where}: expected an object with keys {PHOTO_LIST_KEYS}")
        missing = [key for key in PHOTO_LIST_REQUIRED if key not in row]
        unknown = sorted(set(row) - set(PHOTO_LIST_KEYS))
        if missing or unknown:
            raise DatasetError(f"{where}: missing {missing}, unknown {unknown}; accepted keys are {PHOTO_LIST_KEYS}")
        row.setdefault("id", Path(row["person"]).stem)
        row.setdefault("view", "auto")
        if row["view"] not in PHOTO_VIEWS:
            raise DatasetError(f"{where}: view must be one of {PHOTO_VIEWS}, got {row['view']!r}")
        if row["id"] in seen:
            raise DatasetError(f"{where}: duplicate id {row['id']!r} (ids name the outputs; add an `id` column)")
        seen.add(row["id"])
    if not rows:
        raise DatasetError(f"photo list {path} has no rows")
    return rows


class PhotoTripletDataset(TryOnDataset):
    """Photo triples preprocessed on the fly into the `mvvton.data` sample schema at `(height, width)`.

    Args:
        photo_list: the `.csv` / `.jsonl` file (module docstring).
        preprocessor: a `TryOnPreprocessor`; default: one with the offline mediapipe pose backend, built lazily in
            each worker process.
    """

    def __init__(
        self, photo_list: str | Path, height: int = DEFAULT_HEIGHT, width: int = DEFAULT_WIDTH, preprocessor=None
    ) -> None:
        super().__init__(height, width)
        self.photo_list = Path(photo_list)
        self.records = read_photo_list(self.photo_list)
        self.preprocessor = preprocessor

    def sample_id(self, index: int) -> str:
        return str(self.records[index]["id"])

    def _resolve(self, value: str) -> Path:
        path = Path(value)
        return path if path.is_absolute() else self.photo_list.parent / path

    def sample_files(self, index: int) -> dict[str, Path]:
        record = self.records[index]
        return {
            key: self._resolve(record[key]) for key in ("person", "garment_front", "garment_back") if key in record
        }

    def load_raw(self, index: int) -> RawSample:
        if self.preprocessor is None:
            from mvvton.preprocessing.preprocessor import TryOnPreprocessor

            self.preprocessor = TryOnPreprocessor()
        files = self.sample_files(index)
        result = self.preprocessor(
            files["person"], files["garment_front"], files.get("garment_back"),
            view=self.records[index]["view"], height=self.height, width=self.width,
        )  # fmt: skip
        return RawSample(
            person=result.person,
            inpaint_image=result.warped_composite,
            inpaint_mask=result.inpaint_mask,
            agnostic=result.agnostic,
            garment_front=result.garment_front,
            garment_front_mask=result.garment_front_mask,
            skeleton_front=result.garment_front_skeleton,
            garment_back=result.garment_back,
            garment_back_mask=result.garment_back_mask,
            skeleton_back=result.garment_back_skeleton,
            skeleton_person=result.person_skeleton,
            person_keypoints=result.person_keypoints,
            view=PersonView(result.view).value,
            garment_view=GarmentView(result.routed_garment).value,
            sample_id=self.sample_id(index),
        )
