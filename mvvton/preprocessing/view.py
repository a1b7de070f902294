"""Person view (front / side / back) from all the pose evidence, with a confidence; MV-VTON's hard selection.

Evidence, each turned into a vote (see `view_evidence`):
- `shoulder_order` / `hip_order`: the person's right shoulder (hip) on the image left ⇒ facing the camera;
- `world_yaw`: the body's yaw from the 3-D (world) shoulder and hip landmarks, when the estimator gives them;
- `face`: nose / eyes / ears seen (only counted when the head is inside the photo: a face cut off by the frame is
  no evidence of a back view);
- `head_turn`: the head turned far relative to the torso (looking back over the shoulder) flips what the torso order
  says, because pose models label left/right as if the person faced the camera when they see a face.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import numpy as np

from mvvton.constants import COCO18_INDEX, NUM_KEYPOINTS, GarmentView, PersonView
from mvvton.errors import InvalidArgumentError

logger = logging.getLogger(__name__)

# Keypoint confidence considered "seen".
MIN_CONFIDENCE = 0.1
# Decision thresholds on the combined scores (documented in docs/preprocessing.md).
SIDE_THRESHOLD = 0.55  # sideness above this ⇒ SIDE
LOW_CONFIDENCE = 0.6  # decisions below this confidence are reported in the warnings

_RS, _LS = COCO18_INDEX["right_shoulder"], COCO18_INDEX["left_shoulder"]
_RE, _LE = COCO18_INDEX["right_elbow"], COCO18_INDEX["left_elbow"]
_RH, _LH = COCO18_INDEX["right_hip"], COCO18_INDEX["left_hip"]
_NECK, _NOSE = COCO18_INDEX["neck"], COCO18_INDEX["nose"]
_FACE = (COCO18_INDEX["nose"], COCO18_INDEX["right_eye"], COCO18_INDEX["left_eye"])
_EARS = (COCO18_INDEX["right_ear"], COCO18_INDEX["left_ear"])

# BlazePose-33 indices used by the landmark evidence.
_BP = {"nose": 0, "right_eye": 5, "left_eye": 2, "right_ear": 8, "left_ear": 7, "right_shoulder": 12,
       "left_shoulder": 11, "right_hip": 24, "left_hip": 23}  # fmt: skip


def _check(keypoints: np.ndarray) -> np.ndarray:
    kp = np.asarray(keypoints, dtype=np.float32)
    if kp.shape != (NUM_KEYPOINTS, 3):
        raise InvalidArgumentError(f"keypoints must have shape ({NUM_KEYPOINTS}, 3), got {kp.shape}")
    if not np.isfinite(kp).all():
        raise InvalidArgumentError("keypoints contain NaN or inf: pass finite (x, y, confidence) rows")
    return kp


def _torso_length(kp: np.ndarray, ok: np.ndarray) -> float:
    top = kp[_NECK, :2] if ok[_NECK] else (kp[_RS, :2] + kp[_LS, :2]) / 2 if ok[_RS] and ok[_LS] else None
    hips = [kp[i, :2] for i in (_RH, _LH) if ok[i]]
    if top is None or not hips:
        if ok[_RS] and ok[_LS]:  # cut above the hips: a torso is about 1.5 shoulder widths
            return 1.5 * float(np.hypot(*(kp[_LS, :2] - kp[_RS, :2])))
        return 0.0
    return float(np.hypot(*(np.mean(hips, axis=0) - top)))


@dataclass
class ViewDecision:
    """A view decision with its confidence in [0, 1], the evidence it used and a one-line explanation."""

    view: PersonView
    confidence: float
    evidence: dict[str, float] = field(default_factory=dict)
    explanation: str = ""


def view_scores(keypoints: np.ndarray) -> dict[str, float]:
    """Geometric cues from 2-D keypoints alone (kept for debugging and for callers without landmarks).

    Returns:
        `shoulder_ratio`: horizontal shoulder width / torso length; `hip_ratio`: same for hips; `order`: signed,
        > 0 when the person's right shoulder (hip) appears on the image left, normalised by the torso length;
        `face`: mean confidence of nose and eyes in [0, 1].
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
        order_terms.append(0.5 * float(kp[_LH, 0] - kp[_RH, 0]) / torso)
    scores["order"] = float(np.sum(order_terms)) if order_terms else 0.0
    return scores


def _yaw_from_pair(right: np.ndarray, left: np.ndarray) -> float:
    """Yaw in degrees of the right→left body axis from 3-D points `(x, y, z)`: 0 = facing the camera, ±180 = away."""
    dx, dz = float(left[0] - right[0]), float(left[2] - right[2])
    return math.degrees(math.atan2(dz, dx))


