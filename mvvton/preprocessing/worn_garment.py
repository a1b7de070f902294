"""A garment cut out of a photo of someone wearing it (TryOnDiffusion's I_c), offline.

Default path (no parsing model): the models bundled in the mediapipe wheel give the body parts: BlazePose + selfie
segmentation (torso and arm polygons, the hip line, person vs background), the face mesh (face region and a skin-colour
model fitted on this photo's cheeks and forehead, then refitted on the bare arms and neck) and the hand landmarker
(hands). GrabCut, seeded with the torso core as garment and face / hands / background / trousers as not-garment, then
separates the garment by its own colours. Quality rules (torso coverage, skin kept in the garment, fragmentation) try
again without the skin pixels, fall back to a second, colour-distance method and otherwise raise
`GarmentExtractionError` (or warn, with `strict=False`): never a silent near-empty or skin-filled garment. Pieces below
the hip line, hands in front of the garment and uncertain views are warned about. A `HumanParser` plugged in replaces
the heuristics by its label map.

The result is cropped and centred on white like a product photo, keeps the print's orientation (no mirroring) and is
the FRONT garment for a photo of the front, the BACK garment for a photo of the back.
"""

from __future__ import annotations

import logging
import threading
import warnings
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Any

import cv2
import numpy as np

from mvvton.constants import COCO18_INDEX, NUM_KEYPOINTS, GarmentView, PersonView
from mvvton.errors import (
    GarmentExtractionError,
    InvalidArgumentError,
    InvalidImageError,
    NoGarmentDetectedError,
)
from mvvton.preprocessing.garment import HumanParser, garment_keypoints
from mvvton.preprocessing.masks import head_mask
from mvvton.preprocessing.person import MediaPipePoseEstimator, PoseEstimator, _import_mediapipe, with_estimated_hips
from mvvton.preprocessing.view import decide_view, garment_view_for

logger = logging.getLogger(__name__)

WORKING_SIZE = 512  # longest side the segmentation runs at; the mask is upsampled to the photo afterwards
POSE_MIN_SIZE = 512  # smaller photos are upscaled to this longest side for the pose model
MIN_TORSO_COVERAGE = 0.7
MAX_BELOW_HIP_FRACTION = 0.05
MAX_FRAGMENTATION = 0.15
MAX_SKIN_FRACTION = 0.05  # of the garment's pixels
MIN_TORSO_TO_UPPER_ARM = 1.2  # shoulder-hip / shoulder-elbow below this: the pose's hips are too high
TYPICAL_TORSO_TO_UPPER_ARM = 1.6  # where such hips are moved to (1.34-1.93 on the 16 shared photos)
MIN_VIEW_CONFIDENCE = 0.6  # below it a front / back decision is warned about (3/4 views)
MAX_OCCLUDED_FRACTION = 0.03  # gaps left by hands in front of the garment, of the garment's area (a warning)
SKIN_DISTANCE = 2.5  # Mahalanobis distance to the photo's skin model below which a pixel counts as skin
ADVICE = "pass a product photo of the garment, or a parsing model (`parser=OnnxHumanParser(...)`)"


class GarmentCategory(str, Enum):
    """Which garment to cut out of a worn photo. Without a parser only `UPPER_BODY` is supported."""

    UPPER_BODY = "upper_body"
    LOWER_BODY = "lower_body"
    DRESS = "dress"


# Parser labels per category. LIP / VITON-HD: 5 upper-clothes, 6 dress, 7 coat, 9 pants, 10 jumpsuit, 12 skirt.
# ATR: 4 upper-clothes, 5 skirt, 6 pants, 7 dress.
CATEGORY_LABELS: dict[GarmentCategory, dict[str, tuple[int, ...]]] = {
    GarmentCategory.UPPER_BODY: {"lip": (5, 7), "vitonhd": (5, 7), "atr": (4,)},
    GarmentCategory.LOWER_BODY: {"lip": (9, 12), "vitonhd": (9, 12), "atr": (5, 6)},
    GarmentCategory.DRESS: {"lip": (6, 10), "vitonhd": (6, 10), "atr": (7,)},
}


class WornGarmentWarning(UserWarning):
    """The garment was extracted but is doubtful (side view, continues below the hips, failed quality check)."""


# --------------------------------------------------------------------------------------------------------------------
# Body parts from the bundled mediapipe models.

# Face-mesh landmarks on the cheeks and the forehead, where skin is rarely covered by hair, beard or glasses.
SKIN_SAMPLE_LANDMARKS = (50, 280, 101, 330, 205, 425, 151, 108, 337, 9)
# BlazePose-33: (wrist, pinky, index, thumb) per side, a coarse hand when the hand landmarker misses it.
BLAZEPOSE_HANDS = ((15, 17, 19, 21), (16, 18, 20, 22))


@dataclass
class BodyParts:
    """Body parts of one person photo, all in that photo's pixels.

    Attributes:
        keypoints: `(18, 3)` COCO-18 keypoints (pixels + confidence).
        person_mask: `(H, W)` float32 {0, 1}, person vs background.
        face_mask: `(H, W)` float32 {0, 1}: face-mesh hull, or the keypoint head ellipse when no face was found.
        hands_mask: `(H, W)` float32 {0, 1}.
        skin_samples: `(N, 3)` float32 Lab pixels of bare skin of this person (cheeks / forehead, else palms); may
            be empty.
        skin_source: "face", "hands" or "none".
        landmarks, world_landmarks: the raw BlazePose `(33, 4)` landmarks (normalised image / metric 3-D) when the
            pose model ran; they let `decide_view` see a head turned back over the shoulder. `None` otherwise.
    """

    keypoints: np.ndarray
    person_mask: np.ndarray
    face_mask: np.ndarray
    hands_mask: np.ndarray
    skin_samples: np.ndarray
    skin_source: str = "none"
    landmarks: np.ndarray | None = None
    world_landmarks: np.ndarray | None = None

    def resized(self, height: int, width: int) -> BodyParts:
        """The same parts for the photo resized to `(height, width)`."""
        old_h, old_w = self.person_mask.shape[:2]
        keypoints = np.array(self.keypoints, dtype=np.float32, copy=True)
        keypoints[:, 0] *= width / old_w
        keypoints[:, 1] *= height / old_h

        def mask(m: np.ndarray) -> np.ndarray:
            small = cv2.resize(np.asarray(m, dtype=np.float32), (width, height), interpolation=cv2.INTER_LINEAR)
            return (small > 0.5).astype(np.float32)

        return BodyParts(keypoints, mask(self.person_mask), mask(self.face_mask), mask(self.hands_mask),
                         self.skin_samples, self.skin_source, self.landmarks, self.world_landmarks)  # fmt: skip


def _lab(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2LAB).astype(np.float32)


def _disk(radius: float) -> np.ndarray:
    radius = max(1, int(round(radius)))
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))


def _hull_mask(points: np.ndarray, height: int, width: int, grow: float = 0.0) -> np.ndarray:
    canvas = np.zeros((height, width), dtype=np.uint8)
    hull = cv2.convexHull(np.round(points).astype(np.int32))
    cv2.fillConvexPoly(canvas, hull, 1)
    if grow > 0:
        canvas = cv2.dilate(canvas, _disk(grow))
    return canvas


def _confident(kp: np.ndarray, name: str, min_confidence: float = 0.1) -> np.ndarray | None:
    row = kp[COCO18_INDEX[name]]
    return row[:2].astype(np.float32) if row[2] > min_confidence else None


