"""SynthMVG: a procedural, deterministic multi-view try-on dataset in MVG's layout (numpy / OpenCV only).

Each identity is a 2.5D body (elliptic-cylinder torso, capsule limbs, ellipsoid head) posed in 3D and seen by an
orthographic camera at 5 yaws (0, 45, 90, 135, 180 degrees; 0 = facing the camera, 180 = facing away). Parts are
composited with a z-buffer, so crossing arms, the far arm and long hair occlude correctly at every yaw. Garments
carry an unwrapped cylinder texture whose front and back panels hold different prints (text, number, logo,
stripes), so prints foreshorten with the yaw and the back print shows only on back views.

Cues that make every view unambiguous: eyes, nose and mouth exist only on the front half of the head (a 90-degree
profile shows one eye), the back of the head is hair, the person's left arm appears on the image left in back views.

Body frame: X = the person's left, Y = image down, Z = the person's forward direction, in pixels. A yaw `t` maps
it to the image: `x = cx + X cos t + Z sin t`, `y = Y`, depth `z = -X sin t + Z cos t` (larger = nearer).

MVG mapping (see docs/data.md): views 1..5 = yaw 0, 45, 90, 135, 180 are written as `1.jpg .. 5.jpg`. Folder
`<id>_1` holds [1, 2, 5] (person = 45 deg, MVG's front order), `<id>_2` holds [1, 3, 5] (person = 90 deg, side) and
`<id>_3` holds [1, 4, 5] (person = 135 deg, back). Files 1 and 5 are the person wearing G at 0 / 180 deg; the
garment images `cloth/.../{1,5}.jpg` are flat product shots of G's front / back, and `skeletons/.../{1,5}.jpg` are
the canonical flat garment poses (the back one mirrored), so `skeleton_front/back` match `garment_front/back`.
"""

from __future__ import annotations

import json
import math
import multiprocessing
import os
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

from mvvton.constants import COCO18_INDEX, NUM_KEYPOINTS
from mvvton.data.sample import encode_image, keypoints_to_openpose_json
from mvvton.preprocessing.pose import render_skeleton

SYNTH_VERSION = 1
SYNTH_YAWS_DEG: tuple[float, ...] = (0.0, 45.0, 90.0, 135.0, 180.0)
SYNTH_VIEW_FILES: tuple[str, ...] = ("1", "2", "3", "4", "5")  # file stem per yaw
FRONT_VIEW_INDEX = 0  # the 0-degree view supplies the front garment
BACK_VIEW_INDEX = 4  # the 180-degree view supplies the back garment
# MVG order suffix -> index of the person view in SYNTH_YAWS_DEG.
SYNTH_ORDER_TO_VIEW_INDEX: dict[str, int] = {"1": 1, "2": 2, "3": 3}
MAX_HEIGHT, MAX_WIDTH = 512, 384
MIN_HEIGHT = 64
JPEG_QUALITY = 95
META_FILE = "synthmvg.json"
G0_DIR = "image-wo-bg-g0"  # SynthMVG extension: the same person, same view, in the other garment G0

# Render labels (person-frame label map).
BACKGROUND, SKIN, HAIR, ARM, TORSO_SKIN, GARMENT, SLEEVE, PANTS = range(8)
# Labels the agnostic mask removes (union over garments G and G0), before dilation.
AGNOSTIC_LABELS: tuple[int, ...] = (ARM, TORSO_SKIN, GARMENT, SLEEVE)
GARMENT_LABELS: tuple[int, ...] = (GARMENT, SLEEVE)

# Per-identity random streams (independent of each other and of the worker that runs them).
STREAM_BODY, STREAM_GARMENT, STREAM_G0, STREAM_WARP = range(4)

SKIN_TONES: tuple[tuple[int, int, int], ...] = (
    (255, 224, 196), (241, 194, 160), (224, 172, 125), (198, 134, 96), (160, 102, 70), (111, 70, 48), (86, 54, 38),
)  # fmt: skip
HAIR_COLORS: tuple[tuple[int, int, int], ...] = (
    (20, 16, 14), (60, 38, 24), (110, 70, 40), (190, 150, 90), (150, 60, 30), (120, 120, 120), (230, 210, 160),
)  # fmt: skip
GARMENT_COLORS: tuple[tuple[int, int, int], ...] = (
    (200, 30, 40), (30, 90, 200), (30, 150, 70), (240, 200, 40), (245, 245, 245), (25, 25, 30), (240, 120, 30),
    (130, 50, 160), (40, 180, 190), (230, 110, 160), (120, 80, 50), (150, 160, 170), (20, 40, 90), (170, 210, 90),
)  # fmt: skip
PANTS_COLORS: tuple[tuple[int, int, int], ...] = (
    (40, 50, 80), (30, 30, 35), (90, 90, 100), (160, 140, 110), (70, 90, 130), (110, 60, 50),
)  # fmt: skip
BACKGROUND_COLORS: tuple[tuple[int, int, int], ...] = (
    (230, 230, 225), (200, 215, 230), (235, 220, 200), (190, 200, 190), (120, 130, 140), (215, 200, 220),
    (60, 65, 75), (245, 240, 230),
)  # fmt: skip
PRINT_WORDS: tuple[str, ...] = ("MVG", "VTON", "SUN", "ZEN", "RUN", "NEO", "WAVE", "COOL", "AIR", "FLY", "OK", "GO")
PRINT_KINDS: tuple[str, ...] = ("text", "number", "logo", "stripes", "plain")
LOGO_SHAPES: tuple[str, ...] = ("star", "ring", "triangle", "diamond", "bars", "cross")
ARM_POSES: tuple[str, ...] = ("down", "akimbo", "crossed", "one_across", "forward")
# Sleeve length as a fraction of the whole arm; 0 = sleeveless.
SLEEVE_LENGTHS: tuple[float, ...] = (0.0, 0.3, 0.5, 1.0)
NECKLINES: tuple[str, ...] = ("crew", "vee")
# Framing: body measures are fractions of `FRAMING_ZOOM * height`; the head top sits at HEAD_TOP * height, so the
# frame shows the head to about the knees, like a try-on photo.
FRAMING_ZOOM = 1.3
HEAD_TOP = 0.035


# ------------------------------------------------------------------------------------------------ specifications
@dataclass(frozen=True)
class PrintSpec:
    """A print on one panel of a garment."""

    kind: str  # one of PRINT_KINDS
    color: tuple[int, int, int]
    text: str = ""
    shape: str = ""
    stripes: int = 0
    vertical: bool = False


@dataclass(frozen=True)
class GarmentSpec:
    """A top: colour, sleeve length, hem height, neckline and distinct front / back prints."""

    color: tuple[int, int, int]
    sleeve: float  # fraction of the arm covered
    hem: float  # 0 = waist, 1 = hip
    neckline: str
    front: PrintSpec
    back: PrintSpec


@dataclass(frozen=True)
class BodySpec:
    """Body shape, colours and pose of one identity, in fractions of the image height unless noted."""

    scale: float
    center_x: float  # fraction of the width
    head_radius: float
    shoulder: float  # half widths
    chest: float
    waist: float
    hip: float
    depth_ratio: float  # torso depth / width
    arm_radius: float
    leg_radius: float
    skin: tuple[int, int, int]
    hair: tuple[int, int, int]
    hair_length: float  # 0 = short; else length of the hair sheet below the head centre
    pants: tuple[int, int, int]
    background: tuple[tuple[int, int, int], tuple[int, int, int]]
    arm_pose: str
    abduction: float  # radians, spread of hanging arms
    stance: float


def _rng(seed: int, index: int, stream: int, *extra: int) -> np.random.Generator:
    return np.random.default_rng([seed, index, stream, *extra])


def _pick(rng: np.random.Generator, options: tuple) -> object:
    return options[int(rng.integers(len(options)))]


