"""Robust image loading and atomic saving (PIL / numpy only).

Every loader returns an 8-bit RGB `PIL.Image.Image` with EXIF orientation applied. Sizes are checked from the header
before any pixel is decoded, so a crafted "100000 x 100000" file is refused without allocating it.
"""

from __future__ import annotations

import io
import logging
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from mvvton.constants import MAX_INPUT_PIXELS, MIN_IMAGE_SIDE
from mvvton.errors import ImageNotFoundError, InvalidArgumentTypeError, InvalidImageError, OutputPathError

logger = logging.getLogger(__name__)

ImageInput = str | os.PathLike | bytes | bytearray | Image.Image | np.ndarray
"""Anything `load_image` accepts: a path, encoded bytes, a PIL image or an `(H, W[, C])` array."""

_WHITE = (255, 255, 255)


def _describe(src: object, name: str | None) -> str:
    if name:
        return name
    if isinstance(src, (str, os.PathLike)):
        return f"'{os.fspath(src)}'"
    if isinstance(src, (bytes, bytearray)):
        return f"<{len(src)} bytes>"
    if isinstance(src, np.ndarray):
        return f"<array {src.shape} {src.dtype}>"
    return f"<{type(src).__name__}>"


def _check_size(width: int, height: int, what: str, max_pixels: int) -> None:
    if width * height > max_pixels:
        raise InvalidImageError(
            f"{what} is {width}x{height} = {width * height:,} pixels, above the limit of {max_pixels:,}: "
            "downscale it before passing it in (or raise `max_pixels`)."
        )
    if min(width, height) < MIN_IMAGE_SIDE:
        raise InvalidImageError(
            f"{what} is {width}x{height}: images smaller than {MIN_IMAGE_SIDE} px on a side are not usable; "
            "pass the full-resolution photo."
        )


