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
    link_to: str | None = None  # a symbolic link to this name instead of a file (not uploadable)

    def write(self, folder: Path) -> Path:
        path = folder / self.filename
        if self.link_to is not None:
            path.symlink_to(self.link_to)
        else:
            path.write_bytes(self.data)
        return path


@dataclass(frozen=True)
class CardCase:
    """A model card (or weights) someone hands colorem: `edit` changes a valid tiny model's card dict, or
    returns bytes to write as the card; the outcome is always one clear error matching `expect`."""

    name: str
    edit: object  # card dict -> None (edited in place) or bytes
    expect: str  # regex of the error
    weights: str = "garbage"  # "garbage": the card must be refused before the weights are read; "nan": NaN weights


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


def png_rgba(width: int, height: int, rows: int | None = None) -> bytes:
    """A black RGBA PNG of width x height; only its first `rows` rows are stored when given (a bomb that
    needs no megabytes of zlib work to build)."""
    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    row = b"\x00" * (1 + 4 * width)
    compressor = zlib.compressobj(9)
    body = b"".join(compressor.compress(row) for _ in range(height if rows is None else rows)) + compressor.flush()
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", body) + _png_chunk(b"IEND", b"")


def ico_bomb(width: int = 9400, height: int = 9400, rows: int | None = 64) -> bytes:
    """An .ico whose directory says 256x256 but whose one image is a width x height RGBA PNG: Pillow
    decodes the PNG at its own size, which the ICO header does not bound (issue 33: 355 KB, 9400x9400)."""
    image = png_rgba(width, height, rows)
    entry = struct.pack("<BBBBHHII", 0, 0, 0, 0, 1, 32, len(image), 6 + 16)  # 0 x 0 means 256 x 256
    return struct.pack("<HHH", 0, 1, 1) + entry + image


def jpeg_scan_bomb(width: int = 256, height: int = 256, scans: int = 5000) -> bytes:
    """A progressive gray JPEG followed by `scans` empty 10-byte AC scans: each costs the decoder a pass
    over every block (about 1.8 ms at 25 MP), so 5000 of them in 50 KB cost seconds."""
    data = _save(Image.new("L", (width, height), 128), "JPEG", progressive=True, quality=75)
    empty = b"\xff\xda" + struct.pack(">HBBBBBB", 8, 1, 1, 0x00, 1, 63, 0x10)  # component 1, AC 1..63, refinement
    return data[:-2] + empty * scans + b"\xff\xd9"  # before the end-of-image marker


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


def tiff_pages(pages: int) -> bytes:
    """A little-endian TIFF of `pages` 1x1 gray pages (102 bytes each, all sharing one pixel): a page bomb.
    Written by hand because Pillow's save_all is itself quadratic in the page count."""
    header_size, entry = 8, struct.Struct("<HHII")
    tags = lambda pixel: [(256, 3, 1, 1), (257, 3, 1, 1), (258, 3, 1, 8), (259, 3, 1, 1), (262, 3, 1, 1),
                          (273, 4, 1, pixel), (277, 3, 1, 1), (278, 3, 1, 1), (279, 4, 1, 1)]
    ifd_size = 2 + len(tags(0)) * entry.size + 4
    pixel = header_size + pages * ifd_size
    out = bytearray(b"II*\x00" + struct.pack("<I", header_size))
    for page in range(pages):
        following = header_size + (page + 1) * ifd_size if page + 1 < pages else 0
        out += struct.pack("<H", len(tags(pixel))) + b"".join(entry.pack(*tag) for tag in tags(pixel))
        out += struct.pack("<I", following)
    return bytes(out + b"\x80")


