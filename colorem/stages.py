"""The stages of one photo's way through colorem, model aside: prepare (read it; its L at full size and at the
render size), render, upsample ab, finish (ab joined with the full-resolution L -> sRGB). Pure functions of
tensors, run a slice of rows at a time so no full-size float image is ever made.

photo -> read_image -> prepare_photo: L at full resolution, and render_l: L resized to the render size
      -> (the model: Colorizer.predict_ab) -> decode_ab: ab at the render size as the card decodes it
      -> finish_image (photos) / finish_rgb8 (video frames, evaluate): ab upsampled, joined with L, sRGB
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from colorem.color import AB_MAX, gray_to_l, join_lab, lab_to_srgb8, rgb_to_l
from colorem.device import enough_memory
from colorem.errors import ModelOutputError
from colorem.imageio import DEFAULT_MAX_PIXELS, ImageInput, Photo, read_image

# full-resolution colour math runs in slices of about 128K pixels (1.5 MB of float Lab): memory stays bounded, each
# slice's temporaries stay in the CPU's cache and are reused by the allocator instead of page-faulted afresh.
# 1 MP slices cost 1 MP photos 0-35% and 12 MP photos about 60% more time, from run to run
# (MODEL_CARD.md, "Speed (v10 beside v4), after the colour math").
CHUNK_PIXELS = 1 << 17


@dataclass
class Prepared:
    """What finish() needs of a decoded photo (small, so DataLoader workers pass it on cheaply): its
    full-resolution L — as the photo's own 8-bit gray values (1 byte a pixel, L by a 256-entry table) when
    it is an 8-bit gray photo, else as float32 L — its L at the render size, and its alpha."""

    l_full: torch.Tensor | None  # (1, 1, H, W) float32 L in [0, 100]; None when gray8 holds the photo
    gray8: torch.Tensor | None  # (1, 1, H, W) uint8 gray of an 8-bit gray photo
    l_small: torch.Tensor  # (1, 1, R, R)
    alpha: np.ndarray | None  # (H, W) float32 in [0, 1], when the photo had transparency
    name: str = "photo"

    @property
    def size(self) -> tuple[int, int]:
        """(height, width)."""
        full = self.l_full if self.l_full is not None else self.gray8
        return tuple(full.shape[-2:])

    def l_rows(self, top: int, bottom: int) -> torch.Tensor:
        """(1, 1, rows, W) float32 L of rows top..bottom."""
        if self.l_full is not None:
            return self.l_full[:, :, top:bottom]
        return gray8_to_l(self.gray8[:, :, top:bottom])


def prepare(image: ImageInput, render_size: int, max_pixels: int = DEFAULT_MAX_PIXELS) -> Prepared:
    """Prepare: read a photo (at most max_pixels; a decoded Photo as it is) -> its L at full and at the render size."""
    photo = image if isinstance(image, Photo) else read_image(image, max_pixels=max_pixels)
    return prepare_photo(photo, render_size)


def prepare_photo(photo: Photo, render_size: int) -> Prepared:
    """A decoded photo -> its full-resolution L (from its pixels, a slice at a time) and render_l of it."""
    with enough_memory(photo.name, photo.size):
        pixels = photo.pixels
        if pixels.dtype == np.uint8 and pixels.ndim == 2:  # 8-bit gray: L is one of 256 values
            gray8 = torch.from_numpy(pixels if pixels.flags.writeable else pixels.copy())[None, None]  # (1, 1, H, W)
            l_full = None
            l_small = render_l(_l_by_rows(photo.size, lambda top, bottom: gray8_to_l(gray8[:, :, top:bottom])),
                               render_size)  # the float L exists only for this
        else:
            to_l = gray_to_l if pixels.ndim == 2 else rgb_to_l
            gray8 = None
            l_full = _l_by_rows(photo.size, lambda top, bottom: to_l(_channels_first(photo.rows(top, bottom))))
            l_small = render_l(l_full, render_size)
    return Prepared(l_full, gray8, l_small, photo.alpha, photo.name)


def render_l(l_full: torch.Tensor, render_size: int) -> torch.Tensor:
    """Render: (B, 1, H, W) full-resolution L -> (B, 1, R, R), the square the network sees (antialiased).
    Any channels resize alike: evaluate renders the true ab with it to place simulated hints."""
    return F.interpolate(l_full, size=(render_size, render_size), mode="bilinear", align_corners=False, antialias=True)


def decode_ab(ab: torch.Tensor, vibrance: float = 1.0, cast_removal: float = 0.0) -> torch.Tensor:
    """Decode: the network's ab (B, 2, R, R) in Lab units -> ab as the model card has it decoded: a share of each
    photo's mean taken away (a cast over the whole photo, sepia say, is its mean colour), scaled by the calibrated
    vibrance, clamped to ±AB_MAX. Inference (Colorizer.predict_ab) and training's validation (the card's
    defaults) alike."""
    if cast_removal:
        ab = ab - cast_removal * ab.mean(dim=(2, 3), keepdim=True)
    return (ab * vibrance).clamp_(-AB_MAX, AB_MAX)


def upsample_ab(ab_small: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Upsample: (B, 2, R, R) predicted ab -> (B, 2, H, W) at the photo's (height, width), clamped: the
    values finish_rgb8 and Colorizer.finish join with L (they take them a slice of rows at a time)."""
    return _BilinearRows(ab_small.contiguous(), *size)(0, size[0]).clamp_(-AB_MAX, AB_MAX)


