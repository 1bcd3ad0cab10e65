"""Test footage made from photos at test or bench time: a camera (pans, zooms, shake) over a photo, small
objects moving across a still background, a cut and a fade. Frames are RGB uint8 (H, W, 3), the colour
original a colorized clip is compared with; gray_of turns them gray as colorem sees them.

Used by tests/test_video.py and bench/video.py (which puts the repository on sys.path).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from colorem.color import gray_to_rgb, rgb_to_l

SIZE = (384, 256)  # (width, height) of the bench clips: small enough to colorize many frames on 2 cores


@dataclass(frozen=True)
class Clip:
    name: str
    fps: int
    frames: list[np.ndarray]  # RGB uint8 (H, W, 3)
    what: str


def view(photo: Image.Image, centre: tuple[float, float], scale: float, size: tuple[int, int] = SIZE) -> np.ndarray:
    """What a camera sees: the photo's window centred at `centre` (fractions of its width and height),
    `scale` of the largest window of the frame's aspect that fits, resampled to `size`; sub-pixel exact."""
    width, height = photo.size
    aspect = size[0] / size[1]
    window_w = min(width, height * aspect) * scale
    window_h = window_w / aspect
    left = np.clip(centre[0] * width - window_w / 2, 0, width - window_w)
    top = np.clip(centre[1] * height - window_h / 2, 0, height - window_h)
    box = (left, top, left + window_w, top + window_h)
    return np.array(photo.convert("RGB").resize(size, Image.Resampling.BICUBIC, box=box))


def pan(photo: Image.Image, frames: int, size: tuple[int, int] = SIZE, speed: float = 0.004) -> list[np.ndarray]:
    """A slow pan left to right at 80% zoom, `speed` of the photo's width per frame."""
    start = 0.5 - speed * frames / 2
    return [view(photo, (start + speed * index, 0.5), 0.8, size) for index in range(frames)]


def zoom(photo: Image.Image, frames: int, size: tuple[int, int] = SIZE, closest: float = 0.6) -> list[np.ndarray]:
    """A zoom in on the centre, from the whole photo to `closest` of it."""
    scales = np.linspace(1.0, closest, frames)
    return [view(photo, (0.5, 0.5), scale, size) for scale in scales]


def shake(photo: Image.Image, frames: int, size: tuple[int, int] = SIZE, pixels: float = 3.0,
          seed: int = 0) -> list[np.ndarray]:
    """A hand-held still shot: the view jitters by up to about `pixels` frame pixels, smoothly from frame to frame."""
    rng = np.random.default_rng(seed)
    steps = rng.normal(0.0, 1.0, (frames, 2))
    path = np.cumsum(steps, axis=0) * 0.6
    path -= np.linspace(path[0], path[-1], frames)  # a random walk that comes back: no drift
    path = path / max(1e-6, np.abs(path).max()) * pixels / np.array(size)  # in fractions of the frame
    return [view(photo, (0.5 + dx * 0.85, 0.5 + dy * 0.85), 0.85, size) for dx, dy in path]


def moving_objects(background: Image.Image, objects: list[Image.Image], frames: int, size: tuple[int, int] = SIZE,
                   grain: int = 2, seed: int = 0) -> list[np.ndarray]:
    """A still camera on `background` with small objects (each photo shrunk to about a tenth of the frame's
    width) crossing it at different heights and speeds, and a little sensor grain."""
    base = view(background, (0.5, 0.5), 1.0, size).astype(np.int16)
    width, height = size
    sprites = []
    for index, photo in enumerate(objects):
        sprite_w = width // 10 + 8 * index
        sprite_h = max(8, round(sprite_w * photo.height / photo.width))
        pixels = np.asarray(photo.convert("RGB").resize((sprite_w, sprite_h), Image.Resampling.LANCZOS), dtype=np.int16)
        row = int((0.25 + 0.5 * index / max(1, len(objects) - 1)) * (height - sprite_h))
        speed = (width + sprite_w) / frames * (0.6 + 0.4 * index / max(1, len(objects) - 1))
        sprites.append((pixels, row, speed, -1 if index % 2 else 1))
    rng = np.random.default_rng(seed)
    out = []
    for index in range(frames):
        frame = base.copy()
        for pixels, row, speed, direction in sprites:
            travelled = round(speed * index) - pixels.shape[1]
            left = travelled if direction > 0 else width - travelled - pixels.shape[1]
            lo, hi = max(0, left), min(width, left + pixels.shape[1])
            if lo < hi:
                frame[row:row + pixels.shape[0], lo:hi] = pixels[:, lo - left:hi - left]
        if grain:
            frame = frame + rng.integers(-grain, grain + 1, frame.shape[:2])[..., None]  # in lightness, not in colour
        out.append(np.clip(frame, 0, 255).astype(np.uint8))
    return out


