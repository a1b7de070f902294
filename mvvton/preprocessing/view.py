"""Person view (front / side / back) from COCO-18 keypoints, and MV-VTON's hard selection of the garment view."""

from __future__ import annotations

import logging

import numpy as np

from mvvton.constants import COCO18_INDEX, NUM_KEYPOINTS, GarmentView, PersonView

logger = logging.getLogger(__name__)

# Shoulder (or hip) width below this fraction of the torso length ⇒ profile view.
SIDE_WIDTH_RATIO = 0.25
# Keypoint confidence considered "seen".
MIN_CONFIDENCE = 0.1

_RS, _LS = COCO18_INDEX["right_shoulder"], COCO18_INDEX["left_shoulder"]
_RE, _LE = COCO18_INDEX["right_elbow"], COCO18_INDEX["left_elbow"]
_RH, _LH = COCO18_INDEX["right_hip"], COCO18_INDEX["left_hip"]
_NECK, _NOSE = COCO18_INDEX["neck"], COCO18_INDEX["nose"]
_FACE = (COCO18_INDEX["nose"], COCO18_INDEX["right_eye"], COCO18_INDEX["left_eye"])
_EARS = (COCO18_INDEX["right_ear"], COCO18_INDEX["left_ear"])


def _check(keypoints: np.ndarray) -> np.ndarray:
    kp = np.asarray(keypoints, dtype=np.float32)
    if kp.shape != (NUM_KEYPOINTS, 3):
        raise ValueError(f"keypoints must have shape ({NUM_KEYPOINTS}, 3), got {kp.shape}")
    return kp


def _torso_length(kp: np.ndarray, ok: np.ndarray) -> float:
    top = kp[_NECK, :2] if ok[_NECK] else (kp[_RS, :2] + kp[_LS, :2]) / 2 if ok[_RS] and ok[_LS] else None
    hips = [kp[i, :2] for i in (_RH, _LH) if ok[i]]
    if top is None or not hips:
        return 0.0
    return float(np.hypot(*(np.mean(hips, axis=0) - top)))


def view_scores(keypoints: np.ndarray) -> dict[str, float]:
    """The geometric cues used by `classify_person_view` (useful for debugging).

    Returns:
        `shoulder_ratio`: horizontal shoulder width / torso length; `hip_ratio`: same for hips;
        `order`: signed, > 0 when the person's right shoulder (hip) appears on the image left (facing the camera),
        normalised by the torso length; `face`: mean confidence of nose and eyes in [0, 1].
    """
    kp = _check(keypoints)
    ok = kp[:, 2] > MIN_CONFIDENCE
    torso = _torso_length(kp, ok)
    scores = {"shoulder_ratio": float("nan"), "hip_ratio": float("nan"), "order": 0.0}
    scores["face"] = float(np.mean(kp[list(_FACE), 2]))
    if torso <= 1.0:
        return scores
    order_terms = []
    if ok[_RS] and ok[_LS]:
        scores["shoulder_ratio"] = abs(float(kp[_LS, 0] - kp[_RS, 0])) / torso
        order_terms.append(float(kp[_LS, 0] - kp[_RS, 0]) / torso)
    if ok[_RH] and ok[_LH]:
        scores["hip_ratio"] = abs(float(kp[_LH, 0] - kp[_RH, 0])) / torso
        order_terms.append(0.5 * float(kp[_LH, 0] - kp[_RH, 0]) / torso)  # hips are narrower and less reliable
    scores["order"] = float(np.sum(order_terms)) if order_terms else 0.0
    return scores


def classify_person_view(keypoints: np.ndarray, image: np.ndarray | None = None) -> PersonView:
    """Front / side / back from body geometry.

    Rules, in order:
    1. Only one shoulder seen, or both shoulders (and hips, when seen) nearly on top of each other horizontally
       (width < 0.25 × torso length) ⇒ SIDE.
    2. No face keypoint seen at all (nose and both eyes missing, as OpenPose reports for people facing away)
       ⇒ BACK.
    3. Otherwise the left/right order decides: the person's right shoulder on the image LEFT ⇒ FRONT, on the image
       RIGHT ⇒ BACK (hips add a half-weight vote).

    Args:
        keypoints: `(18, 3)` COCO-18 keypoints, pixels + confidence.
        image: optional `(H, W, 3)` photo; only used to check that the keypoints lie inside it.
    Returns:
        The `PersonView`.
    """
    kp = _check(keypoints)
    if image is not None:
        height, width = np.asarray(image).shape[:2]
        seen = kp[:, 2] > MIN_CONFIDENCE
        if seen.any() and (kp[seen, 0].max() > width * 1.05 or kp[seen, 1].max() > height * 1.05):
            raise ValueError("keypoints lie outside the image: are they in the coordinates of another resolution?")
    ok = kp[:, 2] > MIN_CONFIDENCE
    if not (ok[_RS] or ok[_LS]):
        logger.warning("no shoulder keypoint: assuming a front view")
        return PersonView.FRONT
    if ok[_RS] != ok[_LS]:
        return PersonView.SIDE
    scores = view_scores(kp)
    shoulder_ratio, hip_ratio = scores["shoulder_ratio"], scores["hip_ratio"]
    if np.isfinite(shoulder_ratio):
        narrow_hips = not np.isfinite(hip_ratio) or hip_ratio < SIDE_WIDTH_RATIO * 0.8
        if shoulder_ratio < SIDE_WIDTH_RATIO and narrow_hips:
            return PersonView.SIDE
    face_seen = bool(ok[list(_FACE)].any())
    if not face_seen:
        return PersonView.BACK
    if scores["order"] == 0.0:
        return PersonView.FRONT
    return PersonView.FRONT if scores["order"] > 0 else PersonView.BACK


def garment_view_for(person_view: PersonView | str, keypoints: np.ndarray) -> GarmentView:
    """MV-VTON hard selection: which product photo feeds the global (CLIP) branch.

    FRONT → front garment, BACK → back garment. SIDE → the training-time arm rule of the official code, read from
    keypoints instead of skeleton colours: `right = max x of (right shoulder, right elbow)` (0 if unseen),
    `left = max x of (left shoulder, left elbow)` (1 if unseen); `right > left` ⇒ the person's right arm is further
    right in the image, i.e. the person is turned away ⇒ BACK garment, else FRONT.

    Args:
        person_view: the person's view.
        keypoints: `(18, 3)` COCO-18 keypoints (pixels + confidence).
    """
    view = PersonView(person_view)
    if view is PersonView.FRONT:
        return GarmentView.FRONT
    if view is PersonView.BACK:
        return GarmentView.BACK
    kp = _check(keypoints)
    ok = kp[:, 2] > MIN_CONFIDENCE
    right = [kp[i, 0] for i in (_RS, _RE) if ok[i]]
    left = [kp[i, 0] for i in (_LS, _LE) if ok[i]]
    right_x = float(max(right)) if right else 0.0
    left_x = float(max(left)) if left else 1.0
    return GarmentView.BACK if right_x > left_x else GarmentView.FRONT
