"""Image input/output at the edge: path, bytes, PIL image or numpy array in, a float RGB photo out.

EXIF orientation is applied, every common mode is accepted (gray, 16-bit, palette, CMYK, alpha),
and anything unreadable becomes an ImageReadError that names the file and the reason.
"""

from __future__ import annotations

import errno
import functools
import io
import os
import struct
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Union

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from colorem.atomic import write_atomic
from colorem.errors import ImageReadError, ImageTooLargeError, NotEnoughMemoryError, UnsupportedFormatError

ImageInput = Union[str, os.PathLike, bytes, bytearray, BinaryIO, Image.Image, np.ndarray]

DEFAULT_MAX_PIXELS = 100_000_000  # 100 MP: larger than any camera photo, far below a bomb
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif", ".pgm", ".ppm")
QUALITY_RANGE = (1, 100)  # JPEG and WebP quality
# The formats colorem reads, as Pillow names them (PPM covers PGM and PBM too). Any other is refused before
# its header is parsed: Pillow's rarer decoders are less hardened, and some (ICO, ICNS) decode an embedded
# image whose size their header does not bound.
READ_FORMATS = ("JPEG", "PNG", "WEBP", "TIFF", "BMP", "GIF", "PPM")
READ_FORMAT_NAMES = "JPEG, PNG, WebP, TIFF, BMP, GIF or PGM/PPM"
# A progressive JPEG is decoded scan by scan, each pass over every pixel: thousands of empty 10-byte scans
# cost minutes of CPU. Real encoders write about 10 (libjpeg's progressive script; mozjpeg and jpegli a few
# more), so far fewer than this are ever seen in a photo.
MAX_JPEG_SCANS = 100
_SOS = b"\xff\xda"  # start-of-scan marker; in entropy-coded data a 0xFF byte is always stuffed (FF 00)
FORMATS = {"jpg": "JPEG", "jpeg": "JPEG", "png": "PNG", "webp": "WEBP", "tif": "TIFF", "tiff": "TIFF", "bmp": "BMP"}


@dataclass
class Photo:
    """A decoded photo: (H, W, 3) RGB or (H, W) for a one-channel source, kept at the source's precision —
    uint8 for 8-bit files (a quarter of float32's memory; 0..255), else float32 in [0, 1]; optional alpha
    (H, W) float32; its name. `rgb`, `gray` and `rows()` give float32 in [0, 1], made only when asked for."""

    pixels: np.ndarray
    alpha: np.ndarray | None
    name: str
    format: str | None = None

    def rows(self, top: int, bottom: int) -> np.ndarray:
        """Rows top..bottom as float32 in [0, 1]: (rows, W, 3) or (rows, W)."""
        rows = self.pixels[top:bottom]
        return rows.astype(np.float32) / 255.0 if rows.dtype == np.uint8 else rows

    @functools.cached_property
    def gray(self) -> np.ndarray | None:
        """(H, W): the one channel of a grayscale source, else None."""
        return self.rows(0, len(self.pixels)) if self.pixels.ndim == 2 else None

    @functools.cached_property
    def rgb(self) -> np.ndarray:
        pixels = self.rows(0, len(self.pixels))
        return pixels if pixels.ndim == 3 else np.repeat(pixels[..., None], 3, axis=2)

    @property
    def size(self) -> tuple[int, int]:
        """(width, height), as Pillow reports sizes."""
        return self.pixels.shape[1], self.pixels.shape[0]


def describe(source: ImageInput) -> str:
    """A short human name for an input, used in error messages."""
    if isinstance(source, (str, os.PathLike)):
        return str(source)
    if isinstance(source, (bytes, bytearray)):
        return f"<{len(source)} bytes>"
    if isinstance(source, Image.Image):
        return f"<PIL image {source.mode} {source.size[0]}x{source.size[1]}>"
    if isinstance(source, np.ndarray):
        return f"<array {source.dtype} {source.shape}>"
    if isinstance(getattr(source, "name", None), str):  # an open file
        return source.name
    return f"<{type(source).__name__}>"


def read_image(source: ImageInput, *, max_pixels: int = DEFAULT_MAX_PIXELS, name: str | None = None) -> Photo:
    """Decode any supported input into a Photo; raises ImageReadError with the reason on failure."""
    label = name or describe(source)
    if isinstance(source, np.ndarray):
        return _photo_from_array(source, label, max_pixels)
    if isinstance(source, Image.Image):
        return _photo_from_pil(source, label, max_pixels)
    if isinstance(source, (bytes, bytearray)):
        if not source:
            raise ImageReadError(label, "the data is empty")
        return _decode(io.BytesIO(source), label, max_pixels)
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.exists():
            raise ImageReadError(label, _missing_reason(path))
        if not path.is_file():
            raise ImageReadError(label, "not a file")
        if path.stat().st_size == 0:
            raise ImageReadError(label, "the file is empty (0 bytes)")
        try:
            with open(path, "rb") as handle:
                return _decode(handle, label, max_pixels)
        except OSError as error:
            if isinstance(error, ImageReadError):
                raise
            raise ImageReadError(label, f"cannot open the file ({error.strerror or error})") from None
    if isinstance(source, io.TextIOBase):
        raise ImageReadError(label, "the file is open in text mode; open it with 'rb'")
    if hasattr(source, "read") and hasattr(source, "seek"):  # an open binary file or io.BytesIO
        return _decode(source, label, max_pixels)
    raise ImageReadError(label, f"unsupported input type {type(source).__name__} (give a path, bytes, an open "
                                "binary file, a PIL image or a numpy array)")