def finish_rgb8(l_full: torch.Tensor | Sequence[Prepared], ab_small: torch.Tensor, saturation: float = 1.0) -> torch.Tensor:
    """Finish: (B, 1, H, W) full-resolution L — or B prepared frames of one size (video) — and (B, 2, R, R)
    predicted ab -> (B, H, W, 3) uint8 sRGB. ab is scaled by `saturation`, upsampled to full size and joined with
    the full-resolution L; colours outside sRGB lose chroma, not lightness (color.lab_to_srgb8). Frame by frame,
    in slices of ~1 MP, exactly as finish_image does for a photo."""
    if torch.is_tensor(l_full):
        frames = [lambda top, bottom, l_frame=l_frame: l_frame[:, :, top:bottom] for l_frame in l_full.split(1)]
        height, width = l_full.shape[-2:]
    else:
        frames = [prepared.l_rows for prepared in l_full]
        height, width = l_full[0].size
    out = torch.empty(len(frames), height, width, 3, dtype=torch.uint8)
    for index, (l_rows, ab_frame) in enumerate(zip(frames, ab_small.split(1))):
        for top, bottom, pixels in _finished_rows(l_rows, ab_frame, saturation, height, width):
            out[index, top:bottom] = pixels
    return out


def _finished_rows(l_rows, ab_small: torch.Tensor, saturation: float, height: int, width: int):
    """(top, bottom, (rows, W, 3) uint8 sRGB) for horizontal slices of about CHUNK_PIXELS: ab (1, 2, R, R)
    scaled and upsampled a slice at a time, joined with l_rows(top, bottom) (1, 1, rows, W)."""
    ab_rows = _BilinearRows((ab_small * saturation).contiguous(), height, width)  # upsample_ab, by slices
    step = max(1, CHUNK_PIXELS // width)
    for top in range(0, height, step):
        bottom = min(top + step, height)
        lab = join_lab(l_rows(top, bottom), ab_rows(top, bottom).clamp_(-AB_MAX, AB_MAX))
        yield top, bottom, lab_to_srgb8(lab)[0]


def finish_image(prepared: Prepared, ab_small: torch.Tensor, saturation: float) -> Image.Image:
    """Finish a photo: (1, 2, R, R) predicted ab -> the PIL image. Upsample ab to full size, join it with the full-resolution L and convert to sRGB, in horizontal
    slices of about CHUNK_PIXELS: no full-size float image is ever made, only the uint8 result."""
    if not torch.isfinite(ab_small).all():
        raise ModelOutputError(f"{prepared.name}: the model's colours for this photo are not finite "
                               "(NaN or infinity); its weights are probably broken")
    height, width = prepared.size
    with enough_memory(prepared.name, (width, height)):
        image = Image.new("RGB" if prepared.alpha is None else "RGBA", (width, height))
        for top, bottom, pixels in _finished_rows(prepared.l_rows, ab_small, saturation, height, width):
            pixels = pixels.numpy()  # (rows, W, 3) uint8
            if prepared.alpha is not None:
                alpha = np.clip(prepared.alpha[top:bottom] * 255.0 + 0.5, 0, 255).astype(np.uint8)
                pixels = np.concatenate([pixels, alpha[..., None]], axis=2)
            image.paste(Image.fromarray(pixels, image.mode), (0, top))
    return image


def _l_by_rows(size: tuple[int, int], l_rows) -> torch.Tensor:
    """(1, 1, H, W) float32 L filled from l_rows(top, bottom) in slices of about CHUNK_PIXELS: a photo is
    never converted to float all at once."""
    width, height = size
    l_full = torch.empty(1, 1, height, width)
    rows = max(1, CHUNK_PIXELS // width)
    for top in range(0, height, rows):
        l_full[:, :, top:top + rows] = l_rows(top, min(top + rows, height))
    return l_full


def _channels_first(pixels: np.ndarray) -> torch.Tensor:
    """(rows, W) or (rows, W, 3) -> (1, C, rows, W)."""
    values = torch.from_numpy(pixels)
    return values[None, None] if values.ndim == 2 else values.permute(2, 0, 1)[None]



def gray8_to_l(gray8: torch.Tensor) -> torch.Tensor:
    """uint8 gray values -> float32 L, the same values gray_to_l gives for value / 255."""
    return torch.from_numpy(np.take(_gray8_l_table(), gray8.numpy()))


@functools.cache
def _gray8_l_table() -> np.ndarray:
    return gray_to_l((torch.arange(256, dtype=torch.float32) / 255.0)[None, None, None]).flatten().numpy()


class _BilinearRows:
    """Rows of F.interpolate(ab, size=(height, width), mode="bilinear", align_corners=False), computed a slice
    at a time: ab is widened to full width once ((1, 2, R, W), small), then each slice mixes two of its rows
    with the weights PyTorch uses (its source row, scale * (y + 0.5) - 0.5 in float32, rounded once as its
    fused multiply-add does). The mix itself may differ from PyTorch's fused one by one float32 rounding
    step: over 126 million output values of the sample photos, 365 (3 in a million) moved by one level of
    255 (tests/test_colorize.py bounds it); exact float64 mixing would cost 20% of the finishing time."""

    def __init__(self, ab_small: torch.Tensor, height: int, width: int):
        self.rows = ab_small.shape[-2]
        self.height = height
        self.wide = F.interpolate(ab_small, size=(self.rows, width), mode="bilinear", align_corners=False)

    def __call__(self, top: int, bottom: int) -> torch.Tensor:
        if self.rows == self.height:
            return self.wide[:, :, top:bottom].clone()
        scale = (torch.tensor(self.rows, dtype=torch.float32) / self.height).double()
        source = ((torch.arange(top, bottom, dtype=torch.float64) + 0.5) * scale - 0.5).float().clamp_min_(0)
        first = source.floor().long().clamp_max_(self.rows - 1)
        weight = (source - first).clamp_(0, 1)[:, None]  # (rows, 1) of the second source row
        second = (first + 1).clamp_max_(self.rows - 1)
        near, far = self.wide.index_select(2, first), self.wide.index_select(2, second)  # (1, 2, rows, W)
        return torch.addcmul(far.mul_(weight), near, 1 - weight)  # near * (1 - w) + far * w, as PyTorch rounds it
