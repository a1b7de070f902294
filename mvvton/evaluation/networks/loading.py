"""Strict loading of published feature-network weights from a local file (nothing is ever downloaded)."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from mvvton.errors import ModelLoadError

# BatchNorm counters: present in files saved by torch >= 0.4.1, absent from older ones; never needed at inference.
OPTIONAL_SUFFIXES = ("num_batches_tracked",)


def read_state_dict(path: str | os.PathLike, expected_file: str) -> dict[str, torch.Tensor]:
    """Read a `.pth` / `.pt` (torch pickle, tensors only) or `.safetensors` state dict from a local path.

    Args:
        path: the local weights file.
        expected_file: what the user should give (named in the error when the file is missing).
    """
    path = Path(path)
    if not path.is_file():
        raise ModelLoadError(
            f"weights file {path} not found: expected {expected_file} (give a local path; nothing is downloaded)"
        )
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # unreadable, truncated or not a tensor file
        raise ModelLoadError(f"cannot read {path} as a state dict ({error}); expected {expected_file}") from error
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(value, torch.Tensor) for value in state.values()):
        raise ModelLoadError(f"{path} is not a flat state dict of tensors; expected {expected_file}")
    return state


def check_state_dict(
    state: dict[str, torch.Tensor],
    expected_shapes: dict[str, tuple[int, ...]],
    *,
    expected_file: str,
    ignored_prefixes: tuple[str, ...] = (),
) -> dict[str, torch.Tensor]:
    """Check `state` against the published names and shapes; return only the expected entries.

    Every expected key must be present with its exact shape; keys outside the expected set are an error unless they
    start with one of `ignored_prefixes` (parts of the published file this network does not use, e.g. a classifier).
    """
    missing = [key for key in expected_shapes if key not in state and not key.endswith(OPTIONAL_SUFFIXES)]
    unexpected = [
        key for key in state
        if key not in expected_shapes and not key.startswith(ignored_prefixes) and not key.endswith(OPTIONAL_SUFFIXES)
    ]  # fmt: skip
    wrong_shapes = [
        f"{key}: file {tuple(state[key].shape)}, expected {shape}"
        for key, shape in expected_shapes.items()
        if key in state and tuple(state[key].shape) != tuple(shape)
    ]
    if missing or unexpected or wrong_shapes:
        details = []
        if missing:
            details.append(f"{len(missing)} missing (e.g. {missing[:3]})")
        if unexpected:
            details.append(f"{len(unexpected)} unexpected (e.g. {unexpected[:3]})")
        if wrong_shapes:
            details.append(f"{len(wrong_shapes)} of wrong shape (e.g. {wrong_shapes[:2]})")
        raise ModelLoadError(
            f"weights do not match the published layout: {'; '.join(details)}. Expected {expected_file}"
        )
    return {key: state[key] for key in expected_shapes if key in state}


def expected_shapes_of(module: torch.nn.Module) -> dict[str, tuple[int, ...]]:
    """Names and shapes of `module`'s state dict (the layout a published file must have)."""
    return {key: tuple(value.shape) for key, value in module.state_dict().items()}
