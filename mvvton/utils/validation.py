"""Argument validators shared by the pipeline and the preprocessor (numbers, enums, images, keypoints, lists).

Each violation raises a typed error that subclasses both `MVVTONError` and the matching builtin
(`InvalidArgumentError` is a `ValueError`, `InvalidArgumentTypeError` a `TypeError`, `SizeBudgetError` a
`ValueError`), and names the argument, what was given and what is accepted.
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import PIL.Image
import torch

from mvvton.constants import MAX_INPUT_PIXELS, MIN_IMAGE_SIDE
from mvvton.errors import (
    ImageNotFoundError,
    InvalidArgumentError,
    InvalidArgumentTypeError,
    InvalidImageError,
    SizeBudgetError,
)

VIEW_CHOICES = ("auto", "front", "side", "back")
OUTPUT_TYPES = ("pil", "np", "pt", "latent")
KEYPOINT_SHAPE = (18, 3)
IMAGE_TYPES_TEXT = (
    "a PIL image, a numpy array (H, W) / (H, W, 1|3|4) (uint8, or float in [0, 1]), a torch tensor (C, H, W) with "
    "C in 1, 3 (float in [0, 1] or [-1, 1]), an image file path, encoded bytes, or a list of those (one per sample)"
)


def describe_value(value: Any) -> str:
    """A short, readable description of a value for an error message (never a memory address)."""
    if isinstance(value, torch.Tensor):
        return f"a torch tensor of shape {tuple(value.shape)} and dtype {value.dtype}"
    if isinstance(value, np.ndarray):
        return f"a numpy array of shape {value.shape} and dtype {value.dtype}"
    if isinstance(value, PIL.Image.Image):
        return f"a {value.width}x{value.height} PIL image in mode {value.mode}"
    if isinstance(value, (bytes, bytearray)):
        return f"{len(value)} bytes"
    if isinstance(value, (list, tuple)):
        return f"a {type(value).__name__} of {len(value)} item(s)"
    text = repr(value)
    return text if len(text) <= 60 else f"a {type(value).__name__}"


def check_integer(name: str, value: Any, low: int, high: int | None = None) -> int:
    """A real `int` (numpy integers too, never `bool` or a float like 2.0) in `[low, high]`."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise InvalidArgumentTypeError(
            f"`{name}` must be an integer, got {describe_value(value)} ({type(value).__name__})"
        )
    value = int(value)
    if value < low or (high is not None and value > high):
        accepted = f">= {low}" if high is None else f"in {low}..{high}"
        raise InvalidArgumentError(f"`{name}` must be an integer {accepted}, got {value}")
    return value


