"""Property-based tests (hypothesis): colour math and the colorize pipeline on any size and mode,
and a short fuzz of the decoding entry point that must find no crash but the documented errors."""

from __future__ import annotations

import io

import numpy as np
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from colorem.color import lab_to_rgb, rgb_to_l, rgb_to_lab
from colorem.colorize import Colorizer
from colorem.errors import ImageReadError
from colorem.imageio import read_image
from colorem.models import create_model
from tests.conftest import photo

MODES = ["L", "LA", "RGB", "RGBA", "CMYK", "P", "I;16", "I", "F", "1"]
COLORIZER = Colorizer.from_model(create_model("color-em-tiny"), render_size=32, precision="fp32")


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(*[st.floats(0, 1, allow_nan=False)] * 3), min_size=1, max_size=64))
def test_lab_round_trip_any_colour(pixels):
    rgb = torch.tensor(pixels, dtype=torch.float32).T[None, :, :, None]
    lab = rgb_to_lab(rgb)
    assert torch.isfinite(lab).all()
    assert (lab[:, 0] >= -1e-3).all() and (lab[:, 0] <= 100 + 1e-3).all()
    assert torch.allclose(lab_to_rgb(lab), rgb, atol=2e-4)
    assert torch.allclose(rgb_to_l(rgb), lab[:, :1], atol=1e-3)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(width=st.integers(1, 70), height=st.integers(1, 70), mode=st.sampled_from(MODES), seed=st.integers(0, 1000))
def test_colorize_any_size_and_mode(width, height, mode, seed):
    source = photo(width, height, seed)
    image = source.convert("L").convert(mode) if mode in ("I;16", "I", "F", "1", "LA") else source.convert(mode)
    result = COLORIZER.colorize(image)
    assert result.size == (width, height)
    out = np.asarray(result.convert("RGB"), dtype=np.float32) / 255.0
    assert np.isfinite(out).all()
    l_in = rgb_to_l(torch.from_numpy(read_image(image).rgb).permute(2, 0, 1)[None])
    l_out = rgb_to_l(torch.from_numpy(out).permute(2, 0, 1)[None])
    # L is preserved up to 8-bit rounding and the gamut clipping of strongly coloured pixels.
    assert (l_out - l_in).abs().mean() < 1.5


SEEDS = [
    ("PNG", {}), ("JPEG", {"quality": 80}), ("GIF", {}), ("WEBP", {}), ("TIFF", {}), ("BMP", {}),
]


def _seed_bytes(fmt, options):
    buffer = io.BytesIO()
    photo(24, 16).convert("RGB" if fmt != "GIF" else "P").save(buffer, format=fmt, **options)
    return buffer.getvalue()


SEED_FILES = [_seed_bytes(fmt, options) for fmt, options in SEEDS]


@settings(max_examples=300, deadline=None)
@given(seed=st.sampled_from(SEED_FILES), position=st.floats(0, 1), data=st.binary(min_size=1, max_size=16),
       cut=st.booleans())
def test_fuzz_decoder_only_documented_errors(seed, position, data, cut):
    """Overwrite or truncate real files at random places: decode succeeds or raises ImageReadError."""
    at = int(position * (len(seed) - 1))
    mutated = seed[:at] if cut else seed[:at] + data + seed[at + len(data):]
    try:
        photo_read = read_image(mutated)
    except ImageReadError:
        return
    assert photo_read.rgb.ndim == 3 and np.isfinite(photo_read.rgb).all()
