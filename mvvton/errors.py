"""Typed errors. Every message says what went wrong and what to do about it."""

from __future__ import annotations


class MVVTONError(Exception):
    """Base class of all mvvton errors."""


class InvalidImageError(MVVTONError, ValueError):
    """An input image is unreadable, corrupt, of an unsupported mode, or of an absurd size."""


class NoPersonDetectedError(MVVTONError):
    """No person was found in the person photo."""


class NoGarmentDetectedError(MVVTONError):
    """No garment could be separated from the product photo's background."""


class MissingViewError(MVVTONError, ValueError):
    """A garment view needed for the request is missing."""


class MissingDependencyError(MVVTONError, ImportError):
    """An optional backend is not installed; the message names the extra to install."""


class CheckpointConversionError(MVVTONError):
    """A checkpoint has keys or shapes the converter cannot map."""


class DatasetError(MVVTONError):
    """A dataset folder is missing files or is malformed."""


class ImageNotFoundError(InvalidImageError, FileNotFoundError):
    """An image path does not exist."""


class OutputExistsError(MVVTONError, FileExistsError):
    """The output path exists and overwriting was not requested."""