def check_real(
    name: str, value: Any, low: float | None = None, high: float | None = None, *, low_open: bool = False
) -> float:
    """A finite real number (int or float, not bool) in `[low, high]` (or `(low, high]` with `low_open`)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise InvalidArgumentTypeError(
            f"`{name}` must be a number, got {describe_value(value)} ({type(value).__name__})"
        )
    value = float(value)
    if not math.isfinite(value):
        raise InvalidArgumentError(f"`{name}` must be a finite number, got {value}")
    too_low = low is not None and (value <= low if low_open else value < low)
    if too_low or (high is not None and value > high):
        left = "(" if low_open else "["
        raise InvalidArgumentError(
            f"`{name}` must be in {left}{'-inf' if low is None else low}, {'inf' if high is None else high}], got {value}"
        )
    return value


def check_bool(name: str, value: Any) -> bool:
    """`True` / `False` only: a string such as "no" would otherwise be taken as true."""
    if not isinstance(value, (bool, np.bool_)):
        raise InvalidArgumentTypeError(
            f"`{name}` must be True or False, got {describe_value(value)} ({type(value).__name__})"
        )
    return bool(value)


def check_choice(name: str, value: Any, choices: Sequence[str]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise InvalidArgumentError(
            f"`{name}` must be one of {', '.join(map(repr, choices))}, got {describe_value(value)}"
        )
    return value


# ----------------------------------------------------------------------------------------------------------------
# images


def _check_image_item(name: str, item: Any, *, is_mask: bool) -> None:
    """One sample's image: type, layout, finiteness and range; never decodes a file (the loader does that)."""
    if isinstance(item, PIL.Image.Image):
        if min(item.width, item.height) < MIN_IMAGE_SIDE:
            raise InvalidImageError(
                f"`{name}` is {item.width}x{item.height}: images smaller than {MIN_IMAGE_SIDE} px on a side are not usable"
            )
        if item.width * item.height > MAX_INPUT_PIXELS:
            raise SizeBudgetError(
                f"`{name}` has {item.width * item.height:,} pixels, above the input limit of {MAX_INPUT_PIXELS:,}: "
                "downscale it first"
            )
        return
    if isinstance(item, (str, os.PathLike)):
        path = os.fspath(item)
        if os.path.isdir(path):
            raise InvalidArgumentError(f"`{name}`: '{path}' is a directory, not an image file; pass one image file")
        if not os.path.isfile(path):
            raise ImageNotFoundError(f"`{name}`: no such image file '{path}'; check the path")
        return
    if isinstance(item, (bytes, bytearray)):
        if len(item) == 0:
            raise InvalidArgumentError(f"`{name}`: the encoded image is empty (0 bytes)")
        return
    if isinstance(item, np.ndarray):
        array = item
        if array.ndim == 3 and array.shape[0] in (1, 3, 4) and array.shape[2] not in (1, 2, 3, 4):
            raise InvalidArgumentError(
                f"`{name}` looks channels-first ({describe_value(array)}); numpy images are (H, W, C): pass "
                "`array.transpose(1, 2, 0)`, or a torch tensor for (C, H, W)"
            )
        if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (1, 3, 4)):
            raise InvalidArgumentError(
                f"`{name}` must be an (H, W) or (H, W, 1|3|4) array, got {describe_value(array)}"
            )
        height, width = array.shape[:2]
    elif isinstance(item, torch.Tensor):
        array = item
        if array.ndim != 3 or array.shape[0] not in (1, 3):
            raise InvalidArgumentError(
                f"`{name}` must be a (C, H, W) tensor with C in 1, 3 (or a (B, C, H, W) batch), got {describe_value(array)}"
            )
        height, width = array.shape[1:]
    else:
        raise InvalidArgumentTypeError(
            f"`{name}` cannot be {describe_value(item)} ({type(item).__name__}); pass {IMAGE_TYPES_TEXT}"
        )
    if min(height, width) < MIN_IMAGE_SIDE:
        raise InvalidImageError(
            f"`{name}` is {width}x{height}: images smaller than {MIN_IMAGE_SIDE} px on a side are not usable"
        )
    if height * width > MAX_INPUT_PIXELS:
        raise SizeBudgetError(
            f"`{name}` has {height * width:,} pixels, above the input limit of {MAX_INPUT_PIXELS:,}: downscale it first"
        )
    _check_pixel_values(name, array, is_mask=is_mask)


def _check_pixel_values(name: str, array: np.ndarray | torch.Tensor, *, is_mask: bool) -> None:
    if isinstance(array, torch.Tensor):
        if array.dtype == torch.bool:
            return
        if not torch.is_floating_point(array):
            if array.dtype != torch.uint8:
                raise InvalidArgumentTypeError(f"`{name}` tensor must be float (or uint8 / bool), got {array.dtype}")
            return
        values = array.detach().float()
        finite = bool(torch.isfinite(values).all())
        low, high = (float(values.min()), float(values.max())) if finite else (0.0, 0.0)
    else:
        if array.dtype == np.bool_ or array.dtype == np.uint8:
            return
        if np.issubdtype(array.dtype, np.integer):
            if array.dtype == np.uint16:
                return  # 16-bit data: scaled to 8 bits
            raise InvalidArgumentTypeError(
                f"`{name}` array must be uint8, uint16 or float in [0, 1], got {array.dtype}"
            )
        if not np.issubdtype(array.dtype, np.floating):
            raise InvalidArgumentTypeError(f"`{name}` array must be uint8 or float, got {array.dtype}")
        finite = bool(np.isfinite(array).all())
        low, high = (float(array.min()), float(array.max())) if finite else (0.0, 0.0)
    if not finite:
        raise InvalidArgumentError(f"`{name}` contains NaN or inf values; pass finite pixel values")
    lowest = 0.0 if is_mask or isinstance(array, np.ndarray) else -1.0
    if low < lowest - 1e-6 or high > 1.0 + 1e-6:
        accepted = "[0, 1]" if lowest == 0.0 else "[0, 1] or [-1, 1]"
        raise InvalidArgumentError(
            f"`{name}` float values must lie in {accepted}, got values in [{low:.4g}, {high:.4g}]"
            + ("; a mask is 0 = keep, 1 = regenerate" if is_mask else "; for 0..255 data pass uint8")
        )


