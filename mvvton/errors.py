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


class InvalidArgumentError(MVVTONError, ValueError):
    """A call argument has a wrong value (out of range, non-finite, wrong shape, unknown choice, mismatched lengths).

    The message names the argument, what was given and what is accepted."""


class InvalidArgumentTypeError(MVVTONError, TypeError):
    """A call argument has a type the call does not accept; the message lists the accepted types."""


class SizeBudgetError(InvalidArgumentError):
    """A requested working size or image exceeds the pixel budget; the message says how to raise the budget."""


class NonFiniteResultError(MVVTONError, FloatingPointError):
    """Sampling produced NaN or inf (named step); the result would be garbage, so none is returned."""


class InsufficientPoseError(MVVTONError, ValueError):
    """The photo lacks keypoints a step needs (e.g. shoulders or hips for the garment warp); the message says which."""


class ModelLoadError(MVVTONError, OSError):
    """A model folder is missing, incomplete or corrupt (e.g. an unreadable `model_index.json`)."""


class OutputPathError(MVVTONError, ValueError):
    """An output path cannot be written (unknown image suffix, missing or read-only folder, a directory)."""


class GarmentExtractionError(NoGarmentDetectedError):
    """No usable garment could be cut out of a photo of someone wearing it; the message says what failed and what to
    pass instead (a product photo of the garment, or a parsing model)."""


class IncompleteCheckpointError(MVVTONError, FileNotFoundError):
    """A checkpoint folder is missing or was not completely written (no completion marker, missing or truncated
    files); the message names the folder and says which complete checkpoint to resume from instead."""


class InvalidConfigError(MVVTONError, ValueError):
    """A training config has an unknown key, a value of the wrong type or an invalid choice; the message names the
    dotted key and what it accepts (and the closest valid key when one is misspelt)."""
