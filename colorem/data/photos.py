"""One training photo: bytes -> an augmented square crop (uint8 RGB), or a Skip saying why it is not used;
and the fixed, unaugmented centre crop of a validation photo."""

from __future__ import annotations

import io
import math
import random
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from colorem.errors import ImageReadError
from colorem.imageio import read_image


@dataclass
class Augment:
    """Crop and augmentation options (the fields of DataConfig that concern one image)."""

    size: int = 128
    small_images: str = "upscale"  # upscale | skip
    hflip: bool = True
    rotation: float = 0.0  # degrees
    zoom: float = 0.0
    shear: float = 0.0  # degrees
    gray_threshold: float = 0.02
    max_pixels: int = 50_000_000

    @classmethod
    def from_config(cls, data_config) -> "Augment":
        names = cls.__dataclass_fields__
        return cls(**{name: getattr(data_config, name) for name in names if hasattr(data_config, name)})


class Skip(Exception):
    """An image that is not used; `reason` is counted ("gray", "corrupt", "small")."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def decode(key: str, data: bytes | None, augment: Augment, rng: random.Random) -> np.ndarray:
    """Bytes -> (3, size, size) uint8 RGB crop, augmented; raises Skip."""
    if data is None:
        raise Skip("corrupt")
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.format == "JPEG" and min(image.size) >= 4 * augment.size:
                image.draft("RGB", (2 * augment.size, 2 * augment.size))  # decode big JPEGs at 1/2..1/8 scale
            photo = read_image(image, max_pixels=augment.max_pixels, name=key)
    except (ImageReadError, OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError):
        raise Skip("corrupt") from None
    rgb = photo.rgb  # (H, W, 3) float32 [0, 1]
    if float((rgb.max(axis=2) - rgb.min(axis=2)).mean()) < augment.gray_threshold:
        raise Skip("gray")
    height, width = rgb.shape[:2]
    if min(height, width) < augment.size and augment.small_images == "skip":
        raise Skip("small")
    tensor = torch.from_numpy(rgb).permute(2, 0, 1)[None]  # (1, 3, H, W)
    return (_augment(tensor, augment, rng)[0] * 255.0 + 0.5).clamp(0, 255).to(torch.uint8).numpy()


def _augment(rgb: torch.Tensor, augment: Augment, rng: random.Random) -> torch.Tensor:
    """Random affine (rotation, zoom, shear; borders filled by the nearest pixel, as Keras'
    ImageDataGenerator) and a random square crop of `size`, upscaling small images first."""
    size = augment.size
    height, width = rgb.shape[-2:]
    scale = max(1.0, size / min(height, width))  # smaller images are upscaled to cover the crop
    crop = size / scale  # crop side in source pixels
    top = rng.uniform(0, height - crop)
    left = rng.uniform(0, width - crop)
    angle = math.radians(rng.uniform(-augment.rotation, augment.rotation)) if augment.rotation else 0.0
    shear = math.radians(rng.uniform(-augment.shear, augment.shear)) if augment.shear else 0.0
    zoom_x, zoom_y = (rng.uniform(1 - augment.zoom, 1 + augment.zoom) for _ in range(2)) if augment.zoom else (1.0, 1.0)
    flip = augment.hflip and rng.random() < 0.5
    if not (angle or shear or zoom_x != 1.0 or zoom_y != 1.0) and scale == 1.0 and crop == int(crop):
        top, left = int(top), int(left)
        out = rgb[..., top:top + size, left:left + size]
        return out.flip(-1) if flip else out
    # Output pixel (u, v) in [-1, 1]² -> source point; compose crop window, zoom, shear, rotation, flip.
    cos, sin = math.cos(angle), math.sin(angle)
    linear = torch.tensor([[cos, -sin], [sin, cos]], dtype=torch.float64)
    linear = linear @ torch.tensor([[1.0, -math.sin(shear)], [0.0, math.cos(shear)]], dtype=torch.float64)
    linear = linear @ torch.diag(torch.tensor([zoom_x, zoom_y], dtype=torch.float64))
    if flip:
        linear = linear @ torch.diag(torch.tensor([-1.0, 1.0], dtype=torch.float64))
    half = crop / 2
    centre_x, centre_y = left + half, top + half
    # normalized source coordinates (align_corners=False): x_n = (2x + 1) / W - 1 for pixel centre x
    theta = torch.zeros(1, 2, 3, dtype=torch.float64)
    theta[0, 0, :2] = linear[0] * torch.tensor([half * 2 / width, half * 2 / width], dtype=torch.float64)
    theta[0, 1, :2] = linear[1] * torch.tensor([half * 2 / height, half * 2 / height], dtype=torch.float64)
    theta[0, 0, 2] = 2 * centre_x / width - 1
    theta[0, 1, 2] = 2 * centre_y / height - 1
    grid = F.affine_grid(theta.float(), [1, 3, size, size], align_corners=False)
    return F.grid_sample(rgb, grid, mode="bilinear", padding_mode="border", align_corners=False)


def center_square(key: str, data: bytes, size: int) -> np.ndarray:
    try:
        photo = read_image(data, name=key)
    except ImageReadError:
        raise Skip("corrupt") from None
    rgb = torch.from_numpy(photo.rgb).permute(2, 0, 1)[None]
    height, width = rgb.shape[-2:]
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    rgb = rgb[..., top:top + side, left:left + side]
    if side != size:
        rgb = F.interpolate(rgb, size=(size, size), mode="bilinear", align_corners=False, antialias=side > size)
    return (rgb[0] * 255.0 + 0.5).clamp(0, 255).to(torch.uint8).numpy()