def _missing_reason(path: Path) -> str:
    """Why a path that does not exist does not: a missing file, a dangling link, or a link loop."""
    if not path.is_symlink():
        return "no such file"
    try:
        path.resolve(strict=True)
    except RuntimeError:  # Python < 3.13 reports a loop this way
        return "a symbolic link that loops back on itself"
    except OSError as error:
        if error.errno == errno.ELOOP:
            return "a symbolic link that loops back on itself"
    return f"a broken symbolic link (its target {os.readlink(path)} does not exist)"


def _decode(stream, label: str, max_pixels: int) -> Photo:
    size = None
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(stream, formats=READ_FORMATS) as image:
                size = image.size
                _check_pixels(size, label, max_pixels)
                image_format = image.format
                if image_format in ("JPEG", "MPO"):
                    _check_scans(stream, label)
                # Animations and multi-page files: the first frame, where Image.open leaves them. Never ask
                # for n_frames: Pillow walks every page to count them (quadratic in a TIFF's page count).
                image.load()
                photo = _photo_from_pil(image, label, max_pixels)
                photo.format = image_format
                return photo
        except ImageReadError:
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise ImageTooLargeError(label, "the image declares too many pixels (decompression bomb?)") from None
        except UnidentifiedImageError:
            raise UnsupportedFormatError(label, f"not a recognised image format (colorem reads {READ_FORMAT_NAMES})") from None
        except MemoryError:
            raise NotEnoughMemoryError(label, size) from None
        except (OSError, SyntaxError, ValueError, EOFError, IndexError, struct.error) as error:
            reason = str(error) or type(error).__name__
            if "truncated" in reason.lower() or isinstance(error, EOFError):
                reason = f"the file is truncated or corrupt ({reason})"
            else:
                reason = f"the image data is corrupt ({reason})"
            raise ImageReadError(label, reason) from None


def image_size(path: str | os.PathLike) -> tuple[int, int]:
    """(width, height) of an image file as read_image would return it (EXIF orientation applied), from its
    header alone: nothing is decoded."""
    try:
        with Image.open(path, formats=READ_FORMATS) as image:
            width, height = image.size
            turned = image.getexif().get(0x0112) in (5, 6, 7, 8)  # orientations that swap width and height
    except (OSError, SyntaxError, ValueError, EOFError) as error:
        raise ImageReadError(str(path), f"cannot read its size ({error})") from None
    return (height, width) if turned else (width, height)


def _check_scans(stream, label: str) -> None:
    """Count a JPEG's start-of-scan markers before it is decoded: a C-speed pass over the bytes, in slices."""
    position, scans, tail = stream.tell(), 0, b""
    stream.seek(0)
    while chunk := stream.read(1 << 20):
        block = tail + chunk
        scans += block.count(_SOS)
        tail = block[-1:]  # a marker split across two slices is counted once, in the second
    stream.seek(position)
    if scans > MAX_JPEG_SCANS:
        raise ImageTooLargeError(label, f"the JPEG has {scans:,} scans, more than the {MAX_JPEG_SCANS} any photo "
                                    "encoder writes (a decoding bomb?)")


def _check_pixels(size: tuple[int, int], label: str, max_pixels: int) -> None:
    width, height = size
    if width < 1 or height < 1:
        raise ImageReadError(label, f"the image has no pixels ({width}x{height})")
    if width * height > max_pixels:
        raise ImageTooLargeError(
            label, f"{width}x{height} = {width * height:,} pixels is over the limit of {max_pixels:,}"
        )