def view_evidence(
    keypoints: np.ndarray,
    landmarks: np.ndarray | None = None,
    world_landmarks: np.ndarray | None = None,
) -> dict[str, float]:
    """All view cues, as numbers (nan = not available).

    Args:
        keypoints: `(18, 3)` COCO-18 pixels + confidence, with points outside the photo already dropped.
        landmarks: optional BlazePose `(33, 4)` `x, y` normalised TO THE PHOTO (may lie outside [0, 1]), `z`,
            visibility.
        world_landmarks: optional BlazePose `(33, 4)` metric 3-D landmarks (`x` right, `y` down, `z` away from the
            camera) and visibility.
    Returns:
        dict with `shoulder_order`, `hip_order` (signed, + = facing the camera, per torso length), `shoulder_ratio`,
        `hip_ratio`, `world_yaw` (degrees, 0 = facing the camera), `world_side` (|sin yaw|), `face_seen` (max
        visibility of nose / eyes, nan when the head is outside the photo), `head_yaw` (degrees the nose points
        away from the ear midline, + = toward the person's left), `head_turn` (head yaw relative to the torso's).
    """
    kp = _check(keypoints)
    ok = kp[:, 2] > MIN_CONFIDENCE
    torso = _torso_length(kp, ok)
    nan = float("nan")
    ev = {key: nan for key in ("shoulder_order", "hip_order", "shoulder_ratio", "hip_ratio", "world_yaw",
                                "world_side", "face_seen", "head_yaw", "head_turn")}  # fmt: skip
    if torso > 1.0:
        if ok[_RS] and ok[_LS]:
            ev["shoulder_order"] = float(kp[_LS, 0] - kp[_RS, 0]) / torso
            ev["shoulder_ratio"] = abs(ev["shoulder_order"])
        if ok[_RH] and ok[_LH]:
            ev["hip_order"] = float(kp[_LH, 0] - kp[_RH, 0]) / torso
            ev["hip_ratio"] = abs(ev["hip_order"])
    face_inside = bool(ok[list(_FACE + _EARS)].any())
    if landmarks is not None:
        lm = np.asarray(landmarks, dtype=np.float32)
        head = lm[[_BP["nose"], _BP["right_eye"], _BP["left_eye"]]]
        face_inside = bool(((head[:, 0] >= 0) & (head[:, 0] <= 1) & (head[:, 1] >= 0) & (head[:, 1] <= 1)).all())
        if face_inside:
            ev["face_seen"] = float(head[:, 3].max())
    elif face_inside:
        ev["face_seen"] = float(kp[list(_FACE), 2].max())
    if world_landmarks is not None:
        wl = np.asarray(world_landmarks, dtype=np.float32)
        yaw_shoulders = _yaw_from_pair(wl[_BP["right_shoulder"]], wl[_BP["left_shoulder"]])
        yaw_hips = _yaw_from_pair(wl[_BP["right_hip"]], wl[_BP["left_hip"]])
        ev["world_yaw"] = float(math.degrees(math.atan2(
            math.sin(math.radians(yaw_shoulders)) + 0.5 * math.sin(math.radians(yaw_hips)),
            math.cos(math.radians(yaw_shoulders)) + 0.5 * math.cos(math.radians(yaw_hips)),
        )))  # fmt: skip
        ev["world_side"] = abs(math.sin(math.radians(ev["world_yaw"])))
        if face_inside:
            ears_mid = (wl[_BP["right_ear"]] + wl[_BP["left_ear"]]) / 2
            ear_axis = wl[_BP["left_ear"]] - wl[_BP["right_ear"]]
            head_yaw = math.degrees(math.atan2(float(ear_axis[2]), float(ear_axis[0])))
            ev["head_yaw"] = head_yaw
            turn = (head_yaw - ev["world_yaw"] + 180.0) % 360.0 - 180.0
            ev["head_turn"] = float(turn)
            del ears_mid
    return ev


def _finite(value: float) -> bool:
    return value == value and math.isfinite(value)