def _luminance(color: tuple[int, int, int]) -> float:
    return 0.299 * color[0] + 0.587 * color[1] + 0.114 * color[2]


def _contrasting(rng: np.random.Generator, base: tuple[int, int, int]) -> tuple[int, int, int]:
    choices = [c for c in GARMENT_COLORS if abs(_luminance(c) - _luminance(base)) > 70]
    return choices[int(rng.integers(len(choices)))]


def _print_spec(rng: np.random.Generator, kind: str, base: tuple[int, int, int]) -> PrintSpec:
    color = _contrasting(rng, base)
    if kind == "text":
        return PrintSpec(kind, color, text=str(_pick(rng, PRINT_WORDS)))
    if kind == "number":
        return PrintSpec(kind, color, text=str(int(rng.integers(1, 100))))
    if kind == "logo":
        return PrintSpec(kind, color, shape=str(_pick(rng, LOGO_SHAPES)))
    if kind == "stripes":
        return PrintSpec(kind, color, stripes=int(rng.integers(2, 6)), vertical=bool(rng.random() < 0.3))
    return PrintSpec("plain", color)


def sample_garment(rng: np.random.Generator, avoid_color: tuple[int, int, int] | None = None) -> GarmentSpec:
    """Draw a garment whose front and back prints are of different kinds (the front is never plain)."""
    colors = [c for c in GARMENT_COLORS if c != avoid_color]
    color = colors[int(rng.integers(len(colors)))]
    front_kind = str(_pick(rng, PRINT_KINDS[:-1]))
    back_kinds = tuple(k for k in PRINT_KINDS if k != front_kind)
    back_kind = str(_pick(rng, back_kinds))
    return GarmentSpec(
        color=color,
        sleeve=float(_pick(rng, SLEEVE_LENGTHS)),
        hem=float(rng.uniform(0.35, 1.0)),
        neckline=str(_pick(rng, NECKLINES)),
        front=_print_spec(rng, front_kind, color),
        back=_print_spec(rng, back_kind, color),
    )


def sample_body(rng: np.random.Generator) -> BodySpec:
    """Draw body shape, skin, hair, pose and background."""
    shoulder = float(rng.uniform(0.095, 0.125))
    hair_long = rng.random() < 0.45
    background = (tuple(_pick(rng, BACKGROUND_COLORS)), tuple(_pick(rng, BACKGROUND_COLORS)))
    return BodySpec(
        scale=float(rng.uniform(0.92, 1.04)),
        center_x=float(rng.uniform(0.46, 0.54)),
        head_radius=float(rng.uniform(0.058, 0.07)),
        shoulder=shoulder,
        chest=shoulder * float(rng.uniform(0.8, 0.92)),
        waist=shoulder * float(rng.uniform(0.66, 0.86)),
        hip=shoulder * float(rng.uniform(0.78, 0.98)),
        depth_ratio=float(rng.uniform(0.55, 0.7)),
        arm_radius=float(rng.uniform(0.02, 0.027)),
        leg_radius=float(rng.uniform(0.04, 0.052)),
        skin=tuple(int(np.clip(c + rng.integers(-8, 9), 0, 255)) for c in _pick(rng, SKIN_TONES)),
        hair=tuple(_pick(rng, HAIR_COLORS)),
        hair_length=float(rng.uniform(0.12, 0.22)) if hair_long else 0.0,
        pants=tuple(_pick(rng, PANTS_COLORS)),
        background=background,  # type: ignore[arg-type]
        arm_pose=str(_pick(rng, ARM_POSES)),
        abduction=float(rng.uniform(0.08, 0.3)),
        stance=float(rng.uniform(0.0, 0.02)),
    )


# ------------------------------------------------------------------------------------------------ skeleton in 3D
@dataclass
class Skeleton3D:
    """Joints of a posed body in the body frame (pixels) plus the measures the renderer needs."""

    joints: dict[str, np.ndarray]  # name -> (3,) X, Y, Z
    head_center: np.ndarray
    head_radius: float
    neck_y: float  # top of the torso (neck base)
    shoulder_y: float
    waist_y: float
    hip_y: float
    widths: tuple[float, float, float, float, float]  # half widths at neck, shoulder, chest, waist, hip
    depth_ratio: float
    arm_radius: float
    leg_radius: float
    center_x: float


def build_skeleton(body: BodySpec, height: int, width: int) -> Skeleton3D:
    """Place the joints of `body` in an image of `height x width` (front-facing body frame, pixels)."""
    unit = height * body.scale * FRAMING_ZOOM
    head_radius = body.head_radius * unit
    head_top = HEAD_TOP * height
    head_y = head_top + 1.1 * head_radius
    neck_y = head_y + 1.1 * head_radius + 0.02 * unit
    shoulder_y = neck_y + 0.035 * unit
    waist_y = shoulder_y + 0.2 * unit
    hip_y = shoulder_y + 0.31 * unit
    knee_y = hip_y + 0.24 * unit
    ankle_y = knee_y + 0.23 * unit
    shoulder, chest, waist, hip = (w * unit for w in (body.shoulder, body.chest, body.waist, body.hip))
    arm_radius, leg_radius = body.arm_radius * unit, body.leg_radius * unit
    upper_arm, forearm = 0.15 * unit, 0.135 * unit
    depth = body.depth_ratio
    joints: dict[str, np.ndarray] = {}
    joint_y = shoulder_y + 0.6 * arm_radius
    for side, sign in (("right", -1.0), ("left", 1.0)):
        joints[f"{side}_shoulder"] = np.array([sign * (shoulder - 0.8 * arm_radius), joint_y, 0.0])
    joints["neck"] = np.array([0.0, joint_y, 0.0])
    pose = body.arm_pose
    for side, sign in (("right", -1.0), ("left", 1.0)):
        s = joints[f"{side}_shoulder"]
        across = pose == "crossed" or (pose == "one_across" and side == "right")
        if across:
            elbow = s + np.array([sign * 0.3 * upper_arm, 0.93 * upper_arm, 0.25 * upper_arm])
            lift = 0.0 if side == "right" else 0.12 * forearm  # the two forearms cross at different heights
            reach = chest * (0.55 if pose == "crossed" else 0.35)
            front = depth * chest + arm_radius * (1.6 if side == "right" else 1.1)
            wrist = np.array([-sign * reach, elbow[1] - 0.15 * forearm + lift, front])
        elif pose == "akimbo":
            elbow = s + np.array([sign * 0.62 * upper_arm, 0.75 * upper_arm, -0.12 * upper_arm])
            wrist = np.array([sign * (waist + 0.8 * arm_radius), waist_y - 0.05 * unit, 0.1 * depth * waist])
        elif pose == "forward":
            elbow = s + np.array([sign * 0.12 * upper_arm, 0.97 * upper_arm, 0.15 * upper_arm])
            wrist = elbow + np.array([-sign * 0.18 * forearm, 0.3 * forearm, 0.93 * forearm])
        else:  # hanging down
            spread = body.abduction
            elbow = s + upper_arm * np.array([sign * math.sin(spread), math.cos(spread), 0.08])
            wrist = elbow + forearm * np.array([sign * math.sin(spread * 0.7), math.cos(spread * 0.7), 0.18])
        joints[f"{side}_elbow"] = elbow
        joints[f"{side}_wrist"] = wrist
        hip_x = sign * 0.55 * hip
        joints[f"{side}_hip"] = np.array([hip_x, hip_y - 0.02 * unit, 0.0])
        joints[f"{side}_knee"] = np.array([hip_x + sign * body.stance * unit, knee_y, 0.0])
        joints[f"{side}_ankle"] = np.array([hip_x + sign * 1.5 * body.stance * unit, ankle_y, 0.0])
    head_center = np.array([0.0, head_y, 0.0])
    # Face points on the head ellipsoid (unit sphere scaled by the radius).
    for name, point in (
        ("nose", (0.0, 0.2, 1.0)), ("right_eye", (-0.38, -0.02, 0.92)), ("left_eye", (0.38, -0.02, 0.92)),
        ("right_ear", (-0.97, 0.05, -0.1)), ("left_ear", (0.97, 0.05, -0.1)),
    ):  # fmt: skip
        joints[name] = head_center + head_radius * np.array([point[0], 1.1 * point[1], point[2]])
    return Skeleton3D(
        joints=joints, head_center=head_center, head_radius=head_radius, neck_y=neck_y, shoulder_y=shoulder_y,
        waist_y=waist_y, hip_y=hip_y, widths=(0.3 * head_radius + 0.02 * unit, shoulder, chest, waist, hip),
        depth_ratio=depth, arm_radius=arm_radius, leg_radius=leg_radius, center_x=body.center_x * width,
    )  # fmt: skip


