"""Check a local pipeline folder before any weight is read: a corrupt or incomplete folder gets one clear error."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from mvvton.errors import ModelLoadError

WEIGHT_FILES = ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin", "model.safetensors",
                "pytorch_model.bin")  # fmt: skip


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError as error:
        raise ModelLoadError(
            f"'{path}' is missing; the model folder is incomplete (re-run `mvvton convert`)"
        ) from error
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ModelLoadError(
            f"'{path}' is unreadable or not valid JSON ({type(error).__name__}: {error}); the model folder is "
            "corrupt: re-create it with `mvvton convert` or restore it from a copy"
        ) from error
    if not isinstance(data, dict):
        raise ModelLoadError(f"'{path}' must hold a JSON object, got {type(data).__name__}")
    return data


def check_pipeline_folder(folder: str | os.PathLike) -> dict[str, Any]:
    """Validate a local pipeline folder (`model_index.json`, each listed component's config and weights).

    Returns the parsed `model_index.json`. Raises `ModelLoadError` naming the missing or corrupt file."""
    folder = Path(folder)
    if not folder.exists():
        raise ModelLoadError(
            f"model folder '{folder}' does not exist; mvvton loads local folders only (nothing is downloaded): "
            "pass the folder written by `mvvton convert`"
        )
    if not folder.is_dir():
        raise ModelLoadError(f"model '{folder}' is not a folder; pass the pipeline folder written by `mvvton convert`")
    if not (folder / "model_index.json").is_file():
        raise ModelLoadError(
            f"'{folder}' is not an mvvton pipeline folder (no model_index.json); create one with `mvvton convert`"
        )
    index = _read_json(folder / "model_index.json")
    for name, entry in index.items():
        if name.startswith("_") or not isinstance(entry, list) or entry[0] is None:
            continue  # config values and absent optional components
        component = folder / name
        if not component.is_dir():
            raise ModelLoadError(
                f"model_index.json lists '{name}' but '{component}' is missing; the folder is incomplete"
            )
        if name == "scheduler":
            _read_json(component / "scheduler_config.json")
            continue
        _read_json(component / "config.json")
        if not any((component / weights).is_file() for weights in WEIGHT_FILES):
            raise ModelLoadError(
                f"'{component}' has a config but no weights file ({WEIGHT_FILES[0]}); the folder is incomplete"
            )
    return index
