"""A corpus of hostile and unusual inputs, generated on the fly (nothing downloaded).

Each case names a file and its documented outcome: colorized (with the output's expected size) or
rejected with a specific reason. Used by the library, CLI and server robustness tests.
"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from tests.conftest import photo


@dataclass(frozen=True)
class Case:
    filename: str
    data: bytes
    outcome: str  # "colorized" or "rejected"
    expect: object  # (width, height) when colorized, a reason regex when rejected
    note: str = ""


def _save(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def png_bomb(width: int = 40000, height: int = 40000) -> bytes:
    """A few hundred bytes declaring width x height 1-bit pixels (1.6 gigapixels at the default)."""
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    row = b"\x00" + b"\x00" * ((width + 7) // 8)
    compressor = zlib.compressobj(9)
    body = compressor.compress(row * 64) + compressor.flush()  # only a sliver of the rows: never decoded anyway
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", body) + _png_chunk(b"IEND", b"")


def _animated(fmt: str) -> bytes:
    frames = [photo(48, 32, seed=i).convert("RGB") for i in range(3)]
    return _save(frames[0], fmt, save_all=True, append_images=frames[1:], duration=100, loop=0)


def _exif_rotated() -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 6
    return _save(photo(64, 40).convert("L"), "JPEG", exif=exif.tobytes())


def _palette_transparent() -> bytes:
    image = photo(50, 30).convert("P", palette=Image.Palette.ADAPTIVE, colors=32)
    return _save(image, "PNG", transparency=0)


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("photo.jpg", _save(photo(), "JPEG"))
    return buffer.getvalue()


def build_cases() -> list[Case]:
    gray = photo(96, 64).convert("L")
    jpeg, png = _save(gray, "JPEG", quality=90), _save(photo(96, 64), "PNG")
    sixteen = Image.fromarray((np.asarray(gray, dtype=np.uint16) * 257).astype(np.uint16))
    rng = np.random.default_rng(1)
    return [
        Case("empty.jpg", b"", "rejected", "empty"),
        Case("truncated.jpg", jpeg[: len(jpeg) // 3], "rejected", "truncated|corrupt"),
        Case("truncated.png", png[: len(png) // 3], "rejected", "truncated|corrupt"),
        Case("random-bytes.jpg", rng.integers(0, 256, 4096, dtype=np.uint8).tobytes(), "rejected", "not a recognised image"),
        Case("text.jpg", b"Dear reader, this is not a photograph.\n" * 40, "rejected", "not a recognised image"),
        Case("page.jpg", b"<!DOCTYPE html><html><body><img src=x onerror=alert(1)></body></html>", "rejected", "not a recognised image"),
        Case("vector.jpg", b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>', "rejected", "not a recognised image"),
        Case("document.jpg", _save(photo(), "PDF"), "rejected", "not a recognised image"),
        Case("archive.jpg", _zip(), "rejected", "not a recognised image"),
        Case("bomb.png", png_bomb(), "rejected", "pixels"),
        Case("one-pixel.png", _save(Image.new("L", (1, 1), 128), "PNG"), "colorized", (1, 1)),
        Case("panorama.jpg", _save(photo(20000, 200).convert("L"), "JPEG", quality=80), "colorized", (20000, 200)),
        Case("sixteen-bit.png", _save(sixteen, "PNG"), "colorized", (96, 64)),
        Case("sixteen-bit-tiff.tif", _save(sixteen, "TIFF"), "colorized", (96, 64)),
        Case("cmyk.jpg", _save(photo(80, 60).convert("CMYK"), "JPEG"), "colorized", (80, 60)),
        Case("palette-transparent.png", _palette_transparent(), "colorized", (50, 30), "alpha kept"),
        Case("gray-alpha.png", _save(photo(40, 40).convert("LA"), "PNG"), "colorized", (40, 40), "alpha kept"),
        Case("animated-gif.gif", _animated("GIF"), "colorized", (48, 32), "first frame used"),
        Case("animated-webp.webp", _animated("WEBP"), "colorized", (48, 32), "first frame used"),
        Case("exif-rotated.jpg", _exif_rotated(), "colorized", (40, 64), "EXIF orientation applied"),
        Case("progressive.jpg", _save(gray, "JPEG", progressive=True, quality=85), "colorized", (96, 64)),
        Case("already-colour.jpg", _save(photo(72, 48), "JPEG"), "colorized", (72, 48), "treated as its lightness"),
        Case("bitmap.bmp", _save(photo(30, 20), "BMP"), "colorized", (30, 20)),
        Case("name with spaces ü ✓ ..%2F.jpg", jpeg, "colorized", (96, 64), "odd file name"),
    ]


def write_corpus(folder: Path) -> list[Case]:
    folder.mkdir(parents=True, exist_ok=True)
    cases = build_cases()
    for case in cases:
        (folder / case.filename).write_bytes(case.data)
    return cases
