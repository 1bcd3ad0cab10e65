"""Every supported input kind and mode decodes; every broken input raises a clear ImageReadError."""

import io
import time

import numpy as np
import pytest
from PIL import Image

from colorem.errors import ImageReadError, ImageTooLargeError
from colorem.imageio import read_image, write_image
from tests.conftest import photo


def _bytes(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


@pytest.mark.parametrize("mode", ["L", "LA", "RGB", "RGBA", "CMYK", "P", "I;16", "I", "F", "1"])
def test_modes_decode_to_rgb(mode):
    source = photo(40, 30)
    image = source.convert("L").convert(mode) if mode in ("I;16", "I", "F", "1", "LA") else source.convert(mode)
    result = read_image(image)
    assert result.rgb.shape == (30, 40, 3) and result.rgb.dtype == np.float32
    assert 0.0 <= result.rgb.min() and result.rgb.max() <= 1.0
    assert (result.alpha is not None) == (mode in ("LA", "RGBA"))


def test_sixteen_bit_png_keeps_full_range(tmp_path):
    values = np.linspace(0, 65535, 64 * 8, dtype=np.uint16).reshape(8, 64)
    path = tmp_path / "deep.png"
    Image.fromarray(values).save(path)
    result = read_image(path)
    assert result.rgb[..., 0].max() == pytest.approx(1.0) and result.rgb[..., 0].min() == pytest.approx(0.0)
    assert len(np.unique(result.rgb[..., 0])) > 256  # more levels than 8 bits could hold


def test_palette_with_transparency_gives_alpha(tmp_path):
    image = Image.new("P", (10, 10), 1)
    image.putpalette([0, 0, 0, 255, 255, 255] + [0] * 762)
    image.info["transparency"] = 0
    image.putpixel((0, 0), 0)
    path = tmp_path / "p.png"
    image.save(path, transparency=0)
    result = read_image(path)
    assert result.alpha is not None and result.alpha[0, 0] == 0 and result.alpha[5, 5] == 1


def test_exif_orientation_is_applied():
    image = photo(60, 20)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    result = read_image(_bytes(image, "JPEG", exif=exif.tobytes()))
    assert result.rgb.shape[:2] == (60, 20)


def test_numpy_inputs():
    assert read_image(np.zeros((5, 7), np.uint8)).rgb.shape == (5, 7, 3)
    assert read_image(np.full((5, 7, 4), 65535, np.uint16)).alpha.min() == 1.0
    with pytest.raises(ImageReadError, match="shape"):
        read_image(np.zeros((5, 7, 2), np.uint8))
    with pytest.raises(ImageReadError, match="NaN"):
        read_image(np.full((2, 2), np.nan, np.float32))


def test_animated_gif_uses_first_frame():
    frames = [Image.new("L", (8, 8), 10), Image.new("L", (8, 8), 250)]
    data = io.BytesIO()
    frames[0].save(data, format="GIF", save_all=True, append_images=frames[1:])
    assert read_image(data.getvalue()).rgb.max() < 0.1


BROKEN = {
    "empty.jpg": (b"", "empty"),
    "text.jpg": (b"hello, I am not a photo\n" * 20, "not a recognised image format"),
    "html.png": (b"<!doctype html><html><body>hi</body></html>", "not a recognised image format"),
    "truncated.jpg": (_bytes(photo(200, 200), "JPEG")[:600], "truncated|corrupt"),
    "truncated.png": (_bytes(photo(200, 200), "PNG")[:300], "truncated|corrupt"),
}


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_broken_files_raise_clear_errors(tmp_path, name):
    data, reason = BROKEN[name]
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(ImageReadError, match=reason) as caught:
        read_image(path)
    assert name in str(caught.value)  # the message names the file


def test_missing_file_and_bomb(tmp_path):
    with pytest.raises(ImageReadError, match="no such file"):
        read_image(tmp_path / "nope.png")
    bomb = _bytes(Image.new("1", (20000, 20000)), "PNG")  # ~50 KB declaring 400 MP
    with pytest.raises(ImageTooLargeError, match="pixels"):
        read_image(bomb)
    with pytest.raises(ImageTooLargeError):
        read_image(_bytes(photo(100, 100), "PNG"), max_pixels=5000)


def test_write_image_is_atomic_and_leaves_no_temporaries(tmp_path):
    target = tmp_path / "out" / "a.jpg"
    write_image(photo().convert("RGBA"), target)
    assert Image.open(target).mode == "RGB"  # JPEG cannot hold alpha: flattened
    assert [p.name for p in target.parent.iterdir()] == ["a.jpg"]


def test_one_channel_sources_keep_their_channel(tmp_path):
    Image.fromarray(np.arange(64, dtype=np.uint8).reshape(8, 8), "L").save(tmp_path / "gray.png")
    photo = read_image(tmp_path / "gray.png")
    assert photo.gray is not None and np.array_equal(photo.gray, photo.rgb[..., 0])
    assert read_image(np.zeros((4, 4, 3), np.uint8)).gray is None


def test_a_page_bomb_tiff_is_read_without_counting_its_pages():
    """20,000 one-pixel pages (2 MB): Pillow's page count walks them all, quadratically (a minute of CPU on a
    busy 2-core machine); the first page alone is what colorem reads."""
    from tests.hostile import PAGE_BOMB_PAGES, tiff_pages

    data = tiff_pages(PAGE_BOMB_PAGES)
    started = time.process_time()
    photo_read = read_image(data)
    assert photo_read.size == (1, 1) and photo_read.pixels[0, 0] == 128
    assert time.process_time() - started < 2.0  # a single page costs milliseconds


def test_non_finite_float_pixels_become_finite_at_decode():
    values = np.linspace(0, 1, 48, dtype=np.float32).reshape(6, 8)
    values[1, 1], values[2, 2], values[3, 3] = np.nan, np.inf, -np.inf
    buffer = io.BytesIO()
    Image.fromarray(values, "F").save(buffer, format="TIFF")
    gray = read_image(buffer.getvalue()).gray
    assert np.isfinite(gray).all() and (gray[1, 1], gray[2, 2], gray[3, 3]) == (0.0, 1.0, 0.0)
    assert gray[5, 7] == pytest.approx(1.0) and gray[0, 4] == pytest.approx(values[0, 4])  # the rest unchanged


def test_broken_and_looping_links_say_so(tmp_path):
    (tmp_path / "dangling.jpg").symlink_to(tmp_path / "gone.jpg")
    (tmp_path / "loop.jpg").symlink_to(tmp_path / "loop.jpg")
    with pytest.raises(ImageReadError, match="broken symbolic link"):
        read_image(tmp_path / "dangling.jpg")
    with pytest.raises(ImageReadError, match="loops back on itself"):
        read_image(tmp_path / "loop.jpg")


def test_eight_bit_photos_stay_eight_bit_until_used():
    """A decoded 8-bit photo costs a byte a channel; its float view is the same values / 255."""
    gray = np.arange(256, dtype=np.uint8).reshape(16, 16)
    photo_read = read_image(gray)
    assert photo_read.pixels.dtype == np.uint8
    assert np.array_equal(photo_read.gray, gray.astype(np.float32) / 255.0)
    assert np.array_equal(photo_read.rows(3, 5), photo_read.gray[3:5])


def test_a_tiff_whose_second_page_has_no_dimensions_reads_its_first_page():
    """Pillow raises TypeError ("Missing dimensions") when it walks to such a page (a fuzzed TIFF found it);
    colorem reads the first page without walking the others."""
    import struct

    buffer = io.BytesIO()
    Image.new("L", (4, 4), 128).save(buffer, "TIFF", save_all=True, append_images=[Image.new("L", (4, 4), 60)])
    data = bytearray(buffer.getvalue())
    first = struct.unpack_from("<I", data, 4)[0]
    second = struct.unpack_from("<I", data, first + 2 + 12 * struct.unpack_from("<H", data, first)[0])[0]
    for entry in range(struct.unpack_from("<H", data, second)[0]):
        if struct.unpack_from("<H", data, second + 2 + 12 * entry)[0] == 256:  # ImageWidth -> an unknown tag
            struct.pack_into("<H", data, second + 2 + 12 * entry, 0x7FFF)
    with pytest.raises(TypeError, match="Missing dimensions"):
        Image.open(io.BytesIO(bytes(data))).n_frames
    assert read_image(bytes(data)).size == (4, 4)