class WornPhotoAnalyzer:
    """Pose, person mask, face, skin colour and hands of a worn photo with mediapipe's bundled models.

    Nothing is downloaded: pose (BlazePose full) and selfie segmentation run through `MediaPipePoseEstimator`, the face
    mesh (`face_landmark.tflite`) on a head crop found by the pose, the hand landmarker (`hand_landmark_full.tflite`)
    on the whole photo. Graphs are built on first use and reused; calls are serialised with a lock.

    Args:
        pose_estimator: any `PoseEstimator`; default `MediaPipePoseEstimator()`.
        min_detection_confidence: face and hand detector threshold in [0, 1].
    """

    def __init__(self, pose_estimator: PoseEstimator | None = None, *, min_detection_confidence: float = 0.3) -> None:
        self._own_pose = pose_estimator is None
        self.pose_estimator = pose_estimator
        self.min_detection_confidence = min_detection_confidence
        self._face: Any = None
        self._hands: Any = None
        self._lock = threading.Lock()

    def _build(self) -> None:
        mp = _import_mediapipe()
        self._face = mp.solutions.face_mesh.FaceMesh(
            static_image_mode=True, max_num_faces=1, min_detection_confidence=self.min_detection_confidence
        )
        self._hands = mp.solutions.hands.Hands(
            static_image_mode=True, max_num_hands=2, model_complexity=1,
            min_detection_confidence=self.min_detection_confidence,
        )  # fmt: skip

    def close(self) -> None:
        """Release the mediapipe graphs (rebuilt on the next call)."""
        with self._lock:
            for graph in (self._face, self._hands):
                if graph is not None:
                    graph.close()
            self._face = self._hands = None
            if self._own_pose and isinstance(self.pose_estimator, MediaPipePoseEstimator):
                self.pose_estimator.close()

    def __enter__(self) -> WornPhotoAnalyzer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _face_landmarks(self, image: np.ndarray, keypoints: np.ndarray) -> np.ndarray | None:
        """`(468, 2)` face-mesh landmarks in pixels, searched in a head crop (the detector wants a large face)."""
        height, width = image.shape[:2]
        head = [p for p in (_confident(keypoints, n, 0.3) for n in ("nose", "right_eye", "left_eye", "right_ear",
                                                                     "left_ear")) if p is not None]  # fmt: skip
        crops = []
        if head:
            points = np.array(head)
            center = points.mean(axis=0)
            shoulders = [p for p in (_confident(keypoints, "right_shoulder"), _confident(keypoints, "left_shoulder"))
                         if p is not None]  # fmt: skip
            reach = float(np.ptp(points[:, 0])) * 1.6
            if len(shoulders) == 2:
                reach = max(reach, 0.6 * float(np.hypot(*(shoulders[0] - shoulders[1]))))
            reach = max(reach, 0.08 * max(height, width), 12.0)
            x0, x1 = int(max(0, center[0] - reach)), int(min(width, center[0] + reach))
            y0, y1 = int(max(0, center[1] - 1.2 * reach)), int(min(height, center[1] + reach))
            if x1 - x0 > 8 and y1 - y0 > 8:
                crops.append((x0, y0, x1, y1))
        crops.append((0, 0, width, height))
        for x0, y0, x1, y1 in crops:
            crop = image[y0:y1, x0:x1]
            factor = 256.0 / max(crop.shape[:2])
            if factor > 1.0:  # the face detector misses faces smaller than ~1/5 of its 128 px input
                crop = cv2.resize(crop, None, fx=factor, fy=factor, interpolation=cv2.INTER_CUBIC)
            result = self._face.process(np.ascontiguousarray(crop))
            if result.multi_face_landmarks:
                marks = result.multi_face_landmarks[0].landmark
                xy = np.array([(m.x, m.y) for m in marks], dtype=np.float32)
                xy[:, 0] = x0 + xy[:, 0] * (x1 - x0)
                xy[:, 1] = y0 + xy[:, 1] * (y1 - y0)
                return xy
        return None

    def _hand_landmarks(self, image: np.ndarray, keypoints: np.ndarray, unit: float) -> list[np.ndarray]:
        """`(21, 2)` pixel landmarks per hand whose wrist is near a pose wrist (drops detections on prints)."""
        height, width = image.shape[:2]
        result = self._hands.process(np.ascontiguousarray(image))
        wrists = [
            p for p in (_confident(keypoints, "right_wrist"), _confident(keypoints, "left_wrist")) if p is not None
        ]
        hands = []
        for marks in result.multi_hand_landmarks or []:
            xy = np.array([(m.x * width, m.y * height) for m in marks.landmark], dtype=np.float32)
            if not wrists or min(float(np.hypot(*(xy[0] - w))) for w in wrists) < 0.8 * unit:
                hands.append(xy)
        return hands

    def __call__(
        self, image: np.ndarray, keypoints: np.ndarray | None = None, person_mask: np.ndarray | None = None
    ) -> BodyParts:
        """Analyse one photo.

        Args:
            image: `(H, W, 3)` uint8 RGB.
            keypoints, person_mask: optional pose result already computed for this photo (skips the pose model when
                both are given).
        Raises:
            NoPersonDetectedError: from the pose estimator.
        """
        image = _check_image(image)
        height, width = image.shape[:2]
        landmarks33 = world_landmarks = None
        if keypoints is None or person_mask is None:
            if self.pose_estimator is None:
                self.pose_estimator = MediaPipePoseEstimator()
            # The pose detector misses small people (e.g. 176 x 256 crops): run it on an upscaled copy.
            factor = max(1.0, POSE_MIN_SIZE / max(height, width))
            upscaled = image if factor == 1.0 else cv2.resize(image, None, fx=factor, fy=factor,
                                                              interpolation=cv2.INTER_CUBIC)  # fmt: skip
            result = self.pose_estimator(upscaled)
            if keypoints is None:
                keypoints = np.array(result.keypoints, dtype=np.float32, copy=True)
                keypoints[:, :2] *= np.array([width / upscaled.shape[1], height / upscaled.shape[0]], np.float32)
            if person_mask is None:
                person_mask = cv2.resize(np.asarray(result.person_mask, np.float32), (width, height),
                                         interpolation=cv2.INTER_LINEAR)  # fmt: skip
            landmarks33 = result.extras.get("landmarks")
            world_landmarks = result.extras.get("world_landmarks")
        keypoints = _check_keypoints(keypoints)
        person_mask = (np.asarray(person_mask, dtype=np.float32) > 0.5).astype(np.float32)
        unit = _body_unit(keypoints)
        with self._lock:
            if self._face is None:
                self._build()
            face = self._face_landmarks(image, keypoints)
            hands = self._hand_landmarks(image, keypoints, unit)
        lab = _lab(image)
        skin_samples = np.zeros((0, 3), dtype=np.float32)
        skin_source = "none"
        if face is not None:
            face_width = float(np.ptp(face[:, 0]))
            face_mask = _hull_mask(face, height, width, grow=0.04 * face_width)
            patches = np.zeros((height, width), dtype=np.uint8)
            for index in SKIN_SAMPLE_LANDMARKS:
                centre = (int(round(face[index, 0])), int(round(face[index, 1])))
                cv2.circle(patches, centre, max(1, int(0.06 * face_width)), 1, -1)
            skin_samples = lab[(patches > 0) & (person_mask > 0.5)]
            skin_source = "face"
        else:
            face_mask = (head_mask(keypoints, height, width) > 0.5).astype(np.uint8)
        hands_mask = np.zeros((height, width), dtype=np.uint8)
        palms = np.zeros((height, width), dtype=np.uint8)
        for hand in hands:
            size = float(np.hypot(*(hand[9] - hand[0])))
            hands_mask |= _hull_mask(hand, height, width, grow=0.25 * size)
            palms |= _hull_mask(hand[[0, 5, 9, 13, 17]], height, width)
        if landmarks33 is not None:  # coarse hands from BlazePose where the hand landmarker found none
            for ids in BLAZEPOSE_HANDS:
                points = np.asarray(landmarks33)[list(ids)]
                if points[:, 3].min() < 0.5:
                    continue
                xy = points[:, :2] * np.array([width - 1, height - 1], dtype=np.float32)
                if not hands_mask[int(np.clip(xy[0, 1], 0, height - 1)), int(np.clip(xy[0, 0], 0, width - 1))]:
                    size = float(np.hypot(*(xy[2] - xy[0])))
                    hands_mask |= _hull_mask(xy, height, width, grow=0.6 * size)
        if skin_source == "none" and palms.any():
            skin_samples = lab[(cv2.erode(palms, _disk(2)) > 0) & (person_mask > 0.5)]
            skin_source = "hands" if len(skin_samples) else "none"
        return BodyParts(
            keypoints=keypoints,
            person_mask=person_mask,
            face_mask=face_mask.astype(np.float32),
            hands_mask=hands_mask.astype(np.float32),
            skin_samples=skin_samples.astype(np.float32),
            skin_source=skin_source,
            landmarks=None if landmarks33 is None else np.asarray(landmarks33, dtype=np.float32),
            world_landmarks=None if world_landmarks is None else np.asarray(world_landmarks, dtype=np.float32),
        )


