"""DressCode, upper-body subset, in the layout of the DCI-VTON-style loaders (mvvton-spec.md §8).

Supported subset (ROOT may be the DressCode root holding `upper_body/`, or `upper_body/` itself):
```
upper_body/
  train_pairs.txt, test_pairs_paired.txt, test_pairs_unpaired.txt   "<person>_0.jpg <cloth>_1.jpg" per line
  images/<id>_0.jpg  person photo,   images/<id>_1.jpg  garment photo
  keypoints/<id>_2.json      {"keypoints": [[x, y, score, id] x 18]} in a 384-px-wide frame (scaled to the photo)
  label_maps/<id>_4.png      optional: parsing (upper clothes 4, left arm 14, right arm 15)
  skeletons/<id>_5.jpg       optional: OpenPose render (else drawn from the keypoints)
  masks/<cloth stem>.png     optional: cloth mask (else estimated from the plain background)
  inpaint_mask/<person stem>.png   optional: overrides the parsing / pose mask (white = regenerate)
  warped_cloth/<person>.jpg, warped_mask/<person>.png                    optional paired pre-warp (GP-VTON)
  warped_cloth_unpaired/<person>.jpg, warped_mask_unpaired/<person>.png  optional unpaired pre-warp
```
Split 'train' reads `train_pairs.txt` (paired in DressCode); 'test' reads `test_pairs_paired.txt` or `test_pairs_unpaired.txt`.
Composition rules as VITON-HD (:mod:`mvvton.data.vitonhd`); frontal data: `garment_back = garment_front`.
"""

from __future__ import annotations

from pathlib import Path

from mvvton.constants import DEFAULT_HEIGHT, DEFAULT_WIDTH, GarmentView, PersonView
from mvvton.data.base import TryOnDataset
from mvvton.data.masks import estimate_garment_mask, parse_region_mask, pose_upper_body_mask, read_label_map
from mvvton.data.sample import (
    RawSample,
    find_image,
    grey_out,
    keypoints_from_openpose_json,
    read_image,
    read_mask,
)
from mvvton.data.transforms import PairedTransform, resize_array
from mvvton.data.vitonhd import composite_from_files, read_pairs
from mvvton.errors import DatasetError
from mvvton.preprocessing.pose import render_skeleton

DRESSCODE_SPLITS: tuple[str, ...] = ("train", "test")
DRESSCODE_CATEGORY = "upper_body"
# DressCode keypoints are stored for a 384 x 512 rendition of the 768 x 1024 photos.
DRESSCODE_KEYPOINT_WIDTH = 384
DRESSCODE_MASK_LABELS: tuple[int, ...] = (4, 14, 15)
# File-name suffixes of the DressCode modalities.
SUFFIX_KEYPOINTS, SUFFIX_LABELS, SUFFIX_SKELETON = "_2", "_4", "_5"


def dresscode_pairs_file(split: str, paired: bool) -> str:
    """Name of the pairs file for a split / mode."""
    if split == "train":
        return "train_pairs.txt"
    return "test_pairs_paired.txt" if paired else "test_pairs_unpaired.txt"


class DressCodeDataset(TryOnDataset):
    """DressCode upper-body (module docstring); returns the sample dict of :mod:`mvvton.data.sample`."""

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        paired: bool = True,
        height: int = DEFAULT_HEIGHT,
        width: int = DEFAULT_WIDTH,
        transform: PairedTransform | None = None,
        seed: int | None = None,
    ) -> None:
        super().__init__(height, width, transform, seed)
        if split not in DRESSCODE_SPLITS:
            raise ValueError(f"split must be one of {DRESSCODE_SPLITS}, got {split!r}")
        root = Path(root)
        self.root = root / DRESSCODE_CATEGORY if (root / DRESSCODE_CATEGORY).is_dir() else root
        if not (self.root / "images").is_dir():
            raise DatasetError(f"{self.root} has no images/ folder: not a DressCode {DRESSCODE_CATEGORY} root")
        self.split = split
        self.paired = paired
        self.records = read_pairs(self.root / dresscode_pairs_file(split, paired))

    def sample_files(self, index: int) -> dict[str, Path]:
        person, cloth = self.records[index]  # type: ignore[misc]
        person_stem, cloth_stem = Path(person).stem, Path(cloth).stem
        base = person_stem.rsplit("_", 1)[0]
        r = self.root
        files = {
            "person": r / "images" / person,
            "garment_front": r / "images" / cloth,
            "keypoints": r / "keypoints" / f"{base}{SUFFIX_KEYPOINTS}.json",
        }
        suffix = "" if self.paired else "_unpaired"
        optional = {
            "parse": r / "label_maps" / f"{base}{SUFFIX_LABELS}.png",
            "skeleton_person": find_image(r / "skeletons", f"{base}{SUFFIX_SKELETON}"),
            "garment_front_mask": find_image(r / "masks", cloth_stem),
            "inpaint_mask": find_image(r / "inpaint_mask", person_stem),
            "warped_garment": find_image(r / f"warped_cloth{suffix}", person_stem),
            "warped_mask": find_image(r / f"warped_mask{suffix}", person_stem),
        }
        files.update({role: path for role, path in optional.items() if path is not None and path.is_file()})
        return files

    def load_raw(self, index: int) -> RawSample:
        files = self.sample_files(index)
        person = read_image(files["person"])
        height, width = person.shape[:2]
        keypoints = keypoints_from_openpose_json(files["keypoints"])
        keypoints[:, :2] *= width / DRESSCODE_KEYPOINT_WIDTH
        if "inpaint_mask" in files:
            mask = resize_array(read_mask(files["inpaint_mask"]), height, width)
        elif "parse" in files:
            mask = parse_region_mask(read_label_map(files["parse"], height, width), DRESSCODE_MASK_LABELS)
        else:
            mask = pose_upper_body_mask(keypoints, height, width)
        agnostic = grey_out(person, mask)
        garment = read_image(files["garment_front"])
        if "garment_front_mask" in files:
            garment_mask = resize_array(read_mask(files["garment_front_mask"], binarize=True), *garment.shape[:2])
        else:
            garment_mask = estimate_garment_mask(garment)
        if "skeleton_person" in files:
            skeleton = resize_array(read_image(files["skeleton_person"]), height, width)
        else:
            skeleton = render_skeleton(keypoints, height, width)
        person_name, cloth_name = self.records[index]  # type: ignore[misc]
        suffix = "" if self.paired else f"__{Path(cloth_name).stem}"
        return RawSample(
            person=person,
            inpaint_image=composite_from_files(files, agnostic, mask, height, width),
            inpaint_mask=mask,
            agnostic=agnostic,
            garment_front=garment,
            garment_front_mask=garment_mask,
            garment_back=garment,
            garment_back_mask=garment_mask,
            skeleton_person=skeleton,
            person_keypoints=keypoints,
            view=PersonView.FRONT.value,
            garment_view=GarmentView.FRONT.value,
            sample_id=f"{self.split}/{Path(person_name).stem}{suffix}",
        )