def _float_tiff_with_nan() -> bytes:
    values = np.asarray(photo(64, 48).convert("L"), dtype=np.float32) / 255.0
    values[10, 10], values[20, 30], values[0, 0] = np.nan, np.inf, -np.inf
    return _save(Image.fromarray(values, "F"), "TIFF")


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
        Case("ico-bomb.ico", ico_bomb(), "rejected", "not a recognised image format", "an ICO is not read: its "
             "header does not bound the PNG inside, which is 9400x9400"),
        Case("scan-bomb.jpg", jpeg_scan_bomb(), "rejected", "5,006 scans", "refused before decoding"),
        Case("targa.tga", _save(photo(30, 20), "TGA"), "rejected", "not a recognised image format", "not a listed format"),
        Case("paintbrush.pcx", _save(photo(30, 20), "PCX"), "rejected", "not a recognised image format"),
        Case("silicon-graphics.sgi", _save(photo(30, 20), "SGI"), "rejected", "not a recognised image format"),
        Case("graymap.pgm", _save(photo(30, 20).convert("L"), "PPM"), "colorized", (30, 20), "PGM is read"),
        Case("pixmap.ppm", _save(photo(30, 20), "PPM"), "colorized", (30, 20), "PPM is read"),
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
        Case("page-bomb.tif", tiff_pages(PAGE_BOMB_PAGES), "colorized", (1, 1), "first page, pages never counted"),
        Case("nan-pixels.tif", _float_tiff_with_nan(), "colorized", (64, 48), "non-finite pixels made finite"),
        Case("broken-link.jpg", b"", "rejected", "broken symbolic link", link_to="no-such-target.jpg"),
        Case("looping-link.jpg", b"", "rejected", "loops back on itself", link_to="looping-link.jpg"),
    ]


PAGE_BOMB_PAGES = 20_000  # 2 MB; counting them cost ~1 min of CPU on a busy 2-core machine, per read


def build_cards() -> list[CardCase]:
    def options(**values):
        return lambda card: card["architecture_options"].update(values)

    def field(**values):
        return lambda card: card.update(values)

    return [
        CardCase("unknown-architecture", field(architecture="color-em-huge"), "unknown architecture 'color-em-huge'"),
        CardCase("unknown-option", options(dropout=0.5), "unknown option 'dropout'"),
        CardCase("options-as-a-list", field(architecture_options=["embedder", "learned"]), "must be a JSON object"),
        CardCase("not-utf8", lambda card: b'{"architecture": "color-em-tiny", "name": "\xff\xfe"}', "not a valid model card"),
        CardCase("render-size-1e9", field(render_size=1e9), "render_size must be a whole number from 16 to 1024"),
        CardCase("render-size-negative", field(render_size=-5), "render_size must be a whole number"),
        CardCase("render-size-text", field(render_size="192"), "render_size must be a whole number"),
        CardCase("render-size-2048", field(render_size=2048), "render_size must be a whole number from 16 to 1024"),
        CardCase("vibrance-text", field(vibrance="abc"), "vibrance must be a number"),
        CardCase("vibrance-nan", field(vibrance=float("nan")), "vibrance must be a number"),
        CardCase("cast-removal-2", field(cast_removal=2.0), "cast_removal must be a number from 0 to 1"),
        CardCase("temperature-nan", options(head="classification", temperature=float("nan")), "temperature must be a number"),
        CardCase("embed-dim-1e6", options(embed_dim=1_000_000), "embed_dim must be a whole number from 1 to 4096"),
        CardCase("inception-without-timm", options(embedder="inception_resnet_v2", embedder_options={"weights": "irv2.safetensors"}),
                 "needs timm|irv2.safetensors"),
        CardCase("nan-weights", lambda card: None, "not finite", weights="nan"),
    ]


def write_corpus(folder: Path) -> list[Case]:
    folder.mkdir(parents=True, exist_ok=True)
    cases = build_cases()
    for case in cases:
        case.write(folder)
    return cases


def write_card_case(case: CardCase, tiny_weights: Path, folder: Path) -> Path:
    """The tiny model's weights and card with `case` applied, in `folder`; returns the weights path."""
    import json

    import torch
    from safetensors.torch import load_file, save_file

    folder.mkdir(parents=True, exist_ok=True)
    weights = folder / f"{case.name}.safetensors"
    card = json.loads(tiny_weights.with_suffix(".json").read_text())
    edited = case.edit(card)
    if case.weights == "garbage":  # a card error must come first: the weights are never read
        weights.write_bytes(b"\x00not safetensors at all\x00" * 8)
    else:
        save_file({key: torch.full_like(value, float("nan")) if value.is_floating_point() else value
                   for key, value in load_file(str(tiny_weights)).items()}, str(weights))
    card_path = weights.with_suffix(".json")
    if isinstance(edited, bytes):
        card_path.write_bytes(edited)
    else:
        card_path.write_text(json.dumps(card))
    return weights