def body_parts_from_keypoints(image: np.ndarray, keypoints: np.ndarray, person_mask: np.ndarray) -> BodyParts:
    """Body parts without the face / hand models: the keypoint head ellipse as face, no hands, no skin samples."""
    image = _check_image(image)
    keypoints = _check_keypoints(keypoints)
    height, width = image.shape[:2]
    return BodyParts(
        keypoints=keypoints,
        person_mask=(np.asarray(person_mask, dtype=np.float32) > 0.5).astype(np.float32),
        face_mask=(head_mask(keypoints, height, width) > 0.5).astype(np.float32),
        hands_mask=np.zeros((height, width), dtype=np.float32),
        skin_samples=np.zeros((0, 3), dtype=np.float32),
    )


# --------------------------------------------------------------------------------------------------------------------
# Torso geometry and the quality check.


def _check_image(image: np.ndarray) -> np.ndarray:
    image = np.ascontiguousarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise InvalidImageError(f"a worn photo must be an (H, W, 3) uint8 RGB array, got {image.shape} {image.dtype}")
    return image


def _check_keypoints(keypoints: np.ndarray) -> np.ndarray:
    kp = np.asarray(keypoints, dtype=np.float32)
    if kp.shape != (NUM_KEYPOINTS, 3):
        raise InvalidArgumentError(f"keypoints must have shape ({NUM_KEYPOINTS}, 3), got {kp.shape}")
    return kp


def lowered_hips(keypoints: np.ndarray) -> tuple[np.ndarray, float | None]:
    """Hips the pose model put too high (at the elbows, seen on a small side-view photo), moved down the torso axis.

    The shoulder-to-hip distance is anatomically ~1.6 x the shoulder-to-elbow one; below
    `MIN_TORSO_TO_UPPER_ARM` the hips are moved so that it is `TYPICAL_TORSO_TO_UPPER_ARM`.

    Args:
        keypoints: `(18, 3)` COCO-18 keypoints (pixels + confidence).
    Returns:
        `(keypoints, ratio)`: a copy with the hips moved and the measured ratio, or the keypoints unchanged and `None`
        when the ratio is plausible or cannot be measured (no shoulders, hips or elbows).
    """
    kp = _check_keypoints(keypoints).copy()
    frame = TorsoFrame.from_keypoints(kp)
    arms = []
    for side in ("right", "left"):
        shoulder, elbow = _confident(kp, f"{side}_shoulder"), _confident(kp, f"{side}_elbow")
        if shoulder is not None and elbow is not None:
            arms.append(float(np.hypot(*(elbow - shoulder))))
    if frame is None or not arms or max(arms) < 4.0:
        return kp, None
    ratio = frame.length / max(arms)
    if ratio >= MIN_TORSO_TO_UPPER_ARM:
        return kp, None
    shift = frame.down * (TYPICAL_TORSO_TO_UPPER_ARM * max(arms) - frame.length)
    for name in ("right_hip", "left_hip"):
        if kp[COCO18_INDEX[name], 2] > 0.1:
            kp[COCO18_INDEX[name], :2] += shift
    return kp, ratio


def _body_unit(keypoints: np.ndarray) -> float:
    frame = TorsoFrame.from_keypoints(keypoints)
    return max(frame.length, 8.0) if frame is not None else 32.0


