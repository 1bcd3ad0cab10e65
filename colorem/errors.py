"""The exceptions colorem raises: every failure a user can cause is a ColoremError with a clear message."""

from __future__ import annotations


def install_hint(extra: str) -> str:
    """The command that adds an optional part of colorem, which installs from its checkout (no public index)."""
    return f'pip install ".[{extra}]" in the colorem checkout'


class ColoremError(Exception):
    """Base class of every error colorem raises on purpose."""


class ImageReadError(ColoremError):
    """An input could not be read as an image (missing, empty, truncated, not an image...)."""

    def __init__(self, source: str, reason: str):
        self.source = source
        self.reason = reason
        super().__init__(f"cannot read image {source}: {reason}")


class ImageTooLargeError(ImageReadError):
    """An image declares more pixels than allowed (a decompression bomb, or simply too big)."""


class UnsupportedFormatError(ImageReadError):
    """The data is not in an image format colorem reads (not an image, or one such as ICO or TGA)."""


class WeightsError(ColoremError):
    """Model weights are missing, unsafe or do not match their card."""


class OptionError(ColoremError, ValueError):
    """An option or a model card value is out of range, of the wrong type, or not finite (a usage error:
    the CLI exits 2)."""


class MissingDependencyError(ColoremError, ImportError):
    """An optional package a feature needs is not installed; the message says what to install."""


class NotEnoughMemoryError(ColoremError, MemoryError):
    """One photo needed more memory than the machine could give; other photos are unaffected."""

    def __init__(self, source: str, size: tuple[int, int] | None = None, what: str | None = None):
        self.source = source
        pixels = size[0] * size[1] if size else 0
        what = what or (f"{pixels / 1e6:.0f} MP" if pixels >= 1e6 else f"{size[0]}x{size[1]} pixels" if size else "it")
        self.reason = f"not enough memory for {what}"
        super().__init__(f"{source}: {self.reason}")


class ModelOutputError(ColoremError):
    """The model's output for a photo is not finite (NaN or infinity): its weights are probably broken."""


class VideoError(ColoremError):
    """A video could not be colorized: missing, corrupt or truncated, no video frames, an unsupported codec,
    frames too large, or an output that cannot be written. Nothing is left at the target."""

    def __init__(self, source: str, reason: str):
        self.source = source
        self.reason = reason
        super().__init__(f"cannot colorize video {source}: {reason}")
