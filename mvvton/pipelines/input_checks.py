"""Argument validation for `MVVTONPipeline.__call__`: every argument is checked before any model or mediapipe call.

The validators live in `mvvton.utils.validation`; this module combines them for one pipeline call.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from mvvton.errors import InvalidArgumentError, InvalidArgumentTypeError, SizeBudgetError
from mvvton.utils.validation import (
    OUTPUT_TYPES,
    check_batch_lengths,
    check_bool,
    check_choice,
    check_integer,
    check_real,
    describe_value,
    split_images,
    split_keypoints,
    split_views,
)

# ----------------------------------------------------------------------------------------------------------------
# the whole call


@dataclass
class CheckedCall:
    """Validated per-call values (lists per sample; numbers as Python types)."""

    batch_size: int
    persons: list
    garment_fronts: list
    garment_backs: list
    images: dict[str, list]
    keypoints: list[np.ndarray]
    views: list[str]
    height: int
    width: int
    num_inference_steps: int
    guidance_scale: float
    eta: float
    num_images_per_prompt: int


def check_call(
    *,
    person: Any,
    garment_front: Any,
    garment_back: Any,
    optional_images: dict[str, Any],
    mask_names: Sequence[str],
    person_keypoints: Any,
    view: Any,
    height: Any,
    width: Any,
    size_multiple: int,
    max_working_pixels: Any,
    num_inference_steps: Any,
    num_train_timesteps: int,
    guidance_scale: Any,
    eta: Any,
    num_images_per_prompt: Any,
    generator: Any,
    latents: Any,
    latent_channels: int,
    vae_scale_factor: int,
    garment_timestep: Any,
    output_type: Any,
    flags: dict[str, Any],
    callback_on_step_end: Callable | None,
    callback_on_step_end_tensor_inputs: Any,
    allowed_callback_inputs: Sequence[str],
) -> CheckedCall:
    """Validate every argument of a pipeline call; raise a typed `MVVTONError` naming the first bad one."""
    # numbers and enums first: cheap and independent of the images
    num_inference_steps = check_integer("num_inference_steps", num_inference_steps, 1, num_train_timesteps)
    guidance_scale = check_real("guidance_scale", guidance_scale, 0.0)
    eta = check_real("eta", eta, 0.0, 1.0)
    num_images_per_prompt = check_integer("num_images_per_prompt", num_images_per_prompt, 1)
    check_choice("output_type", output_type, OUTPUT_TYPES)
    if garment_timestep is not None:
        check_integer("garment_timestep", garment_timestep, 0, num_train_timesteps - 1)
    for flag, flag_value in flags.items():
        check_bool(flag, flag_value)
    if callback_on_step_end is not None and not callable(callback_on_step_end):
        raise InvalidArgumentTypeError(
            f"`callback_on_step_end` must be callable, got {describe_value(callback_on_step_end)}"
        )
    if callback_on_step_end_tensor_inputs is not None:
        if not isinstance(callback_on_step_end_tensor_inputs, (list, tuple)):
            raise InvalidArgumentTypeError("`callback_on_step_end_tensor_inputs` must be a list of names")
        unknown = [k for k in callback_on_step_end_tensor_inputs if k not in allowed_callback_inputs]
        if unknown:
            raise InvalidArgumentError(
                f"`callback_on_step_end_tensor_inputs` {unknown} are not among {list(allowed_callback_inputs)}"
            )

    budget = MAX_WORKING_PIXELS_DEFAULT if max_working_pixels is None else max_working_pixels
    budget = check_integer("max_working_pixels", budget, 1)
    for label, side in (("height", height), ("width", width)):
        side = check_integer(label, side, 1)
        if side % size_multiple:
            raise InvalidArgumentError(
                f"`{label}` must be a multiple of {size_multiple} (the VAE and UNet downsampling), got {side}; "
                f"try {max(size_multiple, round(side / size_multiple) * size_multiple)}"
            )
    height, width = int(height), int(width)
    if height * width > budget:
        raise SizeBudgetError(
            f"working size {height}x{width} = {height * width:,} pixels is above the pipeline's budget of "
            f"{budget:,}; use a smaller `height`/`width` or raise the budget with `max_working_pixels=` (the "
            "released models work at 512x384)"
        )

    # images and per-sample lists
    persons = split_images("person", person, required=True)
    garment_fronts = split_images("garment_front", garment_front, required=True)
    garment_backs = split_images("garment_back", garment_back, required=False)
    images = {
        name: split_images(name, value, required=False, is_mask=name in mask_names)
        for name, value in optional_images.items()
    }
    keypoints = split_keypoints(person_keypoints)
    views = split_views(view)
    batch_size = len(persons)
    lengths = {"garment_front": len(garment_fronts), "garment_back": len(garment_backs), "view": len(views)}
    lengths |= {name: len(items) for name, items in images.items()}
    lengths["person_keypoints"] = len(keypoints)
    check_batch_lengths(batch_size, lengths)

    total = batch_size * num_images_per_prompt
    if generator is not None:
        generators = generator if isinstance(generator, list) else [generator]
        for index, item in enumerate(generators):
            if not isinstance(item, torch.Generator):
                label = "generator" if not isinstance(generator, list) else f"generator[{index}]"
                raise InvalidArgumentTypeError(
                    f"`{label}` must be a torch.Generator (e.g. `torch.Generator().manual_seed(42)`), got {describe_value(item)}"
                )
        if isinstance(generator, list) and len(generator) != total:
            raise InvalidArgumentError(
                f"got {len(generator)} generators for {batch_size} sample(s) x {num_images_per_prompt} image(s); "
                f"pass one generator or a list of {total}"
            )
    if latents is not None:
        expected = (total, latent_channels, height // vae_scale_factor, width // vae_scale_factor)
        if not isinstance(latents, torch.Tensor):
            raise InvalidArgumentTypeError(
                f"`latents` must be a torch tensor of shape {expected}, got {describe_value(latents)}"
            )
        if tuple(latents.shape) != expected or not torch.is_floating_point(latents):
            raise InvalidArgumentError(
                f"`latents` must be a float tensor of shape {expected}, got {describe_value(latents)}"
            )
        if not bool(torch.isfinite(latents).all()):
            raise InvalidArgumentError("`latents` contains NaN or inf")
    return CheckedCall(
        batch_size=batch_size, persons=persons, garment_fronts=garment_fronts, garment_backs=garment_backs,
        images=images, keypoints=keypoints, views=views, height=height, width=width,
        num_inference_steps=num_inference_steps, guidance_scale=guidance_scale, eta=eta,
        num_images_per_prompt=num_images_per_prompt,
    )  # fmt: skip


MAX_WORKING_PIXELS_DEFAULT = 1024 * 1024
"""Default working-size budget (height x width): 1024x1024. The released models work at 512x384."""