@dataclass
class TorsoFrame:
    """The torso as a frame: origin at the shoulder midpoint, `down` towards the hip midpoint, `side` across.

    `length` is the shoulder-to-hip distance in pixels; `half_top` / `half_bottom` the half widths at shoulders / hips
    (at least 0.18 × length, so profiles get a usable width). Hips are guessed from the shoulders for photos cut above
    them (`with_estimated_hips`).
    """

    shoulders: np.ndarray  # (2, 2): right, left
    hips: np.ndarray  # (2, 2): right, left
    origin: np.ndarray
    down: np.ndarray
    side: np.ndarray
    length: float
    half_top: float
    half_bottom: float

    @classmethod
    def from_keypoints(cls, keypoints: np.ndarray) -> TorsoFrame | None:
        kp = with_estimated_hips(keypoints)
        names = ("right_shoulder", "left_shoulder", "right_hip", "left_hip")
        points = [_confident(kp, n) for n in names]
        if any(p is None for p in points):
            return None
        rs, ls, rh, lh = points
        origin = (rs + ls) / 2
        axis = (rh + lh) / 2 - origin
        length = float(np.hypot(*axis))
        if length < 4.0:
            return None
        down = (axis / length).astype(np.float32)
        side = np.array([-down[1], down[0]], dtype=np.float32)
        half_top = max(abs(float(np.dot(ls - rs, side))) / 2, 0.18 * length)
        half_bottom = max(abs(float(np.dot(lh - rh, side))) / 2, 0.18 * length)
        return cls(np.stack([rs, ls]), np.stack([rh, lh]), origin, down, side, length, half_top, half_bottom)

    def coordinates(self, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
        """Per pixel `(t, u)`: `t` along the torso in torso lengths (0 shoulders, 1 hip line), `u` across in pixels."""
        ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
        dx, dy = xs - self.origin[0], ys - self.origin[1]
        t = (dx * self.down[0] + dy * self.down[1]) / self.length
        u = dx * self.side[0] + dy * self.side[1]
        return t, u

    def half_width(self, t: np.ndarray) -> np.ndarray:
        return self.half_top + (self.half_bottom - self.half_top) * np.clip(t, 0.0, 1.0)

    def quad(self, height: int, width: int) -> np.ndarray:
        """The torso polygon (shoulders and hips) as an `(H, W)` uint8 {0, 1} mask; widened for profiles."""
        t, u = self.coordinates(height, width)
        corners = np.array([self.shoulders[0], self.shoulders[1], self.hips[1], self.hips[0]], dtype=np.float32)
        canvas = np.zeros((height, width), dtype=np.uint8)
        cv2.fillPoly(canvas, [np.round(corners).astype(np.int32)], 1)
        # Profiles: the shoulder line hides the torso's depth; the minimal half width stands in for it.
        canvas |= ((t >= 0) & (t <= 1) & (np.abs(u) <= 0.18 * self.length)).astype(np.uint8)
        return canvas


@dataclass
class GarmentQuality:
    """Measured on the full-photo garment mask.

    Attributes:
        torso_coverage: fraction of the torso polygon (inside the person) covered by the garment.
        below_hip_fraction: fraction of the garment below the hip line.
        fragmentation: fraction of the garment outside its largest connected piece.
        pieces: connected pieces larger than 1 % of the garment.
        area_fraction: garment area / person area.
        skin_fraction: fraction of the garment that is skin by the photo's skin model (0 when not measured).
        occluded_fraction: gaps that hands in front of the garment cut into it (pixels a closing of the garment
            adds on the hands), relative to the garment's area (0 when not measured).
    """

    torso_coverage: float
    below_hip_fraction: float
    fragmentation: float
    pieces: int
    area_fraction: float
    skin_fraction: float = 0.0
    occluded_fraction: float = 0.0

    def problems(self, category: GarmentCategory) -> list[str]:
        """Why the garment is not usable (empty when it is)."""
        found = []
        if self.area_fraction < 0.02:
            found.append(f"almost nothing was found ({self.area_fraction:.1%} of the person)")
        if category is GarmentCategory.UPPER_BODY and self.torso_coverage < MIN_TORSO_COVERAGE:
            found.append(f"it covers only {self.torso_coverage:.0%} of the torso (at least {MIN_TORSO_COVERAGE:.0%})")
        if self.fragmentation > MAX_FRAGMENTATION:
            found.append(f"it falls apart into {self.pieces} pieces ({self.fragmentation:.0%} outside the largest)")
        if self.skin_fraction > MAX_SKIN_FRACTION:
            found.append(
                f"it contains skin ({self.skin_fraction:.1%} of the garment is skin-coloured, at most "
                f"{MAX_SKIN_FRACTION:.0%}): bare skin the garment does not cover, or a garment of the skin's colour"
            )
        return found


def garment_quality(
    mask: np.ndarray,
    keypoints: np.ndarray,
    person_mask: np.ndarray,
    skin_mask: np.ndarray | None = None,
    occluder_mask: np.ndarray | None = None,
) -> GarmentQuality:
    """Quality measures of a garment mask against the pose (see `GarmentQuality`).

    Args:
        mask: `(H, W)` {0, 1} garment mask; keypoints `(18, 3)` pixels; person_mask `(H, W)` {0, 1}.
        skin_mask: optional `(H, W)` {0, 1} skin pixels of the photo; without it `skin_fraction` is 0.
        occluder_mask: optional `(H, W)` {0, 1} hands; without it `occluded_fraction` is 0.
    Raises:
        InvalidArgumentError: masks of different shapes.
    """
    garment = np.asarray(mask) > 0.5
    person = np.asarray(person_mask) > 0.5
    others = [person] + [np.asarray(m) for m in (skin_mask, occluder_mask) if m is not None]
    if garment.ndim != 2 or any(other.shape != garment.shape for other in others):
        raise InvalidArgumentError(
            "garment, person, skin and hand masks must be (H, W) arrays of one shape, got "
            f"{[garment.shape] + [other.shape for other in others]}"
        )
    height, width = garment.shape
    total = int(garment.sum())
    frame = TorsoFrame.from_keypoints(keypoints)
    if frame is None:
        raise GarmentExtractionError(f"the pose lacks shoulders or hips, so the torso cannot be located; {ADVICE}.")
    torso = (frame.quad(height, width) > 0) & person
    coverage = float((torso & garment).sum() / max(int(torso.sum()), 1))
    t, _ = frame.coordinates(height, width)
    below = float((garment & (t > 1.0)).sum() / max(total, 1))
    count, _, stats, _ = cv2.connectedComponentsWithStats(garment.astype(np.uint8), connectivity=8)
    areas = stats[1:, cv2.CC_STAT_AREA] if count > 1 else np.zeros(0, dtype=np.int64)
    fragmentation = float(1.0 - areas.max() / total) if total else 1.0
    pieces = int((areas >= 0.01 * max(total, 1)).sum())
    area_fraction = float(total / max(int(person.sum()), 1))
    skin = float((garment & (np.asarray(skin_mask) > 0.5)).sum() / max(total, 1)) if skin_mask is not None else 0.0
    occluded = 0.0
    if occluder_mask is not None and total:
        kernel = _disk(0.12 * frame.length)
        pad = kernel.shape[0]  # zeros around, so that the photo's edge does not act as garment in the closing
        padded = cv2.copyMakeBorder(garment.astype(np.uint8), pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0)
        closed = cv2.morphologyEx(padded, cv2.MORPH_CLOSE, kernel)[pad:-pad, pad:-pad] > 0
        occluded = float((closed & ~garment & (np.asarray(occluder_mask) > 0.5)).sum() / total)
    return GarmentQuality(coverage, below, fragmentation, pieces, area_fraction, skin, occluded)


# --------------------------------------------------------------------------------------------------------------------
# Colour models.


def _gaussian_distance(lab: np.ndarray, samples: np.ndarray, *, luminance_scale: float = 2.0) -> np.ndarray:
    """Mahalanobis distance of every pixel to a Gaussian fitted on `samples` (robustly: central 80 % by distance).

    Luminance spread is widened by `luminance_scale` (shading on arms and neck differs from the cheeks).
    """
    samples = np.asarray(samples, dtype=np.float32).reshape(-1, 3)
    median = np.median(samples, axis=0)
    spread = np.linalg.norm(samples - median, axis=1)
    kept = samples[spread <= np.percentile(spread, 80)] if len(samples) > 20 else samples
    mean = kept.mean(axis=0)
    cov = np.cov(kept, rowvar=False) + np.diag([9.0, 4.0, 4.0]).astype(np.float32)
    scale = np.diag([luminance_scale, 1.0, 1.0]).astype(np.float32)
    inv = np.linalg.inv(scale @ cov @ scale)
    diff = lab - mean
    return np.sqrt(np.maximum(np.einsum("...i,ij,...j->...", diff, inv, diff), 0.0))


def _mixture_distance(lab: np.ndarray, samples: np.ndarray, clusters: int = 3) -> np.ndarray:
    """Distance to the nearest of `clusters` k-means Gaussians fitted on `samples` (a garment's colours)."""
    samples = np.asarray(samples, dtype=np.float32).reshape(-1, 3)
    clusters = max(1, min(clusters, len(samples) // 20))
    if clusters == 1:
        return _gaussian_distance(lab, samples, luminance_scale=2.5)
    criteria = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 20, 0.5)
    cv2.setRNGSeed(0)
    _, labels, _ = cv2.kmeans(samples, clusters, None, criteria, 2, cv2.KMEANS_PP_CENTERS)
    distances = []
    for k in range(clusters):
        members = samples[labels.ravel() == k]
        if len(members) >= 10:
            distances.append(_gaussian_distance(lab, members, luminance_scale=2.5))
    return np.min(np.stack(distances), axis=0)


# --------------------------------------------------------------------------------------------------------------------
# The two extraction methods (upper body).


@dataclass
class _Regions:
    """Seed regions at working size (all bool `(H, W)`)."""

    candidate: np.ndarray  # where the garment may be: widened torso, arms, collar, inside the person
    core: np.ndarray  # surely garment: the middle of the torso, minus skin
    excluded: np.ndarray  # surely not garment: background, face, hands, head, legs
    skin: np.ndarray  # skin-like pixels (closer to the skin model than to the garment's colours)
    skin_measured: np.ndarray  # skin by the photo's skin model alone (or the YCrCb box): what the skin rule counts
    t: np.ndarray  # torso coordinate (0 shoulders, 1 hip line)
    garment_distance: np.ndarray  # distance to the garment's colours (Mahalanobis)
    skin_coloured_garment: bool


def _arm_polyline(keypoints: np.ndarray, side: str) -> list[np.ndarray]:
    chain = [_confident(keypoints, f"{side}_{joint}") for joint in ("shoulder", "elbow", "wrist")]
    points = []
    for point in chain:
        if point is None:
            break
        points.append(point)
    return points


def _sample_polyline(points: list[np.ndarray], step: float) -> np.ndarray:
    """Points every `step` pixels along a polyline, `(N, 2)`."""
    out = [points[0]]
    for a, b in zip(points[:-1], points[1:]):
        length = float(np.hypot(*(b - a)))
        count = max(1, int(length / max(step, 1.0)))
        out.extend(a + (b - a) * (i / count) for i in range(1, count + 1))
    return np.array(out, dtype=np.float32)


def _beyond_sleeve(
    arm: list[np.ndarray], sleeve_like: np.ndarray, person: np.ndarray, unit: float
) -> tuple[np.ndarray, np.ndarray]:
    """Walk from the shoulder down the arm while the arm is sleeve-like; return (sleeve band, arm band beyond it).

    The sleeve ends at the first point where, averaged over two steps, less than half of a small disk on the arm's
    axis is sleeve-like (not skin; garment-coloured when no skin model exists).
    """
    height, width = person.shape
    sleeve = np.zeros((height, width), dtype=np.uint8)
    beyond = np.zeros((height, width), dtype=np.uint8)
    if len(arm) < 2:
        return sleeve.astype(bool), beyond.astype(bool)
    samples = _sample_polyline(arm, 0.04 * unit)
    radius = max(1, int(0.07 * unit))
    fractions = []
    for x, y in samples:
        xi, yi = int(round(x)), int(round(y))
        y0, y1, x0, x1 = (
            max(0, yi - radius),
            min(height, yi + radius + 1),
            max(0, xi - radius),
            min(width, xi + radius + 1),
        )
        on_person = person[y0:y1, x0:x1]
        fractions.append(float(sleeve_like[y0:y1, x0:x1][on_person].mean()) if on_person.sum() > 2 else 0.0)
    fractions = np.array(fractions + [fractions[-1]], dtype=np.float32)
    pair = (fractions[:-1] + fractions[1:]) / 2
    ends = np.flatnonzero(pair < 0.5)
    end = int(ends[0]) if ends.size else len(samples)
    thickness = max(2, int(0.25 * unit))
    polyline = [tuple(int(v) for v in np.round(p)) for p in samples]
    if end > 0:
        cv2.polylines(sleeve, [np.array(polyline[: end + 1], np.int32)], False, 1, thickness=thickness)
    if end < len(samples):
        # Start the excluded band a little away from the shoulder joint so it does not bite into the torso.
        start = max(end, int(np.ceil(0.12 * unit / max(0.04 * unit, 1.0))))
        if start < len(samples) - 1:
            cv2.polylines(beyond, [np.array(polyline[start:], np.int32)], False, 1, thickness=thickness)
    return sleeve > 0, beyond > 0


def _skin_colour_box(image: np.ndarray) -> np.ndarray:
    """The classic YCrCb skin box (Chai & Ngan 1999): a prior for photos without a face or hands, `(H, W)` bool."""
    ycrcb = cv2.cvtColor(image, cv2.COLOR_RGB2YCrCb)
    cr, cb = ycrcb[..., 1], ycrcb[..., 2]
    return (cr >= 135) & (cr <= 173) & (cb >= 77) & (cb <= 127)


def _core_and_garment_colours(
    lab: np.ndarray, core_zone: np.ndarray, skin_distance: np.ndarray | None
) -> tuple[np.ndarray, bool, np.ndarray]:
    """The torso core minus skin, whether the garment is skin-coloured, and every pixel's distance to its colours."""
    core = core_zone
    skin_coloured = False
    if skin_distance is not None:
        skin_coloured = bool((skin_distance[core] < 2.0).mean() > 0.8) if core.any() else False
        if not skin_coloured and (core & (skin_distance >= 3.0)).sum() >= 30:
            core = core & (skin_distance >= 3.0)
    if core.sum() >= 30:
        garment_distance = _mixture_distance(lab, lab[core])
    else:
        garment_distance = np.full(core.shape, 9.0, dtype=np.float32)
    return core, skin_coloured, garment_distance


def _body_skin_distance(
    lab: np.ndarray,
    parts: BodyParts,
    frame: TorsoFrame,
    seeds_distance: np.ndarray,
    garment_distance: np.ndarray,
    max_extra: int = 4000,
) -> np.ndarray:
    """The skin model refitted on the face (or palm) samples plus this body's surely bare arm and neck pixels.

    Bare = on the arms or the neck, off the torso, close to the seed model (distance < 2) and far from the garment's
    colours (> 3), so a sleeve does not teach the model its colour. Returns the per-pixel distance to the nearer of the
    seed model and the refitted one, or `seeds_distance` itself when fewer than 50 bare pixels are found.
    """
    height, width = seeds_distance.shape
    t, u = frame.coordinates(height, width)
    unit = frame.length
    limbs = np.zeros((height, width), dtype=np.uint8)
    for side in ("right", "left"):
        arm = _arm_polyline(parts.keypoints, side)
        if len(arm) >= 2:
            cv2.polylines(
                limbs, [np.round(np.array(arm)).astype(np.int32)], False, 1, thickness=max(2, int(0.3 * unit))
            )
    neck = (t > -0.3) & (t < -0.02) & (np.abs(u) < 0.12 * unit)
    on_torso = (t > 0.02) & (t < 1.3) & (np.abs(u) < frame.half_width(t) + 0.02 * unit)
    bare = ((limbs > 0) | neck) & ~on_torso & (parts.person_mask > 0.5)
    if parts.skin_source != "face":
        bare &= parts.face_mask < 0.5  # the keypoint head ellipse of a back view is hair
    bare &= (seeds_distance < 2.0) & (garment_distance > 3.0)
    if bare.sum() < 50:
        return seeds_distance
    extra = lab[bare]
    if len(extra) > max_extra:  # evenly spaced, deterministic
        extra = extra[np.linspace(0, len(extra) - 1, max_extra).astype(np.int64)]
    refitted = _gaussian_distance(lab, np.concatenate([parts.skin_samples, extra]))
    return np.minimum(seeds_distance, refitted)


def _regions(image: np.ndarray, parts: BodyParts, frame: TorsoFrame) -> _Regions:
    height, width = image.shape[:2]
    lab = _lab(cv2.GaussianBlur(image, (0, 0), 0.8))
    person = parts.person_mask > 0.5
    t, u = frame.coordinates(height, width)
    half = frame.half_width(t)
    unit = frame.length
    near_person = cv2.dilate(person.astype(np.uint8), _disk(0.03 * unit)) > 0
    torso = (t > -0.2) & (t < 1.3) & (np.abs(u) < 1.25 * half + 0.05 * unit)
    # Core: the middle of the torso, below the neckline and above the waist, minus skin (a V-neck, a bare back).
    core_zone = (t > 0.22) & (t < 0.65) & (np.abs(u) < 0.55 * half) & person
    seeds_distance = _gaussian_distance(lab, parts.skin_samples) if len(parts.skin_samples) >= 20 else None
    skin_distance = seeds_distance
    core, skin_coloured, garment_distance = _core_and_garment_colours(lab, core_zone, skin_distance)
    if seeds_distance is not None:
        # The face (or palms) seldom sees the light of the arms and the back: refit on this body's bare arms and neck.
        skin_distance = _body_skin_distance(lab, parts, frame, seeds_distance, garment_distance)
        if skin_distance is not seeds_distance:
            core, skin_coloured, garment_distance = _core_and_garment_colours(lab, core_zone, skin_distance)
    skin = np.zeros((height, width), dtype=bool)
    if skin_distance is not None:
        # A skin-coloured garment: trust only pixels much closer to the skin than to the garment.
        skin = (skin_distance < 2.0) & (skin_distance < 0.5 * garment_distance) if skin_coloured else (
            (skin_distance < 3.0) & (skin_distance < garment_distance))  # fmt: skip
    skin_box = _skin_colour_box(image)
    if parts.skin_source != "face":
        # Without a face (back views) the palms are a weak model: add the classic YCrCb skin box (Chai & Ngan 1999)
        # for pixels that do not have the garment's colours.
        skin |= skin_box & (garment_distance > 2.5)
    # What the skin rule counts: skin by this photo's skin model alone (not by the garment's colours), else the box.
    skin_measured = (skin_distance < SKIN_DISTANCE) if skin_distance is not None else skin_box
    sleeve_like = person & ~skin if (skin_distance is not None or skin.any()) else person & (garment_distance < 3.5)
    # Arms: the sleeve (walked from the shoulder while not skin) is a candidate, the bare arm beyond it is excluded.
    sleeves = np.zeros((height, width), dtype=bool)
    bare_arms = np.zeros((height, width), dtype=bool)
    for side in ("right", "left"):
        sleeve, beyond = _beyond_sleeve(_arm_polyline(parts.keypoints, side), sleeve_like, person, unit)
        sleeves |= sleeve
        bare_arms |= beyond
    # Arms hang next to the torso (and loose tops reach over them): only skin in the band is surely not garment.
    bare_arms &= ~((np.abs(u) < half) & (t > 0) & (t < 1.3)) & skin
    candidate = (torso | sleeves) & near_person
    excluded = ~near_person | (parts.face_mask > 0.5) | (parts.hands_mask > 0.5) | (t < -0.35) | (t > 1.3) | bare_arms
    # Skin far from every colour of the garment (bare shoulders, a midriff) is surely not garment.
    excluded |= skin & (garment_distance > 4.0)
    excluded &= ~core
    return _Regions(candidate, core, excluded, skin & person, skin_measured & person, t, garment_distance,
                    skin_coloured)  # fmt: skip


def _grabcut_method(image: np.ndarray, regions: _Regions, iterations: int = 4) -> np.ndarray:
    """GrabCut seeded by the regions: core = garment, excluded = not, candidate = probably garment unless skin."""
    labels = np.full(regions.t.shape, cv2.GC_PR_BGD, dtype=np.uint8)
    # Around and below the hip line only garment-coloured pixels start as "probably garment" (not the trousers).
    hip_band = (regions.t > 0.95) & (regions.garment_distance >= 3.0)
    labels[regions.candidate & ~regions.skin & ~hip_band] = cv2.GC_PR_FGD
    labels[regions.excluded] = cv2.GC_BGD
    labels[regions.core] = cv2.GC_FGD
    if not (labels == cv2.GC_FGD).any() or not np.isin(labels, (cv2.GC_BGD, cv2.GC_PR_BGD)).any():
        return np.zeros(regions.t.shape, dtype=np.uint8)
    # Only the box around the undecided pixels (plus a margin of sure background) is worth the graph cut.
    ys, xs = np.nonzero(labels != cv2.GC_BGD)
    margin = max(4, int(0.05 * max(labels.shape)))
    y0, y1 = max(0, ys.min() - margin), min(labels.shape[0], ys.max() + margin + 1)
    x0, x1 = max(0, xs.min() - margin), min(labels.shape[1], xs.max() + margin + 1)
    crop = np.ascontiguousarray(labels[y0:y1, x0:x1])
    background_model = np.zeros((1, 65), dtype=np.float64)
    foreground_model = np.zeros((1, 65), dtype=np.float64)
    cv2.setRNGSeed(0)
    bgr = np.ascontiguousarray(cv2.cvtColor(image, cv2.COLOR_RGB2BGR)[y0:y1, x0:x1])
    cv2.grabCut(bgr, crop, None, background_model, foreground_model, iterations, cv2.GC_INIT_WITH_MASK)
    out = np.zeros(labels.shape, dtype=np.uint8)
    out[y0:y1, x0:x1] = np.isin(crop, (cv2.GC_FGD, cv2.GC_PR_FGD))
    return out


def _colour_method(image: np.ndarray, regions: _Regions, max_distance: float = 3.5) -> np.ndarray:
    """Second method: candidate pixels close to the core's colours and not skin."""
    mask = regions.candidate & ~regions.skin & ~regions.excluded & (regions.garment_distance < max_distance)
    return (mask | regions.core).astype(np.uint8)


def _fill_small_holes(mask: np.ndarray, skin: np.ndarray, max_area: int) -> np.ndarray:
    """Fill holes that are small or not skin (prints, folds); keep skin holes (an arm in front of the torso)."""
    inverse = (mask == 0).astype(np.uint8)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(inverse, connectivity=4)
    height, width = mask.shape
    border = set(np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]])).tolist())
    out = mask.copy()
    for label in range(1, count):
        if label in border:
            continue
        hole = labels == label
        if stats[label, cv2.CC_STAT_AREA] <= max_area or skin[hole].mean() < 0.3:
            out[hole] = 1
    return out


