"""The one sample schema every dataset returns, plus the small file readers the loaders share.

A dataset first gathers a :class:`RawSample` (numpy arrays in their file resolution), passes it through a
:class:`~mvvton.data.transforms.PairedTransform`, then turns it into the tensor dict below with :meth:`RawSample.to_dict`.

Sample dict (all tensors float32; `H, W` = the dataset's `height, width`):

=======================  ==============  =========  ==============================================================
key                      shape           range      meaning
=======================  ==============  =========  ==============================================================
`person`                 (3, H, W)       [-1, 1]    target / ground-truth person photo
`inpaint_image`          (3, H, W)       [-1, 1]    warped composite: agnostic person + pre-warped garment
`inpaint_mask`           (1, H, W)       [0, 1]     1 = region to regenerate (soft edges allowed)
`agnostic`               (3, H, W)       [-1, 1]    agnostic person (grey where masked); `inpaint_image` if unknown
`garment_front`          (3, H, W)       [-1, 1]    front garment image
`garment_back`           (3, H, W)       [-1, 1]    back garment image (= front for single-garment datasets)
`garment_front_mask`     (1, H, W)       {0, 1}     cloth mask of the front garment image
`garment_back_mask`      (1, H, W)       {0, 1}     cloth mask of the back garment image
`skeleton_person`        (3, H, W)       [-1, 1]    OpenPose-18 render of the person (black = -1)
`skeleton_front`         (3, H, W)       [-1, 1]    pose of the front garment (all -1 when unknown)
`skeleton_back`          (3, H, W)       [-1, 1]    pose of the back garment (all -1 when unknown)
`person_keypoints`       (18, 3)         px, conf   COCO-18 x, y in the returned tensor's pixels + confidence;
                                                    all zeros when the dataset has no keypoints
`view`                   str                        person view: 'front' | 'side' | 'back'
`garment_view`           str                        hard-selected garment: 'front' | 'back'
`sample_id`              str                        unique id within the dataset
=======================  ==============  =========  ==============================================================

`torch.utils.data.default_collate` stacks the tensors and turns the three strings into lists.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path

import cv2
import numpy as np
import torch

from mvvton.constants import NUM_KEYPOINTS, GarmentView, PersonView
from mvvton.errors import DatasetError

# Keys of the sample dict, in documentation order.
SAMPLE_TENSOR_KEYS: tuple[str, ...] = (
    "person", "inpaint_image", "inpaint_mask", "agnostic",
    "garment_front", "garment_back", "garment_front_mask", "garment_back_mask",
    "skeleton_person", "skeleton_front", "skeleton_back", "person_keypoints",
)  # fmt: skip
SAMPLE_STRING_KEYS: tuple[str, ...] = ("view", "garment_view", "sample_id")
SAMPLE_KEYS: tuple[str, ...] = SAMPLE_TENSOR_KEYS + SAMPLE_STRING_KEYS

# Cloth masks stored as JPEG are binarised at this grey level (as the official loaders do).
MASK_THRESHOLD = 128
# Grey level of the masked region of agnostic images (VITON-HD convention).
AGNOSTIC_GREY = 128
IMAGE_EXTENSIONS: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".webp", ".bmp")
# OpenPose BODY_25 -> COCO-18: COCO index i takes BODY_25 index BODY25_TO_COCO18[i] (BODY_25 adds MidHip=8 and feet).
BODY25_TO_COCO18: tuple[int, ...] = (0, 1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18)
BODY25_NUM_KEYPOINTS = 25


def read_image(path: str | Path) -> np.ndarray:
    """Read a colour image. Returns `(h, w, 3)` uint8 RGB; raises `DatasetError` if missing or undecodable."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise DatasetError(f"cannot read image {path}: file missing or not a decodable image (run `mvvton data check`)")
    return np.ascontiguousarray(image[..., ::-1])


