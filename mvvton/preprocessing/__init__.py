"""Zero-download preprocessing for raw photos (numpy / OpenCV / PIL; mediapipe imported lazily).

Entry point: `TryOnPreprocessor`. Stages are usable on their own: `io` (loading), `person` (pose + person mask),
`view` (front / side / back and hard selection), `masks` (agnostic masks), `garment` (garment masks / keypoints),
`warp` (thin-plate-spline pre-warp), `worn_garment` (a garment cut out of a photo of someone wearing it). See docs/preprocessing.md.
"""

from mvvton.preprocessing.garment import (
    GarmentLandmarks,
    GarmentSegmentation,
    HumanParser,
    MaskChecks,
    OnnxHumanParser,
    check_garment_mask,
    garment_keypoints,
    garment_landmarks,
    garment_mask,
    segment_garment,
    sleeve_length,
)
from mvvton.preprocessing.io import load_image, load_image_and_alpha, save_image_atomic
from mvvton.preprocessing.masks import (
    agnostic_image,
    agnostic_mask_from_parsing,
    mask_from_user,
    upper_body_agnostic_mask,
)
from mvvton.preprocessing.paste import paste_into_original
from mvvton.preprocessing.person import (
    MediaPipePoseEstimator,
    PoseEstimator,
    PoseResult,
    person_mask_from_keypoints,
)
from mvvton.preprocessing.pose import normalize_keypoints, render_skeleton, scale_keypoints
from mvvton.preprocessing.preprocessor import CropBox, PreprocessedTryOn, TryOnPreprocessor, fit_to_canvas
from mvvton.preprocessing.view import ViewDecision, classify_person_view, decide_view, garment_view_for
from mvvton.preprocessing.warp import ThinPlateSpline, body_warp_garment, warp_garment, warped_composite
from mvvton.preprocessing.worn_garment import (
    GarmentCategory,
    WornGarment,
    WornGarmentWarning,
    WornPhotoAnalyzer,
    garment_from_worn_photo,
)

__all__ = [
    "CropBox",
    "GarmentCategory",
    "GarmentLandmarks",
    "GarmentSegmentation",
    "MaskChecks",
    "HumanParser",
    "MediaPipePoseEstimator",
    "OnnxHumanParser",
    "PoseEstimator",
    "PoseResult",
    "PreprocessedTryOn",
    "ThinPlateSpline",
    "ViewDecision",
    "TryOnPreprocessor",
    "WornGarment",
    "WornGarmentWarning",
    "WornPhotoAnalyzer",
    "agnostic_image",
    "agnostic_mask_from_parsing",
    "body_warp_garment",
    "check_garment_mask",
    "classify_person_view",
    "decide_view",
    "fit_to_canvas",
    "garment_from_worn_photo",
    "garment_keypoints",
    "garment_landmarks",
    "garment_mask",
    "garment_view_for",
    "load_image",
    "load_image_and_alpha",
    "mask_from_user",
    "normalize_keypoints",
    "paste_into_original",
    "person_mask_from_keypoints",
    "render_skeleton",
    "save_image_atomic",
    "scale_keypoints",
    "segment_garment",
    "sleeve_length",
    "upper_body_agnostic_mask",
    "warp_garment",
    "warped_composite",
]