def _clean(
    mask: np.ndarray, regions: _Regions, frame: TorsoFrame, person: np.ndarray, skin: np.ndarray | None = None
) -> np.ndarray:
    """Open, keep the pieces that reach the torso core, fill holes, apply the hip rule, stay inside the person.

    Holes that are mostly `skin` (default `regions.skin`) stay open.
    """
    unit = frame.length
    mask = cv2.morphologyEx(mask.astype(np.uint8), cv2.MORPH_OPEN, _disk(0.015 * unit))
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    if count <= 1:
        return np.zeros_like(mask)
    anchored = set(np.unique(labels[regions.core & (mask > 0)]).tolist()) - {0}
    if not anchored:
        anchored = {int(np.argmax(stats[1:, cv2.CC_STAT_AREA])) + 1}
    largest = max(stats[i, cv2.CC_STAT_AREA] for i in anchored)
    keep = [i for i in range(1, count) if i in anchored or stats[i, cv2.CC_STAT_AREA] >= 0.05 * largest]
    mask = np.isin(labels, keep).astype(np.uint8)
    mask = _fill_small_holes(mask, regions.skin if skin is None else skin, max_area=int(0.002 * unit * unit) + 4)
    mask &= cv2.dilate(person.astype(np.uint8), _disk(0.01 * unit))
    return _hip_rule(mask, regions)


