"""`TryOnPreprocessor`: raw photos → everything MV-VTON's pipeline needs (pose, masks, routed view, pre-warp)."""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Literal

import cv2
import numpy as np
from PIL import Image

from mvvton.constants import DEFAULT_HEIGHT, DEFAULT_WIDTH, GarmentView, PersonView
from mvvton.errors import InvalidArgumentError, MissingDependencyError, NoPersonDetectedError, SizeBudgetError
from mvvton.preprocessing.garment import HumanParser, garment_keypoints, garment_mask
from mvvton.preprocessing.io import ImageInput, load_image, load_image_and_alpha
from mvvton.preprocessing.masks import (
    agnostic_image,
    agnostic_mask_from_parsing,
    upper_body_agnostic_mask,
)
from mvvton.preprocessing.person import (
    MediaPipePoseEstimator,
    PoseEstimator,
    person_mask_from_keypoints,
    with_estimated_hips,
)
from mvvton.preprocessing.pose import normalize_keypoints, render_skeleton
from mvvton.preprocessing.view import classify_person_view, garment_view_for
from mvvton.preprocessing.warp import warp_garment, warped_composite
from mvvton.utils.validation import VIEW_CHOICES, check_choice, check_integer, split_keypoints

logger = logging.getLogger(__name__)

PadMode = Literal["white", "edge"]


@dataclass(frozen=True)
class CropBox:
    """Where the resized photo sits in the `(height, width)` canvas.

    The original photo of size `original_size = (orig_h, orig_w)` was resized by `scale` to `(box_h, box_w)` and
    placed at `(left, top)`. `paste_back` undoes it.
    """

    left: int
    top: int
    box_width: int
    box_height: int
    scale: float
    original_size: tuple[int, int]

    def to_canvas(self, keypoints: np.ndarray) -> np.ndarray:
        """Original-photo pixel keypoints `(18, 3)` → canvas pixels."""
        out = np.array(keypoints, dtype=np.float32, copy=True)
        out[:, 0] = out[:, 0] * self.scale + self.left
        out[:, 1] = out[:, 1] * self.scale + self.top
        return out

    def to_original(self, keypoints: np.ndarray) -> np.ndarray:
        """Canvas pixel keypoints `(18, 3)` → original-photo pixels."""
        out = np.array(keypoints, dtype=np.float32, copy=True)
        out[:, 0] = (out[:, 0] - self.left) / self.scale
        out[:, 1] = (out[:, 1] - self.top) / self.scale
        return out

    def paste_back(
        self, result: np.ndarray | Image.Image, original: np.ndarray | Image.Image, mask: np.ndarray | None = None
    ) -> np.ndarray:
        """Put a canvas-sized `result` back into the original photo.

        Args:
            result: `(height, width, 3)` uint8 canvas (e.g. the try-on output).
            original: the original photo, `(orig_h, orig_w, 3)` uint8.
            mask: optional canvas-sized `(height, width)` mask in [0, 1]; only there is `result` used (soft blend),
                elsewhere the original pixels are kept exactly.
        Returns:
            `(orig_h, orig_w, 3)` uint8 RGB.
        """
        canvas = np.asarray(result)
        base = np.asarray(original)
        orig_h, orig_w = self.original_size
        if base.shape[:2] != (orig_h, orig_w):
            raise ValueError(f"original has size {base.shape[:2]}, the crop box was made for {(orig_h, orig_w)}")
        rows = slice(self.top, self.top + self.box_height)
        cols = slice(self.left, self.left + self.box_width)
        up = cv2.INTER_CUBIC if self.scale < 1 else cv2.INTER_AREA
        restored = cv2.resize(canvas[rows, cols], (orig_w, orig_h), interpolation=up)
        if mask is None:
            return np.clip(restored, 0, 255).astype(np.uint8)
        m = cv2.resize(np.asarray(mask, dtype=np.float32)[rows, cols], (orig_w, orig_h), interpolation=cv2.INTER_LINEAR)
        out = base.astype(np.float32) * (1.0 - m[..., None]) + restored.astype(np.float32) * m[..., None]
        return np.round(np.clip(out, 0, 255)).astype(np.uint8)


