"""Converters: official MV-VTON checkpoints and Paint-by-Example folders -> mvvton pipeline folders."""

from mvvton.conversion.ldm_checkpoint import (
    ConversionResult,
    build_components,
    convert_ldm_state_dict,
    load_ldm_state_dict,
)
from mvvton.conversion.paint_by_example import convert_paint_by_example_image_encoder, init_from_paint_by_example
from mvvton.conversion.save import released_scheduler, save_pipeline_folder

__all__ = [
    "ConversionResult",
    "build_components",
    "convert_ldm_state_dict",
    "convert_paint_by_example_image_encoder",
    "init_from_paint_by_example",
    "load_ldm_state_dict",
    "released_scheduler",
    "save_pipeline_folder",
]