def read_mask(path: str | Path, *, binarize: bool = False) -> np.ndarray:
    """Read a grey mask. Returns `(h, w)` float32 in [0, 1] (white = 1); `binarize` thresholds at `MASK_THRESHOLD`."""
    mask = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if mask is None:
        raise DatasetError(f"cannot read mask {path}: file missing or not a decodable image (run `mvvton data check`)")
    if binarize:
        return (mask >= MASK_THRESHOLD).astype(np.float32)
    return mask.astype(np.float32) / 255.0


def write_image(path: str | Path, image: np.ndarray, *, jpeg_quality: int = 95, png_compression: int = 1) -> None:
    """Write an `(h, w, 3)` uint8 RGB or `(h, w)` uint8 grey image; format from the suffix."""
    data = encode_image(image, Path(path).suffix, jpeg_quality=jpeg_quality, png_compression=png_compression)
    Path(path).write_bytes(data.tobytes())


def encode_image(image: np.ndarray, suffix: str, *, jpeg_quality: int = 95, png_compression: int = 1) -> np.ndarray:
    """Encode an RGB or grey uint8 image to the bytes of a `suffix` ('.jpg' / '.png') file (returned as uint8 array)."""
    array = image[..., ::-1] if image.ndim == 3 else image
    suffix = suffix.lower()
    if suffix in (".jpg", ".jpeg"):
        params = [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality]
    elif suffix == ".png":
        params = [cv2.IMWRITE_PNG_COMPRESSION, png_compression]
    else:
        params = []
    ok, buffer = cv2.imencode(suffix, np.ascontiguousarray(array), params)
    if not ok:
        raise DatasetError(f"cannot encode image as {suffix}")
    return buffer


def keypoints_from_openpose_json(path: str | Path) -> np.ndarray:
    """Read OpenPose JSON (`people[0].pose_keypoints_2d`, COCO-18 or BODY_25) or DressCode JSON (`keypoints`).

    Returns `(18, 3)` float32 pixel x, y + confidence in the file's own frame; zeros when no person is listed.
    """
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as error:
        raise DatasetError(f"cannot read keypoints {path}: {error}") from error
    if "keypoints" in data:  # DressCode: list of [x, y, score, id]
        flat = np.asarray(data["keypoints"], dtype=np.float32).reshape(-1, 4)[:, :3]
    else:
        people = data.get("people") or []
        if not people:
            return np.zeros((NUM_KEYPOINTS, 3), dtype=np.float32)
        flat = np.asarray(people[0]["pose_keypoints_2d"], dtype=np.float32).reshape(-1, 3)
    if flat.shape[0] == BODY25_NUM_KEYPOINTS:
        flat = flat[list(BODY25_TO_COCO18)]
    if flat.shape[0] != NUM_KEYPOINTS:
        raise DatasetError(f"{path}: expected 18 or 25 keypoints, found {flat.shape[0]}")
    return np.ascontiguousarray(flat, dtype=np.float32)


def keypoints_to_openpose_json(keypoints: np.ndarray) -> str:
    """`(18, 3)` keypoints -> OpenPose-format JSON text (one person, COCO-18 `pose_keypoints_2d`), 2-decimal floats."""
    values = [round(float(v), 2) for v in np.asarray(keypoints, dtype=np.float32).reshape(-1)]
    return json.dumps({"version": 1.3, "people": [{"pose_keypoints_2d": values}]})


def find_image(folder: Path, stem: str) -> Path | None:
    """The file `folder/stem.<ext>` for the first existing image extension, or None."""
    for ext in IMAGE_EXTENSIONS:
        candidate = folder / f"{stem}{ext}"
        if candidate.is_file():
            return candidate
    return None


def list_images(folder: Path) -> list[Path]:
    """Image files of `folder`, sorted by name."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)


def grey_out(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Agnostic image: `image` with the region `mask > 0.5` set to grey. `(h, w, 3)` uint8, `(h, w)` in [0, 1]."""
    out = image.copy()
    out[mask > 0.5] = AGNOSTIC_GREY
    return out