def fit_to_canvas(
    image: np.ndarray, height: int, width: int, *, pad: PadMode = "white", interpolation: int | None = None
) -> tuple[np.ndarray, CropBox]:
    """Resize keeping the aspect ratio and pad to `(height, width)` (centred).

    Args:
        image: `(h, w, C)` or `(h, w)` array.
        pad: "white" (255 for uint8 images, 0 for float masks) or "edge" (replicate the borders).
    Returns:
        `(canvas, crop_box)`.
    """
    h, w = image.shape[:2]
    scale = min(height / h, width / w)
    box_w, box_h = max(1, min(width, round(w * scale))), max(1, min(height, round(h * scale)))
    if interpolation is None:
        interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    resized = cv2.resize(image, (box_w, box_h), interpolation=interpolation)
    if resized.ndim == 2 and image.ndim == 3:
        resized = resized[..., None]
    left, top = (width - box_w) // 2, (height - box_h) // 2
    pads = ((top, height - box_h - top), (left, width - box_w - left)) + (((0, 0),) if resized.ndim == 3 else ())
    if pad == "edge":
        canvas = np.pad(resized, pads, mode="edge")
    elif pad == "white":
        fill = 255 if resized.dtype == np.uint8 else 0
        canvas = np.pad(resized, pads, mode="constant", constant_values=fill)
    else:
        raise ValueError(f"pad must be 'white' or 'edge', got {pad!r}")
    return canvas, CropBox(left, top, box_w, box_h, float(scale), (h, w))


def _pad_mask(mask: np.ndarray, box: CropBox, height: int, width: int) -> np.ndarray:
    resized = cv2.resize(mask.astype(np.float32), (box.box_width, box.box_height), interpolation=cv2.INTER_LINEAR)
    canvas = np.zeros((height, width), dtype=np.float32)
    canvas[box.top : box.top + box.box_height, box.left : box.left + box.box_width] = resized
    return (canvas > 0.5).astype(np.float32)