def _hip_rule(mask: np.ndarray, regions: _Regions) -> np.ndarray:
    """Nothing below the hip line, unless the garment visibly continues there (a long top).

    Continues = just below the hip line (t in [1, 1.08]) the garment is about as wide as just above it (t in
    [0.92, 1]) and has the colours of the torso core there; then the part below that hangs together with the part above
    is kept.
    """
    t = regions.t
    below = t > 1.0
    garment = mask.astype(bool)
    if not (garment & below).any():
        return mask
    above_band = garment & (t > 0.92) & (t <= 1.0)
    below_band = garment & (t > 1.0) & (t <= 1.08)
    same_colour = below_band.any() and float(np.median(regions.garment_distance[below_band])) < 3.0
    continues = above_band.sum() > 0 and below_band.sum() >= 0.75 * above_band.sum() and same_colour
    if continues:
        count, labels = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
        main = set(np.unique(labels[garment & ~below]).tolist()) - {0}
        return np.isin(labels, sorted(main)).astype(np.uint8)
    out = mask.copy()
    out[below] = 0
    return out


# --------------------------------------------------------------------------------------------------------------------
# Output.


@dataclass
class WornGarment:
    """A garment cut out of a worn photo, laid out like a product photo.

    Attributes:
        image: `(h, w, 3)` uint8 RGB, the garment centred on `background` with a 3:4 (w:h) frame, unmirrored.
        mask: `(h, w)` float32 {0, 1}, the garment in `image`.
        photo_mask: `(H, W)` float32 {0, 1}, the garment in the original photo.
        crop_box: `(x0, y0, x1, y1)` of `image` in the original photo's pixels (may reach outside the photo).
        view: which product photo this stands for: FRONT for a photo of the front, BACK for a photo of the back.
        person_view: the view of the person in the photo.
        category: the garment category.
        method: "grabcut", "colour" (the fallback), either with ", skin removed" (a second try without the skin
            pixels, after the first held too much skin), or "parser".
        quality: measured on `photo_mask`.
        warnings: what is doubtful about the result, each with what to do; empty when it passed every check.
    """

    image: np.ndarray
    mask: np.ndarray
    photo_mask: np.ndarray
    crop_box: tuple[int, int, int, int]
    view: GarmentView
    person_view: PersonView
    category: GarmentCategory
    method: str
    quality: GarmentQuality | None
    warnings: list[str] = field(default_factory=list)

    def keypoints(self) -> np.ndarray:
        """Canonical garment skeleton `(18, 3)` of `image`, as for a product photo (`garment.garment_keypoints`)."""
        return garment_keypoints(self.mask, self.view)