def decide_view(
    keypoints: np.ndarray,
    landmarks: np.ndarray | None = None,
    world_landmarks: np.ndarray | None = None,
) -> ViewDecision:
    """Front / side / back with a confidence, from every cue `view_evidence` finds.

    1. Sideness in [0, 1] = mean of `1 - shoulder_ratio / 0.5` (also hips) and `world_side`; a hidden shoulder
       counts as 0.8. Sideness ≤ `SIDE_THRESHOLD` ⇒ FRONT or BACK by the facing score: shoulder order (weight 1),
       hip order (0.5), cos(world yaw) (1); with 2-D keypoints only, a head inside the photo without any face
       keypoint (OpenPose on a back view) adds -1.5, winning over the left/right order. A face cut off by the frame
       is no evidence.
    2. Sideness above the threshold is a profile or a 3/4 view: BACK when the 3-D torso is turned past 100° (away from
       the camera), or when the face is in profile (|head yaw| ≥ 55°) while the shoulders still show width
       (ratio ≥ 0.2) — someone looking back over the shoulder, whom pose models label as if facing the camera;
       otherwise SIDE.
    Confidence in [0, 1]: |facing score| scaled down near the side threshold (front/back), distance from the
    threshold (side), lower for the 3/4-back rules.

    Args:
        keypoints: `(18, 3)` COCO-18 pixels + confidence (points outside the photo dropped).
        landmarks, world_landmarks: optional BlazePose evidence (see `view_evidence`).
    """
    kp = _check(keypoints)
    ok = kp[:, 2] > MIN_CONFIDENCE
    ev = view_evidence(kp, landmarks, world_landmarks)
    if not (ok[_RS] or ok[_LS]):
        return ViewDecision(PersonView.FRONT, 0.0, ev, "no shoulder visible: assumed a front view")
    reasons = []
    side_terms = []
    if ok[_RS] != ok[_LS]:
        side_terms.append(0.8)
        reasons.append("one shoulder hidden")
    if _finite(ev["shoulder_ratio"]):
        narrow = 1.0 - ev["shoulder_ratio"] / 0.5
        if _finite(ev["hip_ratio"]):
            narrow = min(narrow, 1.0 - ev["hip_ratio"] / 0.4)
        side_terms.append(narrow)
    if _finite(ev["world_side"]):
        side_terms.append(ev["world_side"])
    sideness = float(np.clip(np.mean(side_terms) if side_terms else 0.0, 0.0, 1.0))
    ev["sideness"] = sideness
    order_votes = []
    if _finite(ev["shoulder_order"]):
        order_votes.append(math.tanh(ev["shoulder_order"] / 0.12))
    if _finite(ev["hip_order"]):
        order_votes.append(0.5 * math.tanh(ev["hip_order"] / 0.08))
    if _finite(ev["world_yaw"]):
        order_votes.append(math.cos(math.radians(ev["world_yaw"])))
    order = float(np.sum(order_votes)) / max(sum(0.5 if i == 1 else 1.0 for i in range(len(order_votes))), 1.0)
    face = 0.0
    if landmarks is None:  # an OpenPose-like estimator: no face keypoint on a back view
        if _finite(ev["face_seen"]) and ev["face_seen"] <= MIN_CONFIDENCE:
            face = -1.5  # OpenPose sees no face from behind, and its left/right labels are then unreliable
            reasons.append("head in the photo but no face keypoint")
        elif not _finite(ev["face_seen"]):
            reasons.append("head outside the photo: face not used")
    elif not _finite(ev["face_seen"]):
        reasons.append("head outside the photo: face not used")
    facing = float(np.clip(order + face, -1.0, 1.0))
    ev["facing"] = facing
    if sideness > SIDE_THRESHOLD:
        head_yaw, yaw = ev["head_yaw"], ev["world_yaw"]
        if _finite(yaw) and abs(yaw) > 100.0:
            reasons.insert(0, f"3/4 back: torso turned {abs(yaw):.0f}° from the camera")
            return ViewDecision(PersonView.BACK, 0.5, ev, "back: " + ", ".join(reasons))
        if (
            _finite(head_yaw)
            and abs(head_yaw) >= 55.0
            and _finite(ev["shoulder_ratio"])
            and ev["shoulder_ratio"] >= 0.2
        ):
            reasons.insert(0, f"face in profile (head yaw {abs(head_yaw):.0f}°) over a 3/4 torso (shoulder ratio "
                              f"{ev['shoulder_ratio']:.2f}): looking back over the shoulder")  # fmt: skip
            return ViewDecision(PersonView.BACK, 0.4, ev, "back: " + ", ".join(reasons))
        confidence = float(np.clip((sideness - SIDE_THRESHOLD) / (1.0 - SIDE_THRESHOLD) + 0.3, 0.0, 1.0))
        reasons.insert(0, f"sideness {sideness:.2f} > {SIDE_THRESHOLD}")
        return ViewDecision(PersonView.SIDE, confidence, ev, "side: " + ", ".join(reasons))
    view = PersonView.FRONT if facing >= 0 else PersonView.BACK
    margin = 1.0 - sideness / SIDE_THRESHOLD  # close to the side threshold ⇒ less sure
    confidence = float(np.clip(abs(facing) * (0.5 + 0.5 * margin), 0.0, 1.0))
    side_word = "right shoulder on the image left" if order >= 0 else "right shoulder on the image right"
    reasons.insert(0, f"{side_word} (order score {order:+.2f}, sideness {sideness:.2f})")
    return ViewDecision(view, confidence, ev, f"{view.value}: " + ", ".join(reasons))


def classify_person_view(keypoints: np.ndarray, image: np.ndarray | None = None) -> PersonView:
    """Front / side / back from 2-D keypoints (`decide_view` without landmark evidence).

    Args:
        keypoints: `(18, 3)` COCO-18 keypoints, pixels + confidence.
        image: optional `(H, W, 3)` photo; only used to check that the keypoints lie inside it.
    Returns:
        The `PersonView`.
    Raises:
        InvalidArgumentError: keypoints of a wrong shape, or lying outside `image`.
    """
    kp = _check(keypoints)
    if image is not None:
        height, width = np.asarray(image).shape[:2]
        seen = kp[:, 2] > MIN_CONFIDENCE
        if seen.any() and (kp[seen, 0].max() > width * 1.05 or kp[seen, 1].max() > height * 1.05):
            raise InvalidArgumentError(
                "keypoints lie outside the image: are they in the coordinates of another resolution?"
            )
    return decide_view(kp).view


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
