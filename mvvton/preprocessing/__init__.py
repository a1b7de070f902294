"""Zero-download preprocessing for raw photos (numpy / OpenCV / PIL; mediapipe imported lazily).

Entry point: `TryOnPreprocessor`. Stages are usable on their own: `io` (loading), `person` (pose + person mask),
`view` (front / side / back and hard selection), `masks` (agnostic masks), `garment` (garment masks / keypoints),
`warp` (thin-plate-spline pre-warp), `worn_garment` (a garment cut out of a photo of someone wearing it). See docs/preprocessing.md.
"""

from mvvton.preprocessing.garment import (
    GarmentLandmarks,
    HumanParser,
    OnnxHumanParser,
    garment_keypoints,
    garment_landmarks,
    garment_mask,
)
from mvvton.preprocessing.io import load_image, load_image_and_alpha, save_image_atomic
from mvvton.preprocessing.masks import (
    agnostic_image,
    agnostic_mask_from_parsing,
    mask_from_user,
    upper_body_agnostic_mask,
)
from mvvton.preprocessing.person import (
    MediaPipePoseEstimator,
    PoseEstimator,
    PoseResult,
    person_mask_from_keypoints,
)
from mvvton.preprocessing.pose import normalize_keypoints, render_skeleton, scale_keypoints
from mvvton.preprocessing.preprocessor import CropBox, PreprocessedTryOn, TryOnPreprocessor, fit_to_canvas
from mvvton.preprocessing.view import classify_person_view, garment_view_for
from mvvton.preprocessing.warp import ThinPlateSpline, warp_garment, warped_composite
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
    "HumanParser",
    "MediaPipePoseEstimator",
    "OnnxHumanParser",
    "PoseEstimator",
    "PoseResult",
    "PreprocessedTryOn",
    "ThinPlateSpline",
    "TryOnPreprocessor",
    "WornGarment",
    "WornGarmentWarning",
    "WornPhotoAnalyzer",
    "agnostic_image",
    "agnostic_mask_from_parsing",
    "classify_person_view",
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
    "person_mask_from_keypoints",
    "render_skeleton",
    "save_image_atomic",
    "scale_keypoints",
    "upper_body_agnostic_mask",
    "warp_garment",
    "warped_composite",
]
