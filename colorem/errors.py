"""The exceptions colorem raises: every failure a user can cause is a ColoremError with a clear message."""

from __future__ import annotations


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


class WeightsError(ColoremError):
    """Model weights are missing, unsafe or do not match their card."""


class VideoError(ColoremError):
    """A video could not be colorized: missing, corrupt or truncated, no video frames, an unsupported codec,
    frames too large, or an output that cannot be written. Nothing is left at the target."""

    def __init__(self, source: str, reason: str):
        self.source = source
        self.reason = reason
        super().__init__(f"cannot colorize video {source}: {reason}")
