"""Output-path checks run before any work starts, so a bad path never costs a whole inference."""

from __future__ import annotations

import os
from pathlib import Path

from mvvton.errors import OutputExistsError, OutputPathError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")


def check_output_image_path(path: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Validate an image output path: a known image suffix, an existing writable folder, not a directory, and an
    existing file only with `overwrite=True`. Returns the path; raises `OutputPathError` / `OutputExistsError`."""
    path = Path(path)
    if path.is_dir():
        raise OutputPathError(f"output '{path}' is a directory; give a file name such as '{path / 'tryon.png'}'")
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        raise OutputPathError(
            f"output '{path}' has the suffix {path.suffix or '(none)'!r}; use one of {', '.join(IMAGE_SUFFIXES)}"
        )
    check_writable_folder(path.parent, what=f"the folder of output '{path}'")
    if path.exists() and not overwrite:
        raise OutputExistsError(f"output '{path}' already exists; pass --overwrite (or overwrite=True) to replace it")
    return path


def check_writable_folder(folder: str | os.PathLike, *, what: str = "the output folder") -> Path:
    """An existing folder this process may create files in; raises `OutputPathError` saying what to fix."""
    folder = Path(folder) if str(folder) else Path(".")
    if not folder.exists():
        raise OutputPathError(f"{what} '{folder}' does not exist; create it first (mkdir -p '{folder}')")
    if not folder.is_dir():
        raise OutputPathError(f"{what} '{folder}' is not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputPathError(f"{what} '{folder}' is not writable; choose another folder or fix its permissions")
    return folder