def split_images(name: str, value: Any, *, required: bool, is_mask: bool = False) -> list:
    """An image argument -> list of per-sample items (validated). A 4-D tensor / array is a batch.

    Returns `[]` for an optional argument that is `None`."""
    if value is None:
        if required:
            raise InvalidArgumentError(f"`{name}` is required; pass {IMAGE_TYPES_TEXT}")
        return []
    if isinstance(value, (torch.Tensor, np.ndarray)) and value.ndim == 4:
        items = list(value)
    elif isinstance(value, (list, tuple)):
        items = list(value)
        if not items:
            raise InvalidArgumentError(f"`{name}` is an empty list; pass at least one image (one per sample)")
    else:
        items = [value]
    for index, item in enumerate(items):
        if isinstance(item, (list, tuple)):
            raise InvalidArgumentTypeError(f"`{name}[{index}]` is a nested {type(item).__name__}; pass a flat list")
        _check_image_item(name if len(items) == 1 else f"{name}[{index}]", item, is_mask=is_mask)
    return items


def tensor_to_hwc(image: torch.Tensor) -> np.ndarray:
    """`(C, H, W)` tensor in [0, 1] or [-1, 1] -> `(H, W, C)` float32 numpy in [0, 1] (what the preprocessor reads)."""
    values = image.detach().float().cpu()
    if torch.is_floating_point(image) and float(values.min()) < 0:
        values = (values + 1) / 2
    elif image.dtype == torch.uint8:
        values = values / 255
    return values.clamp(0, 1).permute(1, 2, 0).numpy()


# ----------------------------------------------------------------------------------------------------------------
# per-sample lists


def check_batch_lengths(batch_size: int, lengths: dict[str, int]) -> None:
    """Every per-sample argument has 1 item (shared) or one per sample; mismatches never drop samples silently."""
    wrong = {name: length for name, length in lengths.items() if length not in (0, 1, batch_size)}
    if wrong:
        listed = ", ".join(f"`{name}`: {length}" for name, length in wrong.items())
        raise InvalidArgumentError(
            f"{batch_size} person image(s) but {listed}; each per-sample argument takes 1 item (used for every "
            f"sample) or exactly {batch_size}"
        )


def split_keypoints(value: Any) -> list[np.ndarray]:
    """`person_keypoints`: `(18, 3)`, `(B, 18, 3)` or a list of `(18, 3)`; finite; confidence in [0, 1]."""
    if value is None:
        return []
    if isinstance(value, (list, tuple)) and value and not isinstance(value[0], numbers.Number):
        items = list(value)
    else:
        items = [value]
    arrays = []
    for index, item in enumerate(items):
        label = "person_keypoints" if len(items) == 1 else f"person_keypoints[{index}]"
        try:
            array = np.asarray(item.detach().cpu() if isinstance(item, torch.Tensor) else item, dtype=np.float32)
        except (TypeError, ValueError) as error:
            raise InvalidArgumentTypeError(
                f"`{label}` must be a numeric (18, 3) array, got {describe_value(item)}"
            ) from error
        if array.ndim == 3 and len(items) == 1:
            arrays.extend(split_keypoints(list(array)))
            continue
        if array.shape != KEYPOINT_SHAPE:
            raise InvalidArgumentError(
                f"`{label}` must have shape (18, 3) (OpenPose-18: x, y in pixels, confidence), got {array.shape}"
            )
        if not np.isfinite(array).all():
            raise InvalidArgumentError(f"`{label}` contains NaN or inf; mark a missing keypoint with confidence 0")
        if array[:, 2].min() < 0 or array[:, 2].max() > 1:
            raise InvalidArgumentError(f"`{label}` confidences (column 2) must lie in [0, 1]")
        arrays.append(array)
    return arrays


def split_views(value: Any) -> list[str]:
    items = list(value) if isinstance(value, (list, tuple)) else [value]
    if not items:
        raise InvalidArgumentError("`view` is an empty list; pass 'auto' or one view per sample")
    for index, item in enumerate(items):
        check_choice("view" if len(items) == 1 else f"view[{index}]", item, VIEW_CHOICES)
    return items
