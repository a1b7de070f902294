"""mvvton: multi-view virtual try-on (MV-VTON) on diffusers.

Public API: `MVVTONPipeline` and the model components. Heavy optional backends (mediapipe) are imported lazily.
"""

__version__ = "0.1.0"

from mvvton.models import (  # noqa: E402
    GarmentEncoderModel,
    GarmentImageEncoderModel,
    MVVTONUNet2DConditionModel,
    PoseEncoderModel,
)
from mvvton.pipelines import MVVTONPipeline, MVVTONPipelineOutput  # noqa: E402


def load_image(src, **kwargs):
    """Read an image robustly (EXIF, modes, sizes); see `mvvton.preprocessing.io.load_image`."""
    from mvvton.preprocessing.io import load_image as _load_image

    return _load_image(src, **kwargs)


__all__ = [
    "GarmentEncoderModel",
    "GarmentImageEncoderModel",
    "MVVTONPipeline",
    "MVVTONPipelineOutput",
    "MVVTONUNet2DConditionModel",
    "PoseEncoderModel",
    "__version__",
    "load_image",
]
