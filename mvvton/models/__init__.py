"""MV-VTON model components (torch / diffusers only: no PIL, no data, no pipelines)."""

from mvvton.models.attention_processor import GarmentTokens, JointAttnProcessor2_0, MVVTONAttnProcessor2_0
from mvvton.models.garment_encoder import GarmentEncoderModel, GarmentEncoderOutput
from mvvton.models.image_encoder import GarmentImageEncoderModel
from mvvton.models.pose_encoder import PoseEncoderModel
from mvvton.models.unet_mvvton import MVVTONUNet2DConditionModel

__all__ = [
    "GarmentEncoderModel",
    "GarmentEncoderOutput",
    "GarmentImageEncoderModel",
    "GarmentTokens",
    "JointAttnProcessor2_0",
    "MVVTONAttnProcessor2_0",
    "MVVTONUNet2DConditionModel",
    "PoseEncoderModel",
]