def project(points: np.ndarray, yaw: float, center_x: float) -> np.ndarray:
    """Body-frame points `(..., 3)` -> image `(..., 3)`: x, y in pixels and depth z (larger = nearer)."""
    c, s = math.cos(yaw), math.sin(yaw)
    x = center_x + points[..., 0] * c + points[..., 2] * s
    z = -points[..., 0] * s + points[..., 2] * c
    return np.stack([x, points[..., 1], z], axis=-1)


# Face points visible only when their depth exceeds this fraction of the head radius (ears show from behind too).
FACE_VISIBILITY: dict[str, float] = {"nose": -0.05, "right_eye": 0.0, "left_eye": 0.0, "right_ear": -0.3,
                                     "left_ear": -0.3}  # fmt: skip


def person_keypoints(skeleton: Skeleton3D, yaw: float, height: int, width: int) -> np.ndarray:
    """Exact OpenPose COCO-18 keypoints `(18, 3)` of the posed body at `yaw` (face points hidden when turned away)."""
    out = np.zeros((NUM_KEYPOINTS, 3), dtype=np.float32)
    for name, index in COCO18_INDEX.items():
        x, y, z = project(skeleton.joints[name], yaw, skeleton.center_x)
        visible = 0 <= x <= width - 1 and 0 <= y <= height - 1
        if name in FACE_VISIBILITY:
            visible = visible and z > FACE_VISIBILITY[name] * skeleton.head_radius
        if visible:
            out[index] = (x, y, 1.0)
    return out


# ------------------------------------------------------------------------------------------------ textures
def _draw_logo(canvas: np.ndarray, shape: str, center: tuple[float, float], size: float, color: tuple) -> None:
    cx, cy = center
    thickness = max(1, round(size * 0.22))
    if shape == "ring":
        cv2.circle(canvas, (round(cx), round(cy)), max(1, round(size * 0.8)), color, thickness, cv2.LINE_AA)
        cv2.circle(canvas, (round(cx), round(cy)), max(1, round(size * 0.25)), color, -1, cv2.LINE_AA)
        return
    if shape == "bars":
        for k in range(3):
            y = cy - size * 0.7 + k * size * 0.6
            cv2.rectangle(canvas, (round(cx - size * (0.9 - 0.25 * k)), round(y)),
                          (round(cx + size * (0.9 - 0.25 * k)), round(y + size * 0.35)), color, -1)  # fmt: skip
        return
    if shape == "star":
        angles = np.arange(10) * math.pi / 5 - math.pi / 2
        radii = np.where(np.arange(10) % 2 == 0, size, size * 0.42)
        points = np.stack([cx + radii * np.cos(angles), cy + radii * np.sin(angles)], axis=1)
    elif shape == "triangle":
        points = np.array([[cx, cy - size], [cx + size * 0.95, cy + size * 0.7], [cx - size * 0.95, cy + size * 0.7]])
    elif shape == "diamond":
        points = np.array([[cx, cy - size], [cx + size * 0.7, cy], [cx, cy + size], [cx - size * 0.7, cy]])
    else:  # cross
        a, b = size, size * 0.32
        points = np.array([[cx - b, cy - a], [cx + b, cy - a], [cx + b, cy - b], [cx + a, cy - b], [cx + a, cy + b],
                           [cx + b, cy + b], [cx + b, cy + a], [cx - b, cy + a], [cx - b, cy + b], [cx - a, cy + b],
                           [cx - a, cy - b], [cx - b, cy - b]])  # fmt: skip
    cv2.fillPoly(canvas, [np.round(points * 16).astype(np.int32)], color, cv2.LINE_AA, shift=4)


def _draw_print(panel: np.ndarray, spec: PrintSpec) -> None:
    """Draw `spec` onto one RGB panel `(h, w, 3)` in place (the print sits on the chest / upper back)."""
    h, w = panel.shape[:2]
    if spec.kind == "stripes":
        count = spec.stripes
        if spec.vertical:
            band = w / (2 * count + 1)
            for k in range(count):
                x0 = (2 * k + 1) * band
                panel[:, round(x0) : round(x0 + band)] = spec.color
        else:
            band = h * 0.8 / (2 * count)
            for k in range(count):
                y0 = h * 0.12 + 2 * k * band
                panel[round(y0) : round(y0 + band)] = spec.color
        return
    center = (w * 0.5, h * 0.4)
    if spec.kind == "logo":
        _draw_logo(panel, spec.shape, center, min(w * 0.22, h * 0.25), spec.color)
    elif spec.kind in ("text", "number"):
        font = cv2.FONT_HERSHEY_DUPLEX if spec.kind == "text" else cv2.FONT_HERSHEY_TRIPLEX
        box_w, box_h = w * (0.62 if spec.kind == "text" else 0.5), h * (0.3 if spec.kind == "text" else 0.45)
        (tw, th), _ = cv2.getTextSize(spec.text, font, 1.0, 2)
        scale = min(box_w / tw, box_h / th)
        thickness = max(1, round(scale * (2.6 if spec.kind == "number" else 2.0)))
        (tw, th), _ = cv2.getTextSize(spec.text, font, scale, thickness)
        origin = (round(center[0] - tw / 2), round(center[1] + th / 2))
        cv2.putText(panel, spec.text, origin, font, scale, spec.color, thickness, cv2.LINE_AA)


# Texture layout: columns cover the torso angle phi in [-90, 270) degrees; the front panel is [-90, 90).
TEXTURE_PHI0 = -math.pi / 2


def build_texture(garment: GarmentSpec, height: int) -> np.ndarray:
    """Unwrapped torso texture `(th, tw, 4)` uint8 RGBA: front panel left half, back panel right half, alpha 0 at
    the neckline. Rows run from the neck base (row 0) to the hem."""
    th = max(16, round(0.42 * height))
    panel_w = max(16, round(0.55 * height))
    texture = np.empty((th, 2 * panel_w, 4), dtype=np.uint8)
    texture[..., :3] = garment.color
    texture[..., 3] = 255
    for k, spec in enumerate((garment.front, garment.back)):
        panel = np.ascontiguousarray(texture[:, k * panel_w : (k + 1) * panel_w, :3])
        # prints sit between the neckline and ~60% of the garment height, in the central 55% of the panel
        inner = np.ascontiguousarray(panel[round(0.12 * th) : round(0.75 * th), round(0.2 * panel_w) : round(0.8 * panel_w)])
        if spec.kind == "stripes":
            _draw_print(panel, spec)
        else:
            _draw_print(inner, spec)
            panel[round(0.12 * th) : round(0.75 * th), round(0.2 * panel_w) : round(0.8 * panel_w)] = inner
        texture[:, k * panel_w : (k + 1) * panel_w, :3] = panel
    # neckline cut-outs (alpha 0 shows skin): deeper in front, shallow at the back
    alpha = np.ascontiguousarray(texture[..., 3])
    neck_half = round(0.16 * panel_w)
    front_depth = round((0.26 if garment.neckline == "vee" else 0.13) * th)
    cx = panel_w // 2
    if garment.neckline == "vee":
        cv2.fillPoly(alpha, [np.array([[cx - neck_half, 0], [cx + neck_half, 0], [cx, front_depth]], np.int32)], 0)
    else:
        cv2.ellipse(alpha, (cx, 0), (neck_half, front_depth), 0, 0, 180, 0, -1)
    cv2.ellipse(alpha, (panel_w + cx, 0), (neck_half, max(1, round(0.04 * th))), 0, 0, 180, 0, -1)
    texture[..., 3] = alpha
    return texture