def product_layout(
    image: np.ndarray, mask: np.ndarray, *, background: int = 255, margin: float = 0.06, aspect: float = 4 / 3
) -> tuple[np.ndarray, np.ndarray, tuple[int, int, int, int]]:
    """Crop the masked garment and centre it on `background` in a `height / width = aspect` frame (no resampling).

    Returns:
        `(image (h, w, 3) uint8, mask (h, w) float32, (x0, y0, x1, y1) box in the input's pixels)`.
    """
    ys, xs = np.nonzero(np.asarray(mask) > 0.5)
    if ys.size == 0:
        raise NoGarmentDetectedError(f"empty garment mask: nothing to lay out; {ADVICE}.")
    x0, x1, y0, y1 = int(xs.min()), int(xs.max()) + 1, int(ys.min()), int(ys.max()) + 1
    pad = int(round(margin * max(x1 - x0, y1 - y0)))
    box_w, box_h = x1 - x0 + 2 * pad, y1 - y0 + 2 * pad
    if box_h < aspect * box_w:
        box_h = int(round(aspect * box_w))
    else:
        box_w = int(round(box_h / aspect))
    cx, cy = (x0 + x1) // 2, (y0 + y1) // 2
    bx0, by0 = cx - box_w // 2, cy - box_h // 2
    bx1, by1 = bx0 + box_w, by0 + box_h
    height, width = mask.shape[:2]
    out_image = np.full((box_h, box_w, 3), background, dtype=np.uint8)
    out_mask = np.zeros((box_h, box_w), dtype=np.float32)
    sx0, sy0, sx1, sy1 = max(bx0, 0), max(by0, 0), min(bx1, width), min(by1, height)
    m = np.asarray(mask)[sy0:sy1, sx0:sx1] > 0.5
    region = np.where(m[..., None], np.asarray(image)[sy0:sy1, sx0:sx1], np.uint8(background))
    out_image[sy0 - by0 : sy1 - by0, sx0 - bx0 : sx1 - bx0] = region
    out_mask[sy0 - by0 : sy1 - by0, sx0 - bx0 : sx1 - bx0] = m
    return out_image, out_mask, (bx0, by0, bx1, by1)


def _parser_mask(image: np.ndarray, parser: HumanParser, category: GarmentCategory) -> np.ndarray:
    labels = np.asarray(parser(image))
    if labels.shape != image.shape[:2]:
        raise InvalidArgumentError(f"parser returned labels of shape {labels.shape}, expected {image.shape[:2]}")
    table = CATEGORY_LABELS[category]
    if parser.scheme not in table:
        raise InvalidArgumentError(f"unknown parsing scheme {parser.scheme!r}; expected one of {sorted(table)}")
    return np.isin(labels, table[parser.scheme]).astype(np.uint8)