def _scale_to_uint8(array: np.ndarray) -> np.ndarray:
    """Map an integer / float array of any depth to uint8 by scaling (never by clipping high bits away)."""
    if array.dtype == np.uint8:
        return array
    if array.dtype == np.bool_:
        return array.astype(np.uint8) * 255
    if np.issubdtype(array.dtype, np.floating):
        finite = np.nan_to_num(array.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
        high = float(finite.max(initial=0.0))
        low = float(finite.min(initial=0.0))
        if low >= 0.0 and high <= 1.0:
            return np.round(finite * 255.0).astype(np.uint8)
        if low >= 0.0 and high <= 255.0:
            return np.round(finite).astype(np.uint8)
        span = max(high - low, 1e-12)
        return np.round((finite - low) / span * 255.0).astype(np.uint8)
    if np.issubdtype(array.dtype, np.integer):
        wide = array.astype(np.int64)
        low, high = int(wide.min(initial=0)), int(wide.max(initial=0))
        if low >= 0 and high <= 255:
            return wide.astype(np.uint8)
        if low >= 0 and high <= 65535:  # 16-bit data: full range 0..65535 -> 0..255
            return np.round(wide / 257.0).astype(np.uint8)
        span = max(high - low, 1)
        return np.round((wide - low) / span * 255.0).astype(np.uint8)
    raise InvalidImageError(f"unsupported array dtype {array.dtype}")


def _composite_on_white(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    a = alpha.astype(np.float32)[..., None] / 255.0
    out = rgb.astype(np.float32) * a + 255.0 * (1.0 - a)
    return np.round(out).astype(np.uint8)


def _array_to_rgb(array: np.ndarray, what: str) -> tuple[np.ndarray, np.ndarray | None]:
    """`(H, W)`, `(H, W, 1|3|4)` array of any numeric dtype -> uint8 RGB `(H, W, 3)` and uint8 alpha or None."""
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[..., 0]
    if array.ndim == 2:
        gray = _scale_to_uint8(array)
        return np.repeat(gray[..., None], 3, axis=2), None
    if array.ndim == 3 and array.shape[2] == 2:  # grey + alpha
        gray, alpha = _scale_to_uint8(array[..., 0]), _scale_to_uint8(array[..., 1])
        return np.repeat(gray[..., None], 3, axis=2), alpha
    if array.ndim == 3 and array.shape[2] in (3, 4):
        rgb = _scale_to_uint8(array[..., :3])
        alpha = _scale_to_uint8(array[..., 3]) if array.shape[2] == 4 else None
        return np.ascontiguousarray(rgb), alpha
    raise InvalidImageError(f"{what}: expected an (H, W), (H, W, 3) or (H, W, 4) array, got shape {array.shape}")


def _pil_to_rgb(image: Image.Image, what: str) -> tuple[np.ndarray, np.ndarray | None]:
    """Decode any PIL mode to uint8 RGB + optional alpha, scaling high bit depths."""
    mode = image.mode
    if mode in ("RGB",):
        return np.asarray(image, dtype=np.uint8).copy(), None
    if mode == "RGBA":
        array = np.asarray(image, dtype=np.uint8)
        return array[..., :3].copy(), array[..., 3].copy()
    if mode in ("L", "1"):
        gray = np.asarray(image.convert("L"), dtype=np.uint8)
        return np.repeat(gray[..., None], 3, axis=2), None
    if mode.startswith("I;16") or mode in ("I", "F"):
        array = np.asarray(image)
        if mode.startswith("I;16"):
            array = array.astype(np.uint16)
        return _array_to_rgb(array, what)
    if mode in ("LA", "La", "PA", "RGBa", "P"):
        if mode == "P" and "transparency" not in image.info:
            return np.asarray(image.convert("RGB"), dtype=np.uint8).copy(), None
        array = np.asarray(image.convert("RGBA"), dtype=np.uint8)
        return array[..., :3].copy(), array[..., 3].copy()
    # CMYK, YCbCr, LAB, HSV, ...: PIL knows the conversion.
    try:
        return np.asarray(image.convert("RGB"), dtype=np.uint8).copy(), None
    except (ValueError, OSError) as exc:
        raise InvalidImageError(f"{what}: image mode {mode!r} cannot be converted to RGB ({exc})") from exc


def _open_encoded(src: str | os.PathLike | bytes | bytearray, what: str, max_pixels: int) -> Image.Image:
    """Open (header only), check size, then decode. Raises InvalidImageError / ImageNotFoundError."""
    if isinstance(src, (bytes, bytearray)):
        if len(src) == 0:
            raise InvalidImageError(f"{what}: the image data is empty (0 bytes).")
        fp: io.BytesIO | str = io.BytesIO(bytes(src))
    else:
        path = Path(src)
        if path.is_dir():
            raise InvalidImageError(f"{what}: '{path}' is a directory, not an image file; pass one image file.")
        if not path.is_file():
            raise ImageNotFoundError(f"{what}: no such image file. Check the path.")
        if path.stat().st_size == 0:
            raise InvalidImageError(f"{what}: the file is empty (0 bytes); re-export or re-download it.")
        fp = os.fspath(path)
    try:
        with warnings.catch_warnings():
            # Our own limit is stricter than PIL's bomb warning; turn the warning into an error either way.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(fp)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise InvalidImageError(
            f"{what}: the header declares an absurd image size ({exc}); refusing to decode it."
        ) from exc
    except (Image.UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise InvalidImageError(
            f"{what}: not a readable image ({type(exc).__name__}: {exc}). "
            "Use a JPEG/PNG/WebP/TIFF file and check that it is not corrupt."
        ) from exc
    try:
        _check_size(image.width, image.height, what, max_pixels)
    except InvalidImageError:
        image.close()
        raise
    try:
        if getattr(image, "n_frames", 1) > 1:
            image.seek(0)
        image.load()  # truncated files fail here (PIL's LOAD_TRUNCATED_IMAGES is left at its default, False)
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        image.close()  # never leave the file handle open on a failed decode
        raise InvalidImageError(
            f"{what}: the image is corrupt or truncated ({type(exc).__name__}: {exc}); re-export or re-download it."
        ) from exc
    return image


def load_image_and_alpha(
    src: ImageInput, *, name: str | None = None, max_pixels: int = MAX_INPUT_PIXELS
) -> tuple[Image.Image, np.ndarray | None]:
    """Load an image as RGB, keeping its alpha channel (if any) separately.

    Args:
        src: file path, encoded bytes, PIL image, or `(H, W)` / `(H, W, 3|4)` array (uint8, uint16 or float in [0, 1]).
        name: how to call the image in error messages (defaults to the path).
        max_pixels: refuse images with more pixels than this (checked from the header before decoding).
    Returns:
        `(rgb, alpha)`: uint8 RGB PIL image, EXIF orientation applied, with transparent pixels composited on white;
        `alpha` is `(H, W)` uint8 in [0, 255] or None when the source has no alpha.
    Raises:
        InvalidImageError: corrupt, truncated, empty, absurdly large, or smaller than 32 px.
        ImageNotFoundError: the path does not exist.
    """
    what = _describe(src, name)
    if isinstance(src, np.ndarray):
        if src.ndim < 2:
            raise InvalidImageError(f"{what}: expected an image array with at least 2 dimensions")
        if src.ndim == 3 and src.shape[0] in (1, 3, 4) and src.shape[2] not in (1, 2, 3, 4):
            raise InvalidImageError(
                f"{what}: the array {src.shape} looks channels-first; numpy images are (H, W, C): pass "
                "`array.transpose(1, 2, 0)`"
            )
        _check_size(int(src.shape[1]), int(src.shape[0]), what, max_pixels)
        rgb, alpha = _array_to_rgb(src, what)
    elif isinstance(src, Image.Image):
        _check_size(src.width, src.height, what, max_pixels)
        image = ImageOps.exif_transpose(src) if src.getexif() else src
        rgb, alpha = _pil_to_rgb(image, what)
    elif isinstance(src, (str, os.PathLike, bytes, bytearray)):
        opened = _open_encoded(src, what, max_pixels)
        try:
            try:
                image = ImageOps.exif_transpose(opened)
            except (OSError, ValueError, SyntaxError) as exc:  # broken EXIF block: keep pixels as stored
                logger.warning("%s: ignoring unreadable EXIF orientation (%s)", what, exc)
                image = opened
            rgb, alpha = _pil_to_rgb(image, what)
        finally:
            opened.close()
    else:
        raise InvalidArgumentTypeError(
            f"{what}: cannot load an image from a {type(src).__name__}; pass a path, encoded bytes, a PIL image or "
            "an (H, W[, C]) numpy array"
        )
    if alpha is not None:
        if alpha.min() == 255:
            alpha = None
        else:
            rgb = _composite_on_white(rgb, alpha)
    return Image.fromarray(rgb, mode="RGB"), alpha


def load_image(src: ImageInput, *, name: str | None = None, max_pixels: int = MAX_INPUT_PIXELS) -> Image.Image:
    """Load any supported image as an 8-bit RGB PIL image (EXIF-rotated, alpha composited on white).

    See `load_image_and_alpha` for accepted inputs and errors.
    """
    return load_image_and_alpha(src, name=name, max_pixels=max_pixels)[0]


def _new_file_mode(path: Path) -> int:
    """Mode a plainly created file would get (mkstemp makes 0600): the existing file's mode, else 0666 & ~umask."""
    try:
        return path.stat().st_mode & 0o777
    except FileNotFoundError:
        pass
    umask = 0o022
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    umask = int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    return 0o666 & ~umask


def save_image_atomic(image: Image.Image | np.ndarray, path: str | os.PathLike, **save_kwargs: object) -> Path:
    """Write an image so readers never see a half-written file: temp file in the same folder, then `os.replace`.

    Args:
        image: PIL image or uint8 array `(H, W)` / `(H, W, 3|4)`.
        path: destination; its suffix picks the format (`.png`, `.jpg`, ...).
        save_kwargs: forwarded to `PIL.Image.Image.save` (e.g. `quality=95`).
    Returns:
        The destination path.
    """
    path = Path(path)
    if isinstance(image, np.ndarray):
        image = Image.fromarray(_scale_to_uint8(image))
    fmt = Image.registered_extensions().get(path.suffix.lower())
    if fmt is None:
        raise OutputPathError(
            f"unknown image extension {path.suffix!r} for {path}; use one of .png, .jpg, .jpeg, .webp, .bmp, .tif"
        )
    if fmt == "JPEG" and image.mode not in ("RGB", "L", "CMYK"):
        image = image.convert("RGB")
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            image.save(stream, format=fmt, **save_kwargs)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(tmp_name, _new_file_mode(path))
        os.replace(tmp_name, path)
    except BaseException:
        try:
            os.unlink(tmp_name)
        except FileNotFoundError:
            pass
        raise
    return path