# ------------------------------------------------------------------------------------------------ z-buffer canvas
class Canvas:
    """Colour + depth + label buffers; primitives write where they are nearer than what is already there."""

    def __init__(self, height: int, width: int, background: np.ndarray | None = None) -> None:
        self.height, self.width = height, width
        self.color = np.zeros((height, width, 3), np.float32) if background is None else background.copy()
        self.depth = np.full((height, width), -np.inf, np.float32)
        self.label = np.zeros((height, width), np.uint8)

    def bbox(self, x0: float, y0: float, x1: float, y1: float) -> tuple[slice, slice, np.ndarray, np.ndarray] | None:
        """Pixel window covering `[x0, x1] x [y0, y1]` and its pixel-centre coordinate grids, or None if empty."""
        c0, c1 = max(0, math.floor(x0)), min(self.width, math.ceil(x1) + 1)
        r0, r1 = max(0, math.floor(y0)), min(self.height, math.ceil(y1) + 1)
        if c0 >= c1 or r0 >= r1:
            return None
        ys, xs = np.mgrid[r0:r1, c0:c1].astype(np.float32)
        return slice(r0, r1), slice(c0, c1), xs, ys

    def paint(self, rows: slice, cols: slice, inside: np.ndarray, depth: np.ndarray, color: np.ndarray,
              label: int | np.ndarray) -> None:  # fmt: skip
        """Write `color` (h, w, 3) / `label` where `inside` and nearer than the current depth."""
        current = self.depth[rows, cols]
        update = inside & (depth > current)
        current[update] = depth[update]
        self.color[rows, cols][update] = color[update] if color.ndim == 3 else color
        labels = self.label[rows, cols]
        labels[update] = label[update] if isinstance(label, np.ndarray) else label


def draw_capsule(canvas: Canvas, p0: np.ndarray, p1: np.ndarray, radius: float, color: tuple, label: int) -> None:
    """A shaded 3D capsule between projected points `p0, p1` (x, y, depth) of radius `radius` pixels."""
    window = canvas.bbox(min(p0[0], p1[0]) - radius, min(p0[1], p1[1]) - radius,
                         max(p0[0], p1[0]) + radius, max(p0[1], p1[1]) + radius)  # fmt: skip
    if window is None:
        return
    rows, cols, xs, ys = window
    dx, dy = p1[0] - p0[0], p1[1] - p0[1]
    length2 = dx * dx + dy * dy
    t = np.zeros_like(xs) if length2 < 1e-6 else np.clip(((xs - p0[0]) * dx + (ys - p0[1]) * dy) / length2, 0, 1)
    ex, ey = xs - (p0[0] + t * dx), ys - (p0[1] + t * dy)
    dist2 = ex * ex + ey * ey
    inside = dist2 <= radius * radius
    bulge = np.sqrt(np.maximum(radius * radius - dist2, 0.0))
    depth = p0[2] + t * (p1[2] - p0[2]) + bulge
    shade = (0.62 + 0.38 * bulge / max(radius, 1e-6))[..., None]
    canvas.paint(rows, cols, inside, depth, shade * np.asarray(color, np.float32), label)


def draw_sheet(canvas: Canvas, center: np.ndarray, half_w: float, half_h: float, color: tuple, label: int) -> None:
    """A flat ellipse at constant depth (long hair hanging behind the head)."""
    window = canvas.bbox(center[0] - half_w, center[1] - half_h, center[0] + half_w, center[1] + half_h)
    if window is None:
        return
    rows, cols, xs, ys = window
    u, v = (xs - center[0]) / max(half_w, 1e-3), (ys - center[1]) / half_h
    inside = (u * u + v * v <= 1.0) | ((np.abs(u) <= 1.0) & (v <= 0))
    shade = (0.85 + 0.15 * np.cos(u * 6.0))[..., None]
    canvas.paint(rows, cols, inside, np.full_like(xs, center[2]), shade * np.asarray(color, np.float32), label)


def draw_head(canvas: Canvas, skeleton: Skeleton3D, body: BodySpec, yaw: float) -> None:
    """Head ellipsoid: hair on top and behind, face (eyes, nose, mouth) only on the front half."""
    r = skeleton.head_radius
    ry = 1.1 * r
    center = project(skeleton.head_center, yaw, skeleton.center_x)
    window = canvas.bbox(center[0] - r, center[1] - ry, center[0] + r, center[1] + ry)
    if window is None:
        return
    rows, cols, xs, ys = window
    dx, dy = (xs - center[0]) / r, (ys - center[1]) / ry
    inside = dx * dx + dy * dy <= 1.0
    dz = np.sqrt(np.maximum(1.0 - dx * dx - dy * dy, 0.0))
    c, s = math.cos(yaw), math.sin(yaw)
    bx, bz = dx * c - dz * s, dx * s + dz * c  # back to the body frame (X left, Z forward)
    face = (bz > 0.15) & (dy > -0.45)
    lower_sides = (dy > 0.15) & (bz > -0.35)
    hair_bottom = 0.5 if body.hair_length == 0 else 1.1
    is_hair = ~face & ~lower_sides & (dy < hair_bottom)
    skin = np.asarray(body.skin, np.float32)
    color = np.empty(xs.shape + (3,), np.float32)
    color[:] = skin
    color[is_hair] = body.hair
    label = np.where(is_hair, HAIR, SKIN).astype(np.uint8)
    eye_dark = np.array([35, 30, 30], np.float32)
    for ex in (-0.38, 0.38):
        eye = (bx - ex) ** 2 + (dy + 0.02) ** 2 < 0.16**2
        color[eye & (bz > 0.3)] = eye_dark
    mouth = (np.abs(bx) < 0.28) & (np.abs(dy - 0.5) < 0.07) & (bz > 0.5)
    color[mouth] = (170, 60, 60)
    nose = (np.abs(bx) < 0.1) & (dy > 0.1) & (dy < 0.32) & (bz > 0.75)
    color[nose] *= 0.8
    shade = (0.7 + 0.3 * dz)[..., None]
    canvas.paint(rows, cols, inside, center[2] + r * dz, shade * color, label)


def torso_profile(skeleton: Skeleton3D, ys: np.ndarray) -> np.ndarray:
    """Half width of the torso at image rows `ys` (neck base -> shoulders -> chest -> waist -> hip)."""
    neck, shoulder, chest, waist, hip = skeleton.widths
    chest_y = skeleton.shoulder_y + 0.3 * (skeleton.waist_y - skeleton.shoulder_y)
    knots_y = [skeleton.neck_y, skeleton.shoulder_y - 0.2 * (skeleton.shoulder_y - skeleton.neck_y),
               skeleton.shoulder_y + 0.6 * skeleton.arm_radius, chest_y, skeleton.waist_y, skeleton.hip_y]
    knots_w = [neck, 0.75 * shoulder, shoulder, chest, waist, hip]
    return np.interp(ys, knots_y, knots_w).astype(np.float32)