@dataclass
class PreprocessedTryOn:
    """Everything the MV-VTON pipeline consumes for one (person, garment front, garment back) triple.

    Images are `(height, width, 3)` uint8 RGB, masks `(height, width)` float32 in {0, 1}, keypoints `(18, 3)` float32
    (pixels + confidence, COCO-18), all in canvas coordinates. `inpaint_mask` is 1 where the model regenerates.
    Garment images are shown on white outside their masks; `crop_box` maps canvas ↔ original person photo.
    `timings` holds per-stage milliseconds.
    """

    person: np.ndarray
    person_keypoints: np.ndarray
    person_keypoints_normalized: np.ndarray
    person_skeleton: np.ndarray
    person_mask: np.ndarray
    inpaint_mask: np.ndarray
    agnostic: np.ndarray
    view: PersonView
    routed_garment: GarmentView
    garment_front: np.ndarray
    garment_back: np.ndarray
    garment_front_mask: np.ndarray
    garment_back_mask: np.ndarray
    garment_front_keypoints: np.ndarray
    garment_back_keypoints: np.ndarray
    garment_front_skeleton: np.ndarray
    garment_back_skeleton: np.ndarray
    warped_garment: np.ndarray
    warped_mask: np.ndarray
    warped_composite: np.ndarray
    crop_box: CropBox
    warnings: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    def to_debug_images(self) -> dict[str, Image.Image]:
        """Name → PIL image of every intermediate (masks as L images, skeletons overlaid for a quick look)."""

        def gray(mask: np.ndarray) -> Image.Image:
            return Image.fromarray(np.round(np.clip(mask, 0, 1) * 255).astype(np.uint8), mode="L")

        def overlay(image: np.ndarray, skeleton: np.ndarray) -> Image.Image:
            drawn = skeleton.sum(axis=2, keepdims=True) > 0
            return Image.fromarray(np.where(drawn, skeleton, image // 2 + 64).astype(np.uint8))

        return {
            "person": Image.fromarray(self.person),
            "person_skeleton": Image.fromarray(self.person_skeleton),
            "person_pose_overlay": overlay(self.person, self.person_skeleton),
            "person_mask": gray(self.person_mask),
            "inpaint_mask": gray(self.inpaint_mask),
            "agnostic": Image.fromarray(self.agnostic),
            "garment_front": Image.fromarray(self.garment_front),
            "garment_back": Image.fromarray(self.garment_back),
            "garment_front_mask": gray(self.garment_front_mask),
            "garment_back_mask": gray(self.garment_back_mask),
            "garment_front_skeleton": overlay(self.garment_front, self.garment_front_skeleton),
            "garment_back_skeleton": overlay(self.garment_back, self.garment_back_skeleton),
            "warped_garment": Image.fromarray(self.warped_garment),
            "warped_mask": gray(self.warped_mask),
            "warped_composite": Image.fromarray(self.warped_composite),
        }


PREPROCESS_MAX_SIDE = 8192
PREPROCESS_MAX_PIXELS = 4096 * 4096


def check_preprocess_arguments(
    height: object, width: object, view: object, person_keypoints: object
) -> tuple[int, int, str, np.ndarray | None]:
    """Validate the preprocessor's call arguments before any image is decoded or any native (OpenCV / mediapipe)
    code runs: an absurd canvas would abort the process inside OpenCV. Raises typed `MVVTONError`s."""
    height = check_integer("height", height, 32, PREPROCESS_MAX_SIDE)
    width = check_integer("width", width, 32, PREPROCESS_MAX_SIDE)
    if height * width > PREPROCESS_MAX_PIXELS:
        raise SizeBudgetError(
            f"canvas {height}x{width} = {height * width:,} pixels is above the preprocessor's limit of "
            f"{PREPROCESS_MAX_PIXELS:,}; the released models work at 512x384"
        )
    view = check_choice("view", view.value if isinstance(view, PersonView) else view, VIEW_CHOICES)
    keypoints = split_keypoints(person_keypoints)
    if len(keypoints) > 1:
        raise InvalidArgumentError(f"`person_keypoints`: one (18, 3) array per call, got {len(keypoints)}")
    return height, width, view, keypoints[0] if keypoints else None


class TryOnPreprocessor:
    """Raw photos → `PreprocessedTryOn`, offline (numpy / OpenCV; mediapipe for pose, built lazily).

    Args:
        pose_estimator: any `PoseEstimator`; default `MediaPipePoseEstimator()` built on first use.
        human_parser: optional `HumanParser`; when given, the inpainting mask follows the exact VITON-HD / DressCode
            rule on its label map (`agnostic_mask_from_parsing`) instead of the pose-based drawing.
        person_pad: padding of the person canvas, "white" or "edge".
    """

    def __init__(
        self,
        pose_estimator: PoseEstimator | None = None,
        *,
        human_parser: HumanParser | None = None,
        person_pad: PadMode = "white",
    ) -> None:
        self._pose_estimator = pose_estimator
        self.human_parser = human_parser
        self.person_pad = person_pad

    @property
    def pose_estimator(self) -> PoseEstimator:
        """The pose estimator (the default mediapipe one is created on first access)."""
        if self._pose_estimator is None:
            self._pose_estimator = MediaPipePoseEstimator()
        return self._pose_estimator

    def __call__(
        self,
        person: ImageInput,
        garment_front: ImageInput,
        garment_back: ImageInput | None = None,
        *,
        mask_image: ImageInput | None = None,
        person_keypoints: np.ndarray | None = None,
        view: PersonView | str = "auto",
        height: int = DEFAULT_HEIGHT,
        width: int = DEFAULT_WIDTH,
    ) -> PreprocessedTryOn:
        """Preprocess one try-on request.

        Args:
            person: person photo (path, bytes, PIL or array).
            garment_front, garment_back: product photos; a missing back view reuses the front one (with a warning).
            mask_image: optional user mask (white = regenerate) overriding the automatic agnostic mask; any size, it is
                fitted like the person photo.
            person_keypoints: optional `(18, 3)` COCO-18 keypoints in ORIGINAL person-photo pixels; skips pose
                estimation.
            view: "auto", or force "front" / "side" / "back".
            height, width: canvas size (MV-VTON: 512 × 384).
        Raises:
            InvalidImageError, NoPersonDetectedError, NoGarmentDetectedError, MissingDependencyError.
        """
        height, width, view, person_keypoints = check_preprocess_arguments(height, width, view, person_keypoints)
        timings: dict[str, float] = {}
        notes: list[str] = []

        @contextmanager
        def stage(name: str) -> Iterator[None]:
            start = time.perf_counter()
            yield
            timings[name] = timings.get(name, 0.0) + (time.perf_counter() - start) * 1000.0

        t_total = time.perf_counter()
        # 1. Load and fit the inputs to the canvas.
        with stage("load"):
            person_arr = np.asarray(load_image(person, name="person image"))
            front_img, front_alpha = load_image_and_alpha(garment_front, name="front garment image")
            front_arr = np.asarray(front_img)
            if garment_back is None:
                message = "no back garment image given: the front image is reused for the back view"
                notes.append(message)
                warnings.warn(message, UserWarning, stacklevel=2)
                back_arr, back_alpha = front_arr, front_alpha
            else:
                back_img, back_alpha = load_image_and_alpha(garment_back, name="back garment image")
                back_arr = np.asarray(back_img)
            person_canvas, box = fit_to_canvas(person_arr, height, width, pad=self.person_pad)
            user_mask = None
            if mask_image is not None:
                # The mask belongs to the person photo: bring it to that photo's size, then through the same box.
                mask_arr = np.asarray(load_image(mask_image, name="mask image"), dtype=np.float32).mean(axis=2) / 255.0
                mask_arr = cv2.resize(mask_arr, person_arr.shape[1::-1], interpolation=cv2.INTER_LINEAR)
                user_mask = _pad_mask(mask_arr, box, height, width)
        # 2. Pose and person mask.
        with stage("pose"):
            if person_keypoints is not None:
                keypoints = box.to_canvas(np.asarray(person_keypoints, dtype=np.float32).reshape(18, 3))
                person_mask = self._person_mask_only(person_canvas, keypoints, notes)
            else:
                result = self.pose_estimator(person_canvas)
                keypoints = np.asarray(result.keypoints, dtype=np.float32)
                person_mask = np.asarray(result.person_mask, dtype=np.float32)
        # 3. View and hard selection.
        with stage("view"):
            person_view = classify_person_view(keypoints) if view == "auto" else PersonView(view)
            routed = garment_view_for(person_view, keypoints)
        # 4. Inpainting mask and agnostic image. Geometry uses guessed hips when the photo is cut above them.
        geometry_keypoints = with_estimated_hips(keypoints)
        with stage("mask"):
            if user_mask is not None:
                inpaint_mask = user_mask
            elif self.human_parser is not None:
                labels = np.asarray(self.human_parser(person_canvas))
                scheme = getattr(self.human_parser, "scheme", "atr")
                inpaint_mask = agnostic_mask_from_parsing(labels, keypoints, scheme=scheme)
            else:
                inpaint_mask = upper_body_agnostic_mask(geometry_keypoints, person_mask)
            agnostic = agnostic_image(person_canvas, inpaint_mask)
        # 5. Garments: mask on the original photo (its own background), then fit to the canvas.
        with stage("garment_mask"):
            garments = {}
            views = (("front", front_arr, front_alpha, GarmentView.FRONT), ("back", back_arr, back_alpha, GarmentView.BACK))
            for name, arr, alpha, gview in views:
                if name == "back" and garment_back is None:
                    g_canvas, g_mask = garments["front"][0], garments["front"][1]
                else:
                    # A cut-out (transparent background) product image carries its own mask.
                    use_alpha = alpha is not None and 0.02 < float((alpha > 127).mean()) < 0.98
                    mask = (alpha > 127).astype(np.float32) if use_alpha else garment_mask(arr)
                    g_canvas, g_box = fit_to_canvas(arr, height, width, pad="white")
                    g_mask = _pad_mask(mask, g_box, height, width)
                    g_canvas = np.where(g_mask[..., None] > 0, g_canvas, np.uint8(255)).astype(np.uint8)
                g_kp = garment_keypoints(g_mask, gview)
                garments[name] = (g_canvas, g_mask, g_kp, render_skeleton(g_kp, height, width))
        # 6. Pre-warp of the routed garment.
        with stage("warp"):
            r_img, r_mask, r_kp, _ = garments[routed.value]
            warped, warped_mask = warp_garment(
                r_img, r_mask, r_kp, geometry_keypoints, (height, width), clip_mask=inpaint_mask
            )
            composite = warped_composite(agnostic, warped, warped_mask)
        with stage("skeleton"):
            skeleton = render_skeleton(keypoints, height, width)
        timings["total"] = (time.perf_counter() - t_total) * 1000.0
        return PreprocessedTryOn(
            person=person_canvas,
            person_keypoints=keypoints,
            person_keypoints_normalized=normalize_keypoints(keypoints, height, width),
            person_skeleton=skeleton,
            person_mask=person_mask,
            inpaint_mask=inpaint_mask.astype(np.float32),
            agnostic=agnostic,
            view=person_view,
            routed_garment=routed,
            garment_front=garments["front"][0],
            garment_back=garments["back"][0],
            garment_front_mask=garments["front"][1],
            garment_back_mask=garments["back"][1],
            garment_front_keypoints=garments["front"][2],
            garment_back_keypoints=garments["back"][2],
            garment_front_skeleton=garments["front"][3],
            garment_back_skeleton=garments["back"][3],
            warped_garment=warped,
            warped_mask=warped_mask,
            warped_composite=composite,
            crop_box=box,
            warnings=notes,
            timings=timings,
        )

    def _person_mask_only(self, person: np.ndarray, keypoints: np.ndarray, notes: list[str]) -> np.ndarray:
        """Person mask when keypoints are given: the estimator's segmentation if available, else from keypoints."""
        try:
            return np.asarray(self.pose_estimator(person).person_mask, dtype=np.float32)
        except (MissingDependencyError, NoPersonDetectedError) as exc:
            message = f"person mask derived from keypoints (segmentation unavailable: {exc})"
            notes.append(message)
            logger.warning(message)
            height, width = person.shape[:2]
            return person_mask_from_keypoints(keypoints, height, width)