def garment_from_worn_photo(
    person_img: np.ndarray,
    keypoints: np.ndarray | None = None,
    person_mask: np.ndarray | None = None,
    *,
    category: GarmentCategory | str = GarmentCategory.UPPER_BODY,
    parser: HumanParser | None = None,
    analyzer: WornPhotoAnalyzer | None = None,
    body_parts: BodyParts | None = None,
    strict: bool = True,
    background: int = 255,
) -> WornGarment:
    """Cut a garment out of a photo of someone wearing it (TryOnDiffusion's I_c), laid out like a product photo.

    Without `parser`: mediapipe body parts (`WornPhotoAnalyzer`), GrabCut seeded by the torso, nothing below the hip
    line unless the garment visibly continues; quality rules (torso coverage ≥ 0.7, skin ≤ 5 % of the garment,
    fragmentation ≤ 0.15, not near-empty) retry without the skin, then fall back to a colour-distance method. With
    `parser`: its labels for `category`.

    Args:
        person_img: `(H, W, 3)` uint8 RGB photo.
        keypoints, person_mask: optional pose of this photo (`(18, 3)` pixels, `(H, W)` {0, 1}); estimated if absent.
        category: `GarmentCategory`; LOWER_BODY and DRESS need a `parser`.
        parser: optional `HumanParser` (a real human-parsing model).
        analyzer: a `WornPhotoAnalyzer` to reuse across calls (its mediapipe graphs); a temporary one otherwise.
        body_parts: precomputed `BodyParts` of this photo (skips the analyzer).
        strict: when no method passes the quality check, raise `GarmentExtractionError` (True) or return the best
            attempt with a `WornGarmentWarning` (False).
        background: grey level around the garment.
    Returns:
        `WornGarment`; `warnings` (also emitted as `WornGarmentWarning`) lists what is doubtful.
    Raises:
        GarmentExtractionError: no usable garment (with `strict`; an empty one always), or no shoulders in the pose.
        InvalidArgumentError: LOWER_BODY / DRESS without a parser, or a bad `background`.
        NoPersonDetectedError: no person in the photo.
    """
    image = _check_image(person_img)
    category = GarmentCategory(category)
    if not 0 <= background <= 255:
        raise InvalidArgumentError(f"background must be a grey level in [0, 255], got {background}")
    if parser is None and category is not GarmentCategory.UPPER_BODY:
        raise InvalidArgumentError(
            f"category {category.value!r} needs a parsing model (`parser=`); without one only 'upper_body' is "
            "supported. Pass a product photo of the garment instead."
        )
    height, width = image.shape[:2]
    notes: list[str] = []
    if body_parts is None and parser is not None and keypoints is not None:
        body_parts = body_parts_from_keypoints(image, keypoints, person_mask if person_mask is not None
                                               else np.ones((height, width), np.float32))  # fmt: skip
    if body_parts is None:
        own = analyzer is None
        analyzer = analyzer or WornPhotoAnalyzer()
        try:
            body_parts = analyzer(image, keypoints, person_mask)
        finally:
            if own:
                analyzer.close()
    parts = body_parts
    decision = decide_view(parts.keypoints, parts.landmarks, parts.world_landmarks)
    if parser is None:
        keypoints_lowered, torso_ratio = lowered_hips(parts.keypoints)
        if torso_ratio is not None:
            parts = replace(parts, keypoints=keypoints_lowered)
            notes.append(
                f"the pose put the hips too high (shoulder to hip {torso_ratio:.2f} x shoulder to elbow, at least "
                f"{MIN_TORSO_TO_UPPER_ARM:.1f}); they were moved down to {TYPICAL_TORSO_TO_UPPER_ARM:.1f} x, so the "
                f"hem may be misplaced: check it, or {ADVICE}."
            )
    person_view = decision.view
    view = garment_view_for(person_view, parts.keypoints)
    quality: GarmentQuality | None = None
    if parser is not None:
        photo_mask = _parser_mask(image, parser, category)
        method = "parser"
        if photo_mask.mean() < 1e-3:
            raise GarmentExtractionError(
                f"the parsing model found no {category.value} garment in the photo; pass a product photo of the garment."
            )
    else:
        chosen, attempts = _extract_upper_body(image, parts)
        photo_mask, method, quality, problems = chosen.mask, chosen.method, chosen.quality, chosen.problems
        if not photo_mask.any():
            raise GarmentExtractionError(f"no garment pixels were found on the worn photo; {ADVICE}.")
        if problems:
            found = "; ".join(problems)
            found = f"{chosen.history}; then {found}" if chosen.history else found
            message = (f"the garment could not be separated reliably from the worn photo: {found}. "
                       f"{ADVICE[0].upper()}{ADVICE[1:]}.")  # fmt: skip
            if strict:
                raise GarmentExtractionError(message)
            notes.append(message)
        elif method.startswith("colour"):
            notes.append(
                f"GrabCut's garment failed the quality check ({'; '.join(attempts[0].problems)}); this one comes from "
                f"the colour fallback{f' ({chosen.history})' if chosen.history else ''}, which keeps anything with the "
                "colours of the torso's middle (bare skin too, if that is where the torso's middle is, or skin lit "
                f"unlike the face and arms): check it, or {ADVICE}."
            )
        if quality.below_hip_fraction > MAX_BELOW_HIP_FRACTION:
            notes.append(
                f"{quality.below_hip_fraction:.0%} of the garment lies below the hip line, kept because it continues "
                "there (an untucked or long top, or a dress?): check the hem; for a dress or a misplaced hem pass a "
                "product photo of the garment, or a parsing model with the right `category`."
            )
    if quality is not None and quality.occluded_fraction > MAX_OCCLUDED_FRACTION:
        notes.append(
            f"hands in front of the garment cut gaps into it ({quality.occluded_fraction:.1%} of its area, at most "
            f"{MAX_OCCLUDED_FRACTION:.0%}); the try-on will show the garment with those gaps: check it, or {ADVICE}."
        )
    if person_view is not PersonView.SIDE and decision.confidence < MIN_VIEW_CONFIDENCE:
        notes.append(
            f"the view is uncertain ({decision.explanation}; confidence {decision.confidence:.2f}, at least "
            f"{MIN_VIEW_CONFIDENCE:.2f}): a 3/4 view; the garment is taken as the {view.value} garment: check "
            "`worn.view`, or pass a front or back photo (or a product photo)."
        )
    if person_view is PersonView.SIDE:
        notes.append(
            f"the photo shows the garment from the side ({decision.explanation}); it stands in for the {view.value} "
            "garment but a front or back photo (or a product photo) gives a better garment image."
        )
    if parts.skin_source == "none" and parser is None:
        logger.info("no face or hands found: the YCrCb skin box stands in for this photo's skin model")
    out_image, out_mask, box = product_layout(image, photo_mask, background=background)
    for note in notes:
        warnings.warn(note, WornGarmentWarning, stacklevel=2)
    return WornGarment(out_image, out_mask, photo_mask.astype(np.float32), box, view, person_view, category, method,
                       quality, notes)  # fmt: skip


@dataclass
class _Attempt:
    """One extraction attempt at full size."""

    mask: np.ndarray  # (H, W) uint8 {0, 1}
    method: str
    quality: GarmentQuality
    problems: list[str]
    history: str = ""  # what an earlier attempt of the same method measured, for the messages


def _extract_upper_body(image: np.ndarray, parts: BodyParts) -> tuple[_Attempt, list[_Attempt]]:
    """GrabCut, then (if its result fails the check) the colour method; each also with its skin removed when it holds
    too much. Returns the first attempt that passes (else the one with the fewest problems) and all attempts made."""
    height, width = image.shape[:2]
    frame_full = TorsoFrame.from_keypoints(parts.keypoints)
    if frame_full is None:
        raise GarmentExtractionError(
            "the pose lacks the shoulders, so the upper body cannot be located: use a photo showing the person from "
            f"the shoulders to the hips, or {ADVICE}."
        )
    factor = min(1.0, WORKING_SIZE / max(height, width))
    small_h, small_w = max(1, round(height * factor)), max(1, round(width * factor))
    small = cv2.resize(image, (small_w, small_h), interpolation=cv2.INTER_AREA) if factor < 1 else image
    small_parts = parts.resized(small_h, small_w) if factor < 1 else parts
    frame = TorsoFrame.from_keypoints(small_parts.keypoints)
    assert frame is not None  # same keypoints, scaled
    regions = _regions(small, small_parts, frame)
    small_person = small_parts.person_mask > 0.5

    def full_size(small_mask: np.ndarray) -> np.ndarray:
        if factor == 1:
            return small_mask.astype(np.uint8)
        full = cv2.resize(small_mask.astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR)
        return ((full > 0.5) & (parts.person_mask > 0.5)).astype(np.uint8)

    skin_full = full_size(regions.skin_measured)
    # Hands, grown a little: the garment's edge next to a hand is a few pixels away from the hand's landmark hull.
    hands = cv2.dilate((parts.hands_mask > 0.5).astype(np.uint8), _disk(0.03 * frame_full.length))

    def attempt(small_mask: np.ndarray, method: str) -> _Attempt:
        mask = full_size(small_mask)
        quality = garment_quality(mask, parts.keypoints, parts.person_mask, skin_full, hands)
        problems = quality.problems(GarmentCategory.UPPER_BODY)
        logger.debug("worn garment, %s: %s, problems=%s", method, quality, problems)
        return _Attempt(mask, method, quality, problems)

    attempts: list[_Attempt] = []
    for method, run in (("grabcut", _grabcut_method), ("colour", _colour_method)):
        small_mask = _clean(run(small, regions), regions, frame, small_person)
        attempts.append(attempt(small_mask, method))
        if attempts[-1].quality.skin_fraction > MAX_SKIN_FRACTION:
            # Second try for the same method: drop the skin pixels, then clean again (pieces, holes, hip rule).
            skin = regions.skin | regions.skin_measured
            skinless = _clean(small_mask & ~regions.skin_measured, regions, frame, small_person, skin)
            if skinless.any():
                attempts.append(attempt(skinless, f"{method}, skin removed"))
                attempts[
                    -1
                ].history = (
                    f"{method} kept skin ({attempts[-2].quality.skin_fraction:.1%} of its garment), which was removed"
                )
        passing = [a for a in attempts if not a.problems]
        if passing:
            return passing[0], attempts
    # Fewest problems; on a tie the one without too much skin (a hole tells the truth, bare skin passes for fabric).
    best = min(
        attempts,
        key=lambda a: (len(a.problems), a.quality.skin_fraction > MAX_SKIN_FRACTION, -a.quality.torso_coverage),
    )
    return best, attempts
