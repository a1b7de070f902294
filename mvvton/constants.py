"""Named constants shared across the library. No logic."""

from __future__ import annotations

from enum import Enum

# OpenPose COCO-18 keypoint order (the order of MV-VTON's skeleton renders).
COCO18_NAMES: tuple[str, ...] = (
    "nose", "neck",
    "right_shoulder", "right_elbow", "right_wrist",
    "left_shoulder", "left_elbow", "left_wrist",
    "right_hip", "right_knee", "right_ankle",
    "left_hip", "left_knee", "left_ankle",
    "right_eye", "left_eye", "right_ear", "left_ear",
)  # fmt: skip
COCO18_INDEX: dict[str, int] = {name: index for index, name in enumerate(COCO18_NAMES)}
NUM_KEYPOINTS = len(COCO18_NAMES)


class PersonView(str, Enum):
    """Which side of the person the photo shows."""

    FRONT = "front"
    SIDE = "side"
    BACK = "back"


class GarmentView(str, Enum):
    """Which product photo of the garment."""

    FRONT = "front"
    BACK = "back"


# MV-VTON geometry: images are 512 (H) x 384 (W); the VAE downsamples by 8.
DEFAULT_HEIGHT = 512
DEFAULT_WIDTH = 384
VAE_SCALE_FACTOR = 8
# Max pixels accepted for any input photo, checked from the header before decoding.
MAX_INPUT_PIXELS = 40_000_000
MIN_IMAGE_SIDE = 32  # smaller images (or masks) carry no usable detail