def draw_torso(
    canvas: Canvas,
    skeleton: Skeleton3D,
    yaw: float,
    texture: np.ndarray | None,
    hem_y: float,
    skin: tuple,
    pants: tuple | None,
) -> None:
    """The torso as an elliptic cylinder, textured per pixel: garment above `hem_y` (skin where the texture's alpha is 0),
    pants below. `texture=None` draws skin; `pants=None` leaves the rows below the hem empty (garment-only layers)."""
    top, bottom = skeleton.neck_y, skeleton.hip_y
    max_half = max(skeleton.widths)
    window = canvas.bbox(skeleton.center_x - max_half, top, skeleton.center_x + max_half, bottom)
    if window is None:
        return
    rows, cols, xs, ys = window
    a = torso_profile(skeleton, ys[:, :1])  # (h, 1)
    b = skeleton.depth_ratio * a
    c, s = math.cos(yaw), math.sin(yaw)
    big_a, big_b = a * c, b * s
    radius = np.sqrt(big_a * big_a + big_b * big_b) + 1e-6
    beta = np.arctan2(big_b, big_a)
    xr = xs - skeleton.center_x
    inside = np.abs(xr) <= radius
    base = np.arcsin(np.clip(xr / radius, -1.0, 1.0))
    phis = np.stack([base - beta, math.pi - base - beta])  # both surface points on this column
    depths = -a * np.sin(phis) * s + b * np.cos(phis) * c
    choose = np.argmax(depths, axis=0)
    phi = np.take_along_axis(phis, choose[None], 0)[0]
    depth = np.take_along_axis(depths, choose[None], 0)[0]
    normal_x, normal_z = b * np.sin(phi), a * np.cos(phi)
    facing = (-normal_x * s + normal_z * c) / np.sqrt(normal_x * normal_x + normal_z * normal_z + 1e-6)
    shade = (0.55 + 0.45 * np.clip(facing, 0, 1))[..., None]
    garment_rows = ys < hem_y
    color = np.empty(xs.shape + (3,), np.float32)
    color[:] = skin
    label = np.full(xs.shape, TORSO_SKIN, np.uint8)
    if texture is not None:
        th, tw = texture.shape[:2]
        pad = 2
        padded = np.concatenate([texture[:, -pad:], texture, texture[:, :pad]], axis=1)
        map_x = (np.mod(phi - TEXTURE_PHI0, 2 * math.pi) / (2 * math.pi) * tw - 0.5 + pad).astype(np.float32)
        map_y = ((ys - top) / max(hem_y - top, 1.0) * th - 0.5).astype(np.float32)
        sampled = cv2.remap(padded, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        cloth = garment_rows & (sampled[..., 3] >= 128)
        color[cloth] = sampled[..., :3][cloth]
        label[cloth] = GARMENT
    if pants is not None:
        below = ~garment_rows
        color[below] = pants
        label[below] = PANTS
    else:
        inside = inside & garment_rows
        if texture is not None:
            inside = inside & (label == GARMENT)
    canvas.paint(rows, cols, inside, depth, shade * color, label)


def _arm_segments(skeleton: Skeleton3D, side: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    j = skeleton.joints
    return j[f"{side}_shoulder"], j[f"{side}_elbow"], j[f"{side}_wrist"]


def _sleeve_parts(skeleton: Skeleton3D, side: str, fraction: float) -> list[tuple[np.ndarray, np.ndarray, float]]:
    """3D segments (start, end, radius) of the sleeve covering `fraction` of the arm."""
    if fraction <= 0:
        return []
    shoulder, elbow, wrist = _arm_segments(skeleton, side)
    upper = float(np.linalg.norm(elbow - shoulder))
    lower = float(np.linalg.norm(wrist - elbow))
    covered = fraction * (upper + lower)
    inward = np.array([0.35 * skeleton.arm_radius * (1 if side == "right" else -1), -0.2 * skeleton.arm_radius, 0])
    r = skeleton.arm_radius
    parts = [(shoulder + inward, shoulder + (elbow - shoulder) * min(1.0, covered / upper), 1.35 * r)]
    if covered > upper:
        parts.append((elbow, elbow + (wrist - elbow) * min(1.0, (covered - upper) / lower), 1.18 * r))
    return parts


def render_person(
    skeleton: Skeleton3D, body: BodySpec, garment: GarmentSpec, texture: np.ndarray, yaw: float,
    background: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Render the dressed person at `yaw`. Returns `(h, w, 3)` uint8 RGB and the `(h, w)` uint8 label map."""
    height, width = background.shape[:2]
    canvas = Canvas(height, width, background)
    j = skeleton.joints

    def p(point: np.ndarray) -> np.ndarray:
        return project(point, yaw, skeleton.center_x)

    for side in ("right", "left"):
        hip, knee, ankle = (p(j[f"{side}_{n}"]) for n in ("hip", "knee", "ankle"))
        draw_capsule(canvas, hip, knee, skeleton.leg_radius, body.pants, PANTS)
        draw_capsule(canvas, knee, ankle, 0.8 * skeleton.leg_radius, body.pants, PANTS)
    hem_y = skeleton.waist_y + garment.hem * (skeleton.hip_y - skeleton.waist_y)
    draw_torso(canvas, skeleton, yaw, texture, hem_y, body.skin, body.pants)
    neck_base = np.array([0.0, skeleton.neck_y + 0.3 * skeleton.arm_radius, 0.0])
    neck_top = skeleton.head_center + np.array([0.0, 0.5 * skeleton.head_radius, 0.0])
    draw_capsule(canvas, p(neck_base), p(neck_top), skeleton.widths[0], body.skin, SKIN)
    for side in ("right", "left"):
        shoulder, elbow, wrist = (p(x) for x in _arm_segments(skeleton, side))
        draw_capsule(canvas, shoulder, elbow, skeleton.arm_radius, body.skin, ARM)
        draw_capsule(canvas, elbow, wrist, 0.85 * skeleton.arm_radius, body.skin, ARM)
        hand = wrist + (wrist - elbow) * (0.9 * skeleton.arm_radius / max(np.linalg.norm((wrist - elbow)[:2]), 1e-3))
        draw_capsule(canvas, wrist, hand, 1.05 * skeleton.arm_radius, body.skin, ARM)
        for start, end, radius in _sleeve_parts(skeleton, side, garment.sleeve):
            draw_capsule(canvas, p(start), p(end), radius, garment.color, SLEEVE)
    if body.hair_length > 0:
        # a hair sheet lying just behind the back of the torso
        back = -(skeleton.depth_ratio * skeleton.widths[1] + 0.3 * skeleton.head_radius)
        sheet_len = body.hair_length * background.shape[0]
        center = p(skeleton.head_center + np.array([0.0, 0.5 * sheet_len, back]))
        half_w = skeleton.head_radius * (0.95 * abs(math.cos(yaw)) + 0.35 * abs(math.sin(yaw)))
        draw_sheet(canvas, center, half_w, 0.5 * sheet_len, body.hair, HAIR)
    draw_head(canvas, skeleton, body, yaw)
    return np.clip(canvas.color + 0.5, 0, 255).astype(np.uint8), canvas.label


def render_garment_layer(
    skeleton: Skeleton3D, garment: GarmentSpec, texture: np.ndarray, yaw: float, height: int, width: int
) -> tuple[np.ndarray, np.ndarray]:
    """The garment alone on the posed body (no arms, no head): `(h, w, 3)` float32 colour and `(h, w)` bool mask."""
    canvas = Canvas(height, width)
    hem_y = skeleton.waist_y + garment.hem * (skeleton.hip_y - skeleton.waist_y)
    draw_torso(canvas, skeleton, yaw, texture, hem_y, (0, 0, 0), None)
    for side in ("right", "left"):
        for start, end, radius in _sleeve_parts(skeleton, side, garment.sleeve):
            a, b = project(start, yaw, skeleton.center_x), project(end, yaw, skeleton.center_x)
            draw_capsule(canvas, a, b, radius, garment.color, SLEEVE)
    return canvas.color, canvas.label > 0


# ------------------------------------------------------------------------------------------------ product images
# Canonical flat pose of a laid-out garment: sleeves point down and out at this angle below horizontal.
FLAT_SLEEVE_ANGLE = math.radians(55)


def render_product(
    skeleton: Skeleton3D, garment: GarmentSpec, texture: np.ndarray, height: int, width: int, back: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Flat product photo of the garment's front (or back) on a light background.

    Returns `(h, w, 3)` uint8 RGB, `(h, w)` uint8 mask {0, 255}, and `(18, 3)` canonical garment keypoints (neck,
    shoulders, elbows, wrists, hips; the back view mirrored, so the garment's left side is on the image left).
    """
    neck, shoulder, chest, waist, hip = skeleton.widths
    torso_h = skeleton.waist_y + garment.hem * (skeleton.hip_y - skeleton.waist_y) - skeleton.neck_y
    arm = float(np.linalg.norm(skeleton.joints["right_elbow"] - skeleton.joints["right_shoulder"]))
    forearm = float(np.linalg.norm(skeleton.joints["right_wrist"] - skeleton.joints["right_elbow"]))
    flat = 1.25  # laid flat, the garment is wider than the worn silhouette
    # scale so the garment with full-length arms fits the frame
    sleeve = garment.sleeve * (arm + forearm)
    span_w = 2 * (flat * shoulder + sleeve * math.cos(FLAT_SLEEVE_ANGLE))
    span_h = max(torso_h, 0.1 * height + sleeve * math.sin(FLAT_SLEEVE_ANGLE))
    k = min(0.92 * width / span_w, 0.75 * height / span_h)
    cx, top = width / 2, 0.5 * height - 0.5 * k * torso_h
    half = [flat * k * w for w in (shoulder, chest, waist, hip)]
    bottom = top + k * torso_h
    drop = 0.04 * k * height  # shoulder slope
    armpit_y = top + 0.18 * k * torso_h
    hem_half = half[2] + garment.hem * (half[3] - half[2])
    polygon = np.array([
        [cx - flat * k * neck, top], [cx - half[0], top + drop], [cx - half[1], armpit_y], [cx - hem_half, bottom],
        [cx + hem_half, bottom], [cx + half[1], armpit_y], [cx + half[0], top + drop], [cx + flat * k * neck, top],
    ])  # fmt: skip
    image = np.full((height, width, 3), 248, np.uint8)
    mask = np.zeros((height, width), np.uint8)
    # sleeves first (the body panel covers their roots)
    sleeve_len = garment.sleeve * k * (arm + forearm)
    sleeve_w = 1.3 * k * skeleton.arm_radius
    direction = np.array([math.cos(FLAT_SLEEVE_ANGLE), math.sin(FLAT_SLEEVE_ANGLE)])
    for sign in (-1.0, 1.0):
        root = np.array([cx + sign * (half[0] - 0.4 * sleeve_w), top + drop + 0.8 * sleeve_w])
        if sleeve_len > 0:
            d = direction * np.array([sign, 1.0])
            normal = np.array([-d[1], d[0]])
            end = root + d * sleeve_len
            quad = np.array([root + normal * sleeve_w * 1.15, end + normal * sleeve_w, end - normal * sleeve_w,
                             root - normal * sleeve_w * 1.15])  # fmt: skip
            pts = [np.round(quad * 16).astype(np.int32)]
            cv2.fillPoly(image, pts, garment.color, cv2.LINE_AA, shift=4)
            cv2.fillPoly(mask, pts, 255, cv2.LINE_8, shift=4)
    # body panel: texture panel stretched over the garment's bounding box, cut by the outline and the neckline alpha
    panel_w = texture.shape[1] // 2
    panel = texture[:, panel_w:] if back else texture[:, :panel_w]
    x0, x1 = cx - half[0], cx + half[0]
    box_w, box_h = max(1, round(x1 - x0)), max(1, round(bottom - top))
    stretched = cv2.resize(panel, (box_w, box_h), interpolation=cv2.INTER_AREA)
    body = np.zeros((height, width), np.uint8)
    cv2.fillPoly(body, [np.round(polygon * 16).astype(np.int32)], 255, cv2.LINE_8, shift=4)
    layer = np.zeros((height, width, 4), np.uint8)
    ix0, iy0 = round(x0), round(top)
    r0, r1 = max(0, iy0), min(height, iy0 + box_h)
    c0, c1 = max(0, ix0), min(width, ix0 + box_w)
    layer[r0:r1, c0:c1] = stretched[r0 - iy0 : r1 - iy0, c0 - ix0 : c1 - ix0]
    body_mask = (body > 0) & (layer[..., 3] >= 128)
    image[body_mask] = layer[..., :3][body_mask]
    neck_hole = (body > 0) & (layer[..., 3] < 128)
    mask[body_mask] = 255
    mask[neck_hole] = 0
    image[neck_hole] = 248
    # canonical keypoints (front view: the wearer's right on the image left)
    keypoints = np.zeros((NUM_KEYPOINTS, 3), np.float32)
    keypoints[COCO18_INDEX["neck"]] = (cx, top + drop, 1)
    for side, sign in (("right", -1.0), ("left", 1.0)):
        image_sign = -sign if back else sign
        root = np.array([cx + image_sign * (half[0] - 0.4 * sleeve_w), top + drop + 0.8 * sleeve_w])
        d = direction * np.array([image_sign, 1.0])
        elbow = root + d * k * arm
        wrist = root + d * k * (arm + forearm)
        keypoints[COCO18_INDEX[f"{side}_shoulder"]] = (*root, 1)
        keypoints[COCO18_INDEX[f"{side}_elbow"]] = (*elbow, 1)
        keypoints[COCO18_INDEX[f"{side}_wrist"]] = (*wrist, 1)
        keypoints[COCO18_INDEX[f"{side}_hip"]] = (cx + image_sign * 0.75 * hem_half, bottom, 1)
    outside = (keypoints[:, 0] < 0) | (keypoints[:, 0] > width - 1) | (keypoints[:, 1] < 0) | (keypoints[:, 1] > height - 1)
    keypoints[outside] = 0
    return image, mask, keypoints


# ------------------------------------------------------------------------------------------------ masks and warps
def background_image(body: BodySpec, height: int, width: int) -> np.ndarray:
    """Vertical gradient between the identity's two background colours, `(h, w, 3)` float32."""
    top, bottom = (np.asarray(c, np.float32) for c in body.background)
    t = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None, None]
    return np.broadcast_to(top * (1 - t) + bottom * t, (height, width, 3)).copy()


def agnostic_mask(labels: list[np.ndarray], height: int) -> np.ndarray:
    """Union of arm / torso / garment labels over several renders, dilated. Returns `(h, w)` uint8 {0, 255}."""
    union = np.zeros(labels[0].shape, bool)
    for label in labels:
        union |= np.isin(label, AGNOSTIC_LABELS)
    radius = max(1, round(0.012 * height))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    return cv2.dilate(union.astype(np.uint8) * 255, kernel)


def imperfect_warp(
    color: np.ndarray, mask: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Distort a garment layer with a random affine jitter plus a smooth displacement field (a stand-in for a TPS
    pre-warp's errors). `(h, w, 3)` float32 and `(h, w)` bool in, same out."""
    height, width = mask.shape
    grid = rng.normal(0.0, 0.018 * height, size=(2, 4, 3)).astype(np.float32)
    flow_x = cv2.resize(grid[0], (width, height), interpolation=cv2.INTER_CUBIC)
    flow_y = cv2.resize(grid[1], (width, height), interpolation=cv2.INTER_CUBIC)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    scale = float(rng.uniform(0.94, 1.06))
    shift_x, shift_y = rng.normal(0.0, 0.012 * height, size=2)
    cx, cy = width / 2, height * 0.45
    map_x = (cx + (xs - cx) / scale + flow_x - shift_x).astype(np.float32)
    map_y = (cy + (ys - cy) / scale + flow_y - shift_y).astype(np.float32)
    warped = cv2.remap(color, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    warped_mask = cv2.remap(mask.astype(np.float32), map_x, map_y, cv2.INTER_LINEAR, borderValue=0.0) > 0.5
    return warped, warped_mask


def prewarp_composite(
    agnostic: np.ndarray, inpaint: np.ndarray, skeleton: Skeleton3D, garment: GarmentSpec, texture: np.ndarray,
    yaw: float, rng: np.random.Generator,
) -> np.ndarray:  # fmt: skip
    """Agnostic image + the garment re-rendered with a wrong yaw and widths, then imperfectly warped, pasted inside
    the inpaint mask (MVG's `warp_feat`). Returns `(h, w, 3)` uint8."""
    height, width = inpaint.shape
    yaw_error = math.radians(float(rng.uniform(6, 14))) * (1 if rng.random() < 0.5 else -1)
    widths = tuple(w * float(rng.uniform(0.92, 1.08)) for w in skeleton.widths)
    perturbed = Skeleton3D(**{**skeleton.__dict__, "widths": widths})
    color, mask = render_garment_layer(perturbed, garment, texture, yaw + yaw_error, height, width)
    warped, warped_mask = imperfect_warp(color, mask, rng)
    paste = warped_mask & (inpaint > 127)
    out = agnostic.copy()
    out[paste] = np.clip(warped[paste] + 0.5, 0, 255).astype(np.uint8)
    return out


# ------------------------------------------------------------------------------------------------ dataset writer
@dataclass(frozen=True)
class SynthConfig:
    """What `generate_synthmvg` writes."""

    identities: int
    height: int = 128
    width: int = 96
    seed: int = 0
    test_fraction: float = 0.2

    def __post_init__(self) -> None:
        if self.identities < 1:
            raise ValueError("identities must be >= 1")
        if not (MIN_HEIGHT <= self.height <= MAX_HEIGHT and 1 <= self.width <= MAX_WIDTH):
            raise ValueError(f"size must be within {MIN_HEIGHT}..{MAX_HEIGHT} x 1..{MAX_WIDTH}, got "
                             f"{self.height}x{self.width}")  # fmt: skip
        if not 0.0 <= self.test_fraction < 1.0:
            raise ValueError("test_fraction must be in [0, 1)")


def identity_name(index: int) -> str:
    """Folder prefix of identity `index` (0-based): '00001', '00002', ..."""
    return f"{index + 1:05d}"


def split_identities(config: SynthConfig) -> dict[str, list[int]]:
    """Train / test identity indices: a seeded permutation, the first `round(N * fraction)` go to test."""
    n = config.identities
    n_test = round(n * config.test_fraction)
    if n >= 2 and config.test_fraction > 0:
        n_test = min(max(n_test, 1), n - 1)
    order = np.random.default_rng([config.seed, n]).permutation(n)
    test = sorted(int(i) for i in order[:n_test])
    train = sorted(int(i) for i in order[n_test:])
    return {"train": train, "test": test}


def unpaired_partners(splits: dict[str, list[int]]) -> dict[int, int]:
    """Each identity's unpaired garment donor: the next identity of the same split (cyclic)."""
    partners = {}
    for members in splits.values():
        for k, index in enumerate(members):
            partners[index] = members[(k + 1) % len(members)]
    return partners


def identity_specs(seed: int, index: int) -> tuple[BodySpec, GarmentSpec, GarmentSpec]:
    """Body, garment G and other garment G0 of identity `index` (pure function of `(seed, index)`)."""
    body = sample_body(_rng(seed, index, STREAM_BODY))
    garment = sample_garment(_rng(seed, index, STREAM_GARMENT))
    other = sample_garment(_rng(seed, index, STREAM_G0), avoid_color=garment.color)
    return body, garment, other


@dataclass
class IdentityRender:
    """All images of one identity, in memory (uint8 RGB unless noted)."""

    persons: list[np.ndarray]  # 5 views in G
    persons_g0: dict[int, np.ndarray]  # person-view index -> the same view in G0
    person_keypoints: list[np.ndarray]  # 5 x (18, 3)
    products: tuple[np.ndarray, np.ndarray]  # front, back
    product_masks: tuple[np.ndarray, np.ndarray]  # uint8 {0, 255}
    product_keypoints: tuple[np.ndarray, np.ndarray]
    inpaint_masks: dict[int, np.ndarray]  # uint8 {0, 255}
    agnostics: dict[int, np.ndarray]
    warps: dict[int, np.ndarray]
    warps_unpaired: dict[int, np.ndarray]


def render_identity(config: SynthConfig, index: int, partner: int) -> IdentityRender:
    """Render every image of identity `index`; `partner` donates the unpaired garment."""
    height, width = config.height, config.width
    body, garment, other = identity_specs(config.seed, index)
    partner_garment = identity_specs(config.seed, partner)[1]
    skeleton = build_skeleton(body, height, width)
    background = background_image(body, height, width)
    texture, texture_g0 = build_texture(garment, height), build_texture(other, height)
    texture_partner = build_texture(partner_garment, height)
    persons, keypoints, labels = [], [], []
    for yaw_deg in SYNTH_YAWS_DEG:
        yaw = math.radians(yaw_deg)
        image, label = render_person(skeleton, body, garment, texture, yaw, background)
        persons.append(image)
        labels.append(label)
        keypoints.append(person_keypoints(skeleton, yaw, height, width))
    products, masks, product_kps = zip(
        *(render_product(skeleton, garment, texture, height, width, back) for back in (False, True))
    )
    persons_g0, inpaint_masks, agnostics, warps, warps_unpaired = {}, {}, {}, {}, {}
    for order, view in SYNTH_ORDER_TO_VIEW_INDEX.items():
        yaw = math.radians(SYNTH_YAWS_DEG[view])
        image_g0, label_g0 = render_person(skeleton, body, other, texture_g0, yaw, background)
        persons_g0[view] = image_g0
        mask = agnostic_mask([labels[view], label_g0], height)
        inpaint_masks[view] = mask
        agnostic = persons[view].copy()
        agnostic[mask > 127] = 128
        agnostics[view] = agnostic
        warps[view] = prewarp_composite(agnostic, mask, skeleton, garment, texture, yaw,
                                        _rng(config.seed, index, STREAM_WARP, int(order), 0))  # fmt: skip
        warps_unpaired[view] = prewarp_composite(agnostic, mask, skeleton, partner_garment, texture_partner, yaw,
                                                 _rng(config.seed, index, STREAM_WARP, int(order), 1))  # fmt: skip
    return IdentityRender(persons, persons_g0, keypoints, tuple(products), tuple(masks), tuple(product_kps),
                          inpaint_masks, agnostics, warps, warps_unpaired)  # fmt: skip


def _write(path: Path, data: bytes | np.ndarray) -> None:
    payload = data.tobytes() if isinstance(data, np.ndarray) else data
    try:
        handle = open(path, "wb")
    except FileNotFoundError:  # create folders lazily: mkdir per file dominates on slow filesystems
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(path, "wb")
    with handle:
        handle.write(payload)


def _link_or_write(source: Path, target: Path, data: bytes | np.ndarray) -> None:
    for _attempt in range(3):
        try:
            os.link(source, target)
            return
        except FileNotFoundError:
            target.parent.mkdir(parents=True, exist_ok=True)
        except FileExistsError:  # regenerating over an old output
            target.unlink()
        except OSError:  # no hard links on this filesystem
            break
    _write(target, data)


def write_identity(out_dir: Path, config: SynthConfig, split: str, index: int, partner: int) -> int:
    """Render identity `index` and write its three MVG folders under `out_dir/split`. Returns the file count."""
    render = render_identity(config, index, partner)
    height, width = config.height, config.width
    name = identity_name(index)
    split_dir = out_dir / split
    jpg = ".jpg"

    def encode(image: np.ndarray) -> np.ndarray:
        return encode_image(image, jpg, jpeg_quality=JPEG_QUALITY)

    front, back = SYNTH_VIEW_FILES[FRONT_VIEW_INDEX], SYNTH_VIEW_FILES[BACK_VIEW_INDEX]
    shared = {
        ("image-wo-bg", front): encode(render.persons[FRONT_VIEW_INDEX]),
        ("image-wo-bg", back): encode(render.persons[BACK_VIEW_INDEX]),
        ("cloth", front): encode(render.products[0]),
        ("cloth", back): encode(render.products[1]),
        ("cloth-mask", front): encode(render.product_masks[0]),
        ("cloth-mask", back): encode(render.product_masks[1]),
        ("skeletons", front): encode(render_skeleton(render.product_keypoints[0], height, width)),
        ("skeletons", back): encode(render_skeleton(render.product_keypoints[1], height, width)),
    }
    shared_json = {front: keypoints_to_openpose_json(render.product_keypoints[0]),
                   back: keypoints_to_openpose_json(render.product_keypoints[1])}  # fmt: skip
    count = 0
    first_folder = None
    for order, view in SYNTH_ORDER_TO_VIEW_INDEX.items():
        folder = f"{name}_{order}"
        person_stem = SYNTH_VIEW_FILES[view]
        shared_files = {Path(subdir) / f"{stem}{jpg}": data for (subdir, stem), data in shared.items()}
        shared_files.update({Path("keypoints") / f"{stem}.json": text.encode() for stem, text in shared_json.items()})
        for relative, data in shared_files.items():
            target = split_dir / relative.parent / folder / relative.name
            if first_folder is None:
                _write(target, data)
            else:  # the same bytes in every folder: hard links are ~40x cheaper than new files
                _link_or_write(split_dir / relative.parent / first_folder / relative.name, target, data)
        first_folder = first_folder or folder
        keypoints = render.person_keypoints[view]
        files = {
            split_dir / "image-wo-bg" / folder / f"{person_stem}{jpg}": encode(render.persons[view]),
            split_dir / "skeletons" / folder / f"{person_stem}{jpg}": encode(render_skeleton(keypoints, height, width)),
            split_dir / "inpaint_mask" / folder / f"{person_stem}{jpg}": encode(render.inpaint_masks[view]),
            split_dir / "agnostic-wo-bg" / folder / f"{person_stem}{jpg}": encode(render.agnostics[view]),
            split_dir / G0_DIR / folder / f"{person_stem}{jpg}": encode(render.persons_g0[view]),
            split_dir / "warp_feat" / f"{folder}{jpg}": encode(render.warps[view]),
            split_dir / "warp_feat_unpair" / f"{folder}{jpg}": encode(render.warps_unpaired[view]),
            split_dir / "keypoints" / folder / f"{person_stem}.json": keypoints_to_openpose_json(keypoints).encode(),
        }
        for path, data in files.items():
            _write(path, data)
        count += len(shared) + len(shared_json) + len(files)
    return count


def _write_job(job: tuple[str, SynthConfig, str, int, int]) -> int:
    out_dir, config, split, index, partner = job
    return write_identity(Path(out_dir), config, split, index, partner)


def generate_synthmvg(
    out_dir: str | Path,
    config: SynthConfig,
    *,
    workers: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, object]:
    """Write a SynthMVG dataset in MVG layout to `out_dir`; same config -> byte-identical files.

    Args:
        workers: processes (default: all cores, at most 8; 1 = in-process).
        progress: called as `progress(done, total)` after each identity.
    Returns:
        The metadata also written to `out_dir/synthmvg.json`.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    splits = split_identities(config)
    partners = unpaired_partners(splits)
    jobs = [(str(out), config, split, index, partners[index]) for split, members in splits.items() for index in members]
    workers = workers if workers is not None else min(8, os.cpu_count() or 1)
    done = 0
    results: Iterator[int]
    if workers <= 1 or len(jobs) <= 1:
        results = map(_write_job, jobs)
        pool = None
    else:
        pool = multiprocessing.get_context("fork" if hasattr(os, "fork") else "spawn").Pool(workers)
        results = pool.imap_unordered(_write_job, jobs, chunksize=max(1, len(jobs) // (8 * workers)))
    try:
        for _ in results:
            done += 1
            if progress is not None:
                progress(done, len(jobs))
    finally:
        if pool is not None:
            pool.close()
            pool.join()
    lines = [f"{identity_name(i)} {identity_name(partners[i])}" for members in splits.values() for i in members]
    (out / "unpaired.txt").write_text("\n".join(sorted(lines)) + "\n")
    meta = {
        "name": "SynthMVG",
        "version": SYNTH_VERSION,
        "config": asdict(config),
        "splits": {split: [identity_name(i) for i in members] for split, members in splits.items()},
        "yaws_deg": list(SYNTH_YAWS_DEG),
        "view_files": list(SYNTH_VIEW_FILES),
        "mvg_order_to_person_file": {o: SYNTH_VIEW_FILES[v] for o, v in SYNTH_ORDER_TO_VIEW_INDEX.items()},
    }
    (out / META_FILE).write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n")
    return meta


# ------------------------------------------------------------------------------------------------ contact sheet
CONTACT_COLUMNS: tuple[tuple[str, str, str, str], ...] = (
    # (label, subdir, folder order, file stem) ; stem "" = the folder's own file (warp_feat)
    ("cloth front", "cloth", "1", "1"), ("cloth back", "cloth", "1", "5"),
    ("0 deg", "image-wo-bg", "1", "1"), ("45 deg", "image-wo-bg", "1", "2"), ("90 deg", "image-wo-bg", "2", "3"),
    ("135 deg", "image-wo-bg", "3", "4"), ("180 deg", "image-wo-bg", "3", "5"), ("G0 45", G0_DIR, "1", "2"),
    ("skel cloth F", "skeletons", "1", "1"), ("skel cloth B", "skeletons", "1", "5"),
    ("skel 45", "skeletons", "1", "2"), ("skel 90", "skeletons", "2", "3"), ("skel 135", "skeletons", "3", "4"),
    ("mask 135", "inpaint_mask", "3", "4"), ("agnostic 135", "agnostic-wo-bg", "3", "4"),
    ("prewarp 135", "warp_feat", "3", ""), ("unpaired 45", "warp_feat_unpair", "1", ""),
)  # fmt: skip
CONTACT_HEADER = 18


def make_contact_sheet(root: str | Path, out_path: str | Path, identities: int = 4, split: str = "train") -> Path:
    """Tile the first `identities` of a SynthMVG `split` (rows) x `CONTACT_COLUMNS` into a labelled PNG."""
    root = Path(root)
    meta = json.loads((root / META_FILE).read_text())
    names = meta["splits"][split][:identities]
    height, width = meta["config"]["height"], meta["config"]["width"]
    rows = []
    header = np.full((CONTACT_HEADER, width * len(CONTACT_COLUMNS), 3), 255, np.uint8)
    for column, (label, *_unused) in enumerate(CONTACT_COLUMNS):
        cv2.putText(header, label, (column * width + 3, CONTACT_HEADER - 5), cv2.FONT_HERSHEY_SIMPLEX,
                    0.33 * width / 96, (0, 0, 0), 1, cv2.LINE_AA)  # fmt: skip
    rows.append(header)
    for name in names:
        tiles = []
        for _label, subdir, order, stem in CONTACT_COLUMNS:
            folder = f"{name}_{order}"
            path = root / split / subdir / (f"{folder}.jpg" if not stem else f"{folder}/{stem}.jpg")
            image = cv2.imread(str(path), cv2.IMREAD_COLOR)
            tiles.append(np.zeros((height, width, 3), np.uint8) if image is None else image[..., ::-1])
        row = np.concatenate(tiles, axis=1)
        row[:, ::width] = 255  # thin separators
        rows.append(row)
    sheet = np.concatenate(rows, axis=0)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out_path), sheet[..., ::-1], [cv2.IMWRITE_PNG_COMPRESSION, 9])
    return out_path
