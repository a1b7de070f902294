"""MV-VTON model components (torch / diffusers only: no PIL, no data, no pipelines)."""

from diffusers import AutoencoderKL

from mvvton.models.attention_processor import GarmentTokens, JointAttnProcessor2_0, MVVTONAttnProcessor2_0
from mvvton.models.autoencoder_tiny import TinyAutoencoderModel, load_autoencoder
from mvvton.models.garment_encoder import GarmentEncoderModel, GarmentEncoderOutput
from mvvton.models.image_encoder import GarmentImageEncoderModel
from mvvton.models.pose_encoder import PoseEncoderModel
from mvvton.models.unet_mvvton import MVVTONUNet2DConditionModel

# Pipeline component name -> class, for code that loads or builds components by name.
COMPONENT_CLASSES = {
    "unet": MVVTONUNet2DConditionModel,
    "garment_encoder": GarmentEncoderModel,
    "pose_encoder": PoseEncoderModel,
    "image_encoder": GarmentImageEncoderModel,
    "vae": AutoencoderKL,
}

__all__ = [
    "COMPONENT_CLASSES",
    "GarmentEncoderModel",
    "GarmentEncoderOutput",
    "GarmentImageEncoderModel",
    "GarmentTokens",
    "JointAttnProcessor2_0",
    "MVVTONAttnProcessor2_0",
    "MVVTONUNet2DConditionModel",
    "PoseEncoderModel",
    "TinyAutoencoderModel",
    "load_autoencoder",
]