def _photo_from_pil(image: Image.Image, label: str, max_pixels: int) -> Photo:
    _check_pixels(image.size, label, max_pixels)
    image = ImageOps.exif_transpose(image) or image
    mode = image.mode
    alpha = None
    if mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
        mode = image.mode
    elif mode == "PA":
        image = image.convert("RGBA")
        mode = "RGBA"
    if mode in ("RGBA", "LA", "La", "RGBa"):
        alpha = np.asarray(image.getchannel("A"), dtype=np.float32) / 255.0
        image = image.convert("RGB" if mode.startswith("RGB") else "L")
        mode = image.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        values = np.asarray(image, dtype=np.float32)
        # 16-bit files (the usual source of "I" too) use the full 0..65535 range.
        gray = values / 65535.0 if mode.startswith("I;16") or values.max(initial=0) > 255 else values / 255.0
        gray = np.clip(gray, 0.0, 1.0)
    elif mode == "F":
        values = np.asarray(image, dtype=np.float32)
        finite = np.isfinite(values)
        scale = 1.0 if values.max(initial=0, where=finite) <= 1.0 else 255.0
        # Non-finite pixels (a float TIFF may hold NaN or infinity) become black, or white for +infinity:
        # everything after decoding can count on finite values.
        gray = np.clip(np.nan_to_num(values / scale, nan=0.0, posinf=1.0, neginf=0.0), 0.0, 1.0)
    else:
        if mode not in ("RGB", "L"):
            image = image.convert("RGB")  # CMYK, YCbCr, LAB, HSV, 1
        return Photo(np.array(image, dtype=np.uint8), alpha=alpha, name=label)  # 8-bit: kept as uint8
    return Photo(np.ascontiguousarray(gray, dtype=np.float32), alpha=alpha, name=label)


FLOAT_SLACK = 1e-3  # rounding in the caller's arithmetic, clipped away


def _photo_from_array(array: np.ndarray, label: str, max_pixels: int) -> Photo:
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (1, 3, 4)):
        raise ImageReadError(label, f"expected an (H, W), (H, W, 3) or (H, W, 4) array, got shape {array.shape}")
    _check_pixels((array.shape[1], array.shape[0]), label, max_pixels)
    if array.dtype == np.uint8:
        values = array  # kept as uint8, as a decoded 8-bit file is
    elif array.dtype == np.uint16:
        values = array.astype(np.float32) / 65535.0
    elif np.issubdtype(array.dtype, np.floating):
        if not np.isfinite(array).all():
            raise ImageReadError(label, "the array holds NaN or infinite values")
        low, high = float(array.min(initial=0.0)), float(array.max(initial=0.0))
        if low < -FLOAT_SLACK or high > 1.0 + FLOAT_SLACK:  # 0..255 floats would all come back white
            raise ImageReadError(label, f"a float array must hold values in [0, 1], this one spans {low:g} to {high:g}"
                                        + (" (divide 0..255 values by 255)" if high <= 255.0 and low >= 0.0 else ""))
        values = np.clip(array.astype(np.float32), 0.0, 1.0)
    else:
        raise ImageReadError(label, f"unsupported array dtype {array.dtype} (use uint8, uint16 or float in [0, 1])")
    if values.ndim == 3 and values.shape[2] == 1:
        values = values[..., 0]
    alpha = None
    if values.ndim == 3 and values.shape[2] == 4:
        alpha, values = values[..., 3], values[..., :3]
        alpha = alpha.astype(np.float32) / 255.0 if alpha.dtype == np.uint8 else alpha
    return Photo(np.ascontiguousarray(values), alpha=alpha, name=label)


def to_pil(rgb_uint8: np.ndarray, alpha: np.ndarray | None = None) -> Image.Image:
    """(H, W, 3) uint8 RGB plus optional (H, W) float alpha -> PIL image (RGB or RGBA)."""
    image = Image.fromarray(rgb_uint8, "RGB")
    if alpha is not None:
        image.putalpha(Image.fromarray(np.clip(alpha * 255.0 + 0.5, 0, 255).astype(np.uint8), "L"))
    return image


def format_for(path: str | os.PathLike, default: str = "PNG") -> str:
    """Pillow format name for a file name's extension."""
    extension = Path(path).suffix.lower().lstrip(".")
    return FORMATS.get(extension, default)


def encode_image(image: Image.Image, image_format: str, quality: int = 92) -> bytes:
    """Encode to bytes; JPEG drops alpha (flattened onto white) since it cannot store it."""
    image_format = FORMATS.get(image_format.lower(), image_format.upper())
    if image_format == "JPEG" and image.mode == "RGBA":
        background = Image.new("RGB", image.size, (255, 255, 255))
        background.paste(image, mask=image.getchannel("A"))
        image = background
    buffer = io.BytesIO()
    options = {"quality": quality} if image_format in ("JPEG", "WEBP") else {}
    if image_format == "PNG":
        options = {"compress_level": 1}  # large photos: fast encode beats a few % of size
    image.save(buffer, format=image_format, **options)
    return buffer.getvalue()


def write_image(image: Image.Image, path: str | os.PathLike, image_format: str | None = None, quality: int = 92) -> Path:
    """Write atomically: encode, write a temporary file beside the target, then rename it into place.
    Not fsynced: a folder run writes thousands of photos, and a rerun redoes any lost to a power cut."""
    path = Path(path)
    data = encode_image(image, image_format or format_for(path), quality)
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_atomic(path, data)