def fade(before: list[np.ndarray], after: list[np.ndarray], frames: int) -> list[np.ndarray]:
    """`before`, a cross-dissolve of `frames` frames from its last frame to the first of `after`, then `after`."""
    first, last = before[-1].astype(np.float32), after[0].astype(np.float32)
    weights = np.arange(1, frames + 1) / (frames + 1)
    dissolve = [np.round(first + (last - first) * w).astype(np.uint8) for w in weights]
    return list(before) + dissolve + list(after)


def standard_clips(photos: dict[str, Image.Image], frames: int = 48, size: tuple[int, int] = SIZE) -> list[Clip]:
    """The bench's clips, from photos named street, scene, people and objects (a list under "objects")."""
    half = frames // 2
    return [
        Clip("pan 24 fps", 24, pan(photos["street"], frames, size), "a slow pan across a street"),
        Clip("zoom 30 fps", 30, zoom(photos["scene"], frames, size), "a zoom in on a landscape"),
        Clip("objects 30 fps", 30, moving_objects(photos["street"], photos["objects"], frames, size),
             "a still camera, three small objects crossing, grain"),
        Clip("cut 24 fps", 24, pan(photos["scene"], half, size) + pan(photos["people"], frames - half, size),
             "a pan, a cut to another pan"),
        Clip("fade 24 fps", 24,
             fade(zoom(photos["people"], half // 2, size), pan(photos["street"], half // 2, size), half),
             "a zoom, a cross-dissolve, a pan"),
        Clip("shake 30 fps", 30, shake(photos["people"], frames, size), "a hand-held still shot"),
    ]


def shared_photos(eval_scenes: Path) -> dict[str, Image.Image]:
    """The photos standard_clips takes, from the shared evaluation scenes."""
    def photo(name: str) -> Image.Image:
        return Image.open(eval_scenes / name).convert("RGB")

    return {"street": photo("camvid_streets_0003.jpg"), "scene": photo("weather_scenes_0005.jpg"),
            "people": photo("ccp_people_0004.jpg"),
            "objects": [photo("pets_0002.jpg"), photo("caltech101_0007.jpg"), photo("pets_0005.jpg")]}


def gray_of(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 -> (H, W) uint8: the gray of the same Lab L (what "turned gray" means here)."""
    tensor = torch.from_numpy(rgb).permute(2, 0, 1)[None].float().div(255.0)
    return gray_to_rgb(rgb_to_l(tensor))[0, 0].mul(255.0).add(0.5).clamp(0, 255).byte().numpy()


def pan_and_zoom(photo: Image.Image, frames: int, size: tuple[int, int] = (96, 64)) -> list[np.ndarray]:
    """A camera over a photo in whole-pixel crops: the window slides right and closes in, frame by frame;
    gray (H, W) uint8 (the test clips' camera since before view())."""
    width, height = photo.size
    out = []
    for index in range(frames):
        scale = 1.0 - 0.3 * index / frames  # zoom in to 70% of the view
        crop_w, crop_h = int(width * 0.6 * scale), int(height * 0.6 * scale)
        left = int((width - crop_w) * index / frames)
        top = (height - crop_h) // 2
        view_ = photo.crop((left, top, left + crop_w, top + crop_h)).resize(size, Image.Resampling.BILINEAR)
        out.append(np.asarray(view_.convert("L")))
    return out