def hard_garment_view(view: PersonView | str, keypoints: np.ndarray | None = None) -> GarmentView:
    """MV-VTON hard selection: back views use the back garment, front views the front one; side views follow the
    arm-order rule on the keypoints (as the pipeline routes them at inference), or the front garment (the original
    test-time rule) when no keypoints are known."""
    view = PersonView(view)
    known = keypoints is not None and bool((np.asarray(keypoints)[:, 2] > 0).any())
    if view is PersonView.SIDE and known:
        from mvvton.preprocessing.view import garment_view_for

        return garment_view_for(view, np.asarray(keypoints, dtype=np.float32))
    return GarmentView.BACK if view is PersonView.BACK else GarmentView.FRONT


@dataclass
class RawSample:
    """One sample as numpy arrays before resizing.

    Person-frame arrays share one geometry: `person`, `inpaint_image`, `agnostic` `(h, w, 3)` uint8 RGB,
    `inpaint_mask` `(h, w)` float32 [0, 1] (1 = regenerate), `skeleton_person` `(h, w, 3)` uint8 or None,
    `person_keypoints` `(18, 3)` pixels + confidence or None. Garment arrays have their own geometry each:
    `garment_*` `(h', w', 3)` uint8, `garment_*_mask` `(h', w')` float32 {0, 1}, `skeleton_*` uint8 or None.
    """

    person: np.ndarray
    inpaint_image: np.ndarray
    inpaint_mask: np.ndarray
    garment_front: np.ndarray
    garment_front_mask: np.ndarray
    garment_back: np.ndarray
    garment_back_mask: np.ndarray
    view: str
    garment_view: str
    sample_id: str
    agnostic: np.ndarray | None = None
    skeleton_person: np.ndarray | None = None
    skeleton_front: np.ndarray | None = None
    skeleton_back: np.ndarray | None = None
    person_keypoints: np.ndarray | None = None
    extras: dict[str, object] = field(default_factory=dict)

    def replace(self, **changes: object) -> RawSample:
        """A copy with some fields replaced."""
        return replace(self, **changes)

    def to_dict(self) -> dict[str, torch.Tensor | str]:
        """Convert to the sample dict of the module docstring (arrays must already be at the final size)."""
        height, width = self.person.shape[:2]

        def image_tensor(image: np.ndarray | None) -> torch.Tensor:
            if image is None:  # unknown skeleton: black render
                return torch.full((3, height, width), -1.0)
            array = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float()
            return array / 127.5 - 1.0

        def mask_tensor(mask: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(np.ascontiguousarray(mask, dtype=np.float32))[None]

        keypoints = self.person_keypoints
        if keypoints is None:
            keypoints = np.zeros((NUM_KEYPOINTS, 3), dtype=np.float32)
        agnostic = self.agnostic if self.agnostic is not None else self.inpaint_image
        return {
            "person": image_tensor(self.person),
            "inpaint_image": image_tensor(self.inpaint_image),
            "inpaint_mask": mask_tensor(np.clip(self.inpaint_mask, 0.0, 1.0)),
            "agnostic": image_tensor(agnostic),
            "garment_front": image_tensor(self.garment_front),
            "garment_back": image_tensor(self.garment_back),
            "garment_front_mask": mask_tensor((self.garment_front_mask > 0.5).astype(np.float32)),
            "garment_back_mask": mask_tensor((self.garment_back_mask > 0.5).astype(np.float32)),
            "skeleton_person": image_tensor(self.skeleton_person),
            "skeleton_front": image_tensor(self.skeleton_front),
            "skeleton_back": image_tensor(self.skeleton_back),
            "person_keypoints": torch.from_numpy(np.asarray(keypoints, dtype=np.float32).copy()),
            "view": str(PersonView(self.view).value),
            "garment_view": str(GarmentView(self.garment_view).value),
            "sample_id": self.sample_id,
        }
