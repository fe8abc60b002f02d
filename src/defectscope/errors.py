"""Every error defectscope raises on purpose. Messages say what to do next."""

__all__ = [
    "DefectscopeError",
    "ImageDecodeError",
    "FrameQualityError",
    "FiberNotFoundError",
    "ProfileError",
    "OutputError",
    "ModelArtifactError",
    "TruthFormatError",
]


class DefectscopeError(Exception):
    """Base of every expected failure.

    The CLI prints it as one line; the Inspector turns it into UNDETERMINED with its message."""


class ImageDecodeError(DefectscopeError):
    """The input is not a decodable image of a usable size (corrupt, truncated, empty, absurdly large)."""


class FrameQualityError(DefectscopeError):
    """The frame decoded but cannot be inspected reliably (blur, exposure, contact zone out of view)."""


class FiberNotFoundError(DefectscopeError):
    """No fiber cladding edge could be located."""


class ProfileError(DefectscopeError):
    """A profile is unknown or invalid; the message names the file and the field."""


class OutputError(DefectscopeError):
    """Results could not be written (disk full, no permission, folder gone); names the folder and the file."""


class ModelArtifactError(DefectscopeError):
    """A model artifact is missing or its card is invalid."""


class TruthFormatError(DefectscopeError):
    """A ground-truth or label file is missing or malformed."""
