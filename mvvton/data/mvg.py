"""MVG (MV-VTON's multi-view garment dataset), official folder layout (mvvton-spec.md §8).

```
ROOT/
  unpaired.txt                           "<person_id> <cloth_id>" per line (ROOT/<split>/unpaired.txt also accepted)
  <split>/                               split = train | test
    image-wo-bg/<id>_<order>/{a,b,c}     3 person photos; sorted by name = [front-garment view, PERSON, back-garment view]
    cloth/<id>_<order>/{a,c}             front / back garment image, named after views a / c
    cloth-mask/<id>_<order>/{a,c}        cloth masks (binarised at 128)
    skeletons/<id>_<order>/{a,b,c}       OpenPose-18 renders of the three views
    inpaint_mask/<id>_<order>/b          white = region to regenerate
    warp_feat/<id>_<order>.jpg           agnostic person + pre-warped garment (paired)
    warp_feat_unpair/<id>_<order>.jpg    same with the unpaired garment
    agnostic-wo-bg/<id>_<order>/b        optional: agnostic person (an earlier MVG release; SynthMVG writes it)
    keypoints/<id>_<order>/{a,b,c}.json  optional (mvvton extension): OpenPose COCO-18 JSON of the three views
```
The order suffix names the person view: 1 = front, 2 = side, 3 = back. The garment fed to the global branch is
hard-selected as at MV-VTON test time: back garment for back views, front garment otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mvvton.constants import DEFAULT_HEIGHT, DEFAULT_WIDTH, PersonView
from mvvton.data.base import TryOnDataset
from mvvton.data.sample import (
    RawSample,
    find_image,
    hard_garment_view,
    keypoints_from_openpose_json,
    list_images,
    read_image,
    read_mask,
)
from mvvton.data.transforms import PairedTransform, resize_array
from mvvton.errors import DatasetError

MVG_SPLITS: tuple[str, ...] = ("train", "test")
# Folder-name suffix -> person view.
MVG_ORDER_TO_VIEW: dict[str, PersonView] = {"1": PersonView.FRONT, "2": PersonView.SIDE, "3": PersonView.BACK}
MVG_VIEWS_PER_FOLDER = 3  # [front-garment view, person view, back-garment view]
MVG_PERSON_DIR = "image-wo-bg"
MVG_CLOTH_DIR = "cloth"
MVG_CLOTH_MASK_DIR = "cloth-mask"
MVG_SKELETON_DIR = "skeletons"
MVG_INPAINT_MASK_DIR = "inpaint_mask"
MVG_WARP_DIR = "warp_feat"
MVG_WARP_UNPAIRED_DIR = "warp_feat_unpair"
MVG_AGNOSTIC_DIR = "agnostic-wo-bg"
MVG_KEYPOINT_DIR = "keypoints"
MVG_UNPAIRED_FILE = "unpaired.txt"


@dataclass(frozen=True)
class MVGFolder:
    """One MVG sample folder with its three views named explicitly (file stems, no extension)."""

    folder: str  # "<id>_<order>"
    identity: str
    order: str
    front_view: str  # stem of the front-garment view photo
    person_view: str  # stem of the person (target) photo
    back_view: str  # stem of the back-garment view photo

    @property
    def view(self) -> PersonView:
        return MVG_ORDER_TO_VIEW[self.order]


def parse_folder_name(name: str) -> tuple[str, str]:
    """`"00001_2"` -> `("00001", "2")`; raises `DatasetError` for anything else."""
    identity, sep, order = name.rpartition("_")
    if not sep or order not in MVG_ORDER_TO_VIEW:
        raise DatasetError(f"MVG folder {name!r} is not named <id>_<order> with order in 1/2/3")
    return identity, order


def scan_mvg_split(split_dir: Path, problems: list[str] | None = None) -> list[MVGFolder]:
    """List the sample folders of one MVG split (`ROOT/<split>`), views named from the sorted person files.

    Malformed folders raise `DatasetError`, or, when a `problems` list is given, are described there and skipped.
    """
    person_root = split_dir / MVG_PERSON_DIR
    if not person_root.is_dir():
        raise DatasetError(f"{person_root} does not exist: not an MVG split folder (expected {MVG_PERSON_DIR}/)")
    folders = []
    for folder in sorted(p for p in person_root.iterdir() if p.is_dir()):
        try:
            identity, order = parse_folder_name(folder.name)
            stems = [p.stem for p in list_images(folder)]
            if len(stems) != MVG_VIEWS_PER_FOLDER:
                raise DatasetError(f"{folder} holds {len(stems)} images, expected {MVG_VIEWS_PER_FOLDER}")
        except DatasetError as error:
            if problems is None:
                raise
            problems.append(str(error))
            continue
        front, person, back = stems
        folders.append(MVGFolder(folder.name, identity, order, front, person, back))
    return folders


def read_unpaired(root: Path, split: str) -> dict[str, str]:
    """`unpaired.txt` as {person id: cloth id} (looked up in `ROOT/` then `ROOT/<split>/`)."""
    for path in (root / MVG_UNPAIRED_FILE, root / split / MVG_UNPAIRED_FILE):
        if path.is_file():
            pairs = {}
            for line_number, line in enumerate(path.read_text().splitlines(), 1):
                fields = line.split()
                if not fields:
                    continue
                if len(fields) != 2:
                    raise DatasetError(f"{path}:{line_number}: expected '<person_id> <cloth_id>', got {line!r}")
                pairs[fields[0]] = fields[1]
            return pairs
    raise DatasetError(f"unpaired mode needs {root / MVG_UNPAIRED_FILE} ('<person_id> <cloth_id>' per line)")


class MVGDataset(TryOnDataset):
    """MVG in its official layout (module docstring); returns the sample dict of :mod:`mvvton.data.sample`.

    Args:
        root: dataset root holding `train/`, `test/` and `unpaired.txt`.
        split: 'train' or 'test'.
        problems: if given, malformed folders are described in this list and skipped instead of raising.
        paired: True = the person's own garment and `warp_feat`; False = the garment of the `unpaired.txt` partner
            (same order suffix) and `warp_feat_unpair`.
        height, width: output size (default 512 x 384, the MVG photo size).
    """

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        paired: bool = True,
        height: int = DEFAULT_HEIGHT,
        width: int = DEFAULT_WIDTH,
        transform: PairedTransform | None = None,
        seed: int | None = None,
        problems: list[str] | None = None,
    ) -> None:
        super().__init__(height, width, transform, seed)
        if split not in MVG_SPLITS:
            raise ValueError(f"split must be one of {MVG_SPLITS}, got {split!r}")
        self.root = Path(root)
        self.split = split
        self.paired = paired
        self.split_dir = self.root / split
        folders = scan_mvg_split(self.split_dir, problems)
        by_name = {f.folder: f for f in folders}
        self.garment_folders: dict[str, MVGFolder] = {}
        if paired:
            self.records = folders
            self.garment_folders = {f.folder: f for f in folders}
        else:
            partners = read_unpaired(self.root, split)
            records = []
            for person in folders:
                cloth_id = partners.get(person.identity)
                if cloth_id is None:
                    continue
                garment = by_name.get(f"{cloth_id}_{person.order}")
                if garment is None:
                    message = f"unpaired garment folder {cloth_id}_{person.order} missing in {self.split_dir}"
                    if problems is None:
                        raise DatasetError(message)
                    problems.append(message)
                    continue
                records.append(person)
                self.garment_folders[person.folder] = garment
            if not records:
                raise DatasetError(f"no person of {self.split_dir} is listed in {MVG_UNPAIRED_FILE}")
            self.records = records

    def _image(self, subdir: str, folder: str, stem: str) -> Path:
        """`split/subdir/folder/stem.<ext>`; the `.jpg` name when absent (so checks can report it)."""
        directory = self.split_dir / subdir / folder
        return find_image(directory, stem) or directory / f"{stem}.jpg"

    def sample_files(self, index: int) -> dict[str, Path]:
        record: MVGFolder = self.records[index]  # type: ignore[assignment]
        garment = self.garment_folders[record.folder]
        warp_dir = self.split_dir / (MVG_WARP_DIR if self.paired else MVG_WARP_UNPAIRED_DIR)
        files = {
            "person": self._image(MVG_PERSON_DIR, record.folder, record.person_view),
            "inpaint_image": find_image(warp_dir, record.folder) or warp_dir / f"{record.folder}.jpg",
            "inpaint_mask": self._image(MVG_INPAINT_MASK_DIR, record.folder, record.person_view),
            "skeleton_person": self._image(MVG_SKELETON_DIR, record.folder, record.person_view),
        }
        for side, stem in (("front", garment.front_view), ("back", garment.back_view)):
            files[f"garment_{side}"] = self._image(MVG_CLOTH_DIR, garment.folder, stem)
            files[f"garment_{side}_mask"] = self._image(MVG_CLOTH_MASK_DIR, garment.folder, stem)
            files[f"skeleton_{side}"] = self._image(MVG_SKELETON_DIR, garment.folder, stem)
        agnostic = find_image(self.split_dir / MVG_AGNOSTIC_DIR / record.folder, record.person_view)
        if agnostic is not None:
            files["agnostic"] = agnostic
        keypoints = self.split_dir / MVG_KEYPOINT_DIR / record.folder / f"{record.person_view}.json"
        if keypoints.is_file():
            files["keypoints"] = keypoints
        return files

    def load_raw(self, index: int) -> RawSample:
        record: MVGFolder = self.records[index]  # type: ignore[assignment]
        garment = self.garment_folders[record.folder]
        files = self.sample_files(index)
        person = read_image(files["person"])
        size = person.shape[:2]
        garments = {}
        for side in ("front", "back"):
            image = read_image(files[f"garment_{side}"])
            mask = resize_array(read_mask(files[f"garment_{side}_mask"], binarize=True), *image.shape[:2])
            skeleton = resize_array(read_image(files[f"skeleton_{side}"]), *image.shape[:2])
            garments[side] = (image, mask, skeleton)
        suffix = "" if self.paired else f"__{garment.identity}"
        keypoints = keypoints_from_openpose_json(files["keypoints"]) if "keypoints" in files else None
        return RawSample(
            person=person,
            inpaint_image=resize_array(read_image(files["inpaint_image"]), *size),
            inpaint_mask=resize_array(read_mask(files["inpaint_mask"]), *size),
            agnostic=resize_array(read_image(files["agnostic"]), *size) if "agnostic" in files else None,
            garment_front=garments["front"][0],
            garment_front_mask=garments["front"][1],
            skeleton_front=garments["front"][2],
            garment_back=garments["back"][0],
            garment_back_mask=garments["back"][1],
            skeleton_back=garments["back"][2],
            skeleton_person=resize_array(read_image(files["skeleton_person"]), *size),
            person_keypoints=keypoints,
            view=record.view.value,
            garment_view=hard_garment_view(record.view, keypoints).value,
            sample_id=f"{self.split}/{record.folder}{suffix}",
        )
