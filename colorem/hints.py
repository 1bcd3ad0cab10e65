"""Colour hints: points where the user says what colour the photo is, as the network's hint input.

A hint is a point in the photo's own pixel coordinates and an sRGB colour; only the colour's ab is
used (the lightness comes from the photo). The network sees hints at its render size as three
channels: a / AB_MAX and b / AB_MAX where a hint was given, and a mask that is 1 there (Zhang et al.,
SIGGRAPH 2017). Training and `colorem evaluate --hints N` simulate hints from the true colours.
"""

from __future__ import annotations

import json
import math
import numbers
import re
from dataclasses import dataclass

import kornia.filters
import numpy as np
import torch
import torch.nn.functional as F

from PIL import ImageColor

from colorem.color import AB_MAX, rgb_to_lab
from colorem.errors import ColoremError

MAX_HINTS = 256
HINT_CHANNELS = 3  # a / AB_MAX, b / AB_MAX, mask
SPREAD_SIGMAS = (1.5, 4.0, 12.0)  # Gaussian widths, in cells of the grid the hints are spread over
SPREAD_CHANNELS = 3 * len(SPREAD_SIGMAS)
FOLLOW_REACH = 0.25  # follow_hints: Gaussian width of a hint's reach, as a share of the render size
FOLLOW_LIGHTNESS = 8.0  # follow_hints: Gaussian width in L (0..100) of "as light as the hinted point"
_FOLLOW_CHUNK = 1 << 24  # follow_hints: weights computed for at most this many (point, cell) pairs at once
_HEX = re.compile(r"#?([0-9a-fA-F]{6}|[0-9a-fA-F]{3})")


class HintError(ColoremError, ValueError):
    """A hint that cannot be used: outside the photo, a colour that is not one, too many hints."""


@dataclass(frozen=True)
class Hint:
    """A colour at a point: x, y in the photo's pixels (0 at the left/top edge); color as sRGB
    "#rrggbb" / "#rgb", a CSS colour name or an (r, g, b) tuple of 0..255 integers."""

    x: float
    y: float
    color: str | tuple[int, int, int]

    def rgb(self) -> tuple[int, int, int]:
        return parse_color(self.color)

    @classmethod
    def from_dict(cls, values: dict) -> "Hint":
        if not isinstance(values, dict) or not {"x", "y", "color"} <= set(values):
            raise HintError(f"a hint is an object with x, y and color, not {values!r}")
        unknown = [key for key in values if key not in ("x", "y", "color")]
        if unknown:  # a misspelt or misplaced field is refused, never silently dropped
            raise HintError(f"a hint has x, y and color only, not {', '.join(map(repr, unknown))}")
        return cls(values["x"], values["y"], values["color"])

    def to_dict(self) -> dict:
        red, green, blue = self.rgb()
        return {"x": self.x, "y": self.y, "color": f"#{red:02x}{green:02x}{blue:02x}"}


def parse_color(color) -> tuple[int, int, int]:
    """"#3a6ea5", "3a6ea5", "#36a", a CSS name ("steelblue") or (58, 110, 165) -> (58, 110, 165)."""
    if isinstance(color, str):
        match = _HEX.fullmatch(color.strip())
        if not match:
            # Names only: Pillow would also read #rgba, #rrggbbaa, rgb(), hsl() and hsv(), which are not documented
            if color.strip().lower() not in ImageColor.colormap:
                raise HintError(f"hint colour {color!r} is neither sRGB hex (#rrggbb or #rgb) such as #3a6ea5 nor a "
                                "CSS colour name such as steelblue")
            return ImageColor.getcolor(color.strip().lower(), "RGB")  # type: ignore[return-value]
        digits = match.group(1)
        if len(digits) == 3:
            digits = "".join(2 * digit for digit in digits)
        return tuple(int(digits[index:index + 2], 16) for index in (0, 2, 4))  # type: ignore[return-value]
    if (isinstance(color, (tuple, list, np.ndarray)) and len(color) == 3 and all(
            isinstance(value, numbers.Integral) and not isinstance(value, bool) and 0 <= value <= 255 for value in color)):
        return tuple(int(value) for value in color)  # type: ignore[return-value]
    raise HintError(f"hint colour {color!r} is neither a hex string nor three integers 0..255")


def as_hints(values) -> list[Hint]:
    """Hints as the API takes them (Hint objects or {x, y, color} dicts, in any sequence) -> a list of Hint."""
    if isinstance(values, (str, bytes, dict)) or not hasattr(values, "__iter__"):
        raise HintError(f"hints are a list of Hint or {{x, y, color}} objects, not {type(values).__name__}")
    hints = [value if isinstance(value, Hint) else Hint.from_dict(value) for value in values]
    if len(hints) > MAX_HINTS:
        raise HintError(f"{len(hints)} hints given; at most {MAX_HINTS} are allowed")
    for hint in hints:  # checked here, so a bad hint fails before any photo is read
        _coordinate(hint.x, "x")
        _coordinate(hint.y, "y")
        parse_color(hint.color)
    return hints


def parse_hints_json(text: str | bytes) -> list[Hint]:
    """The hints file the CLI, the REST API and the page share: a JSON list of {"x", "y", "color"}
    objects, or {"hints": [...]} around it. x, y are photo pixels; color is "#rrggbb"."""
    if isinstance(text, str):
        text = text.removeprefix("\ufeff")  # the byte-order mark Windows editors put before UTF-8
    try:
        data = json.loads(text)
    except (ValueError, UnicodeDecodeError) as error:
        raise HintError(f"hints are not valid JSON ({error})") from None
    except RecursionError:  # "[[[[...]]]]" nested deeper than Python's parser goes
        raise HintError("hints are nested too deeply to be a list of {x, y, color}") from None
    if isinstance(data, dict) and "hints" in data:
        data = data["hints"]
    if not isinstance(data, list):
        raise HintError('hints JSON must be a list of {"x", "y", "color"} objects (or {"hints": [...]})')
    return as_hints(data)


def parse_hint_argument(text: str) -> Hint:
    """The CLI's --hint X,Y,COLOR ("120,80,#3a6ea5", "120,80,steelblue") -> a Hint."""
    parts = [part.strip() for part in text.split(",", 2)]
    if len(parts) != 3:
        raise HintError(f"--hint {text!r}: expected X,Y,COLOR such as 120,80,#3a6ea5")
    try:
        x, y = float(parts[0]), float(parts[1])
    except ValueError:
        raise HintError(f"--hint {text!r}: X and Y must be numbers (pixels of the photo)") from None
    hint = Hint(x, y, parts[2])
    return as_hints([hint])[0]


def hint_map(hints: list[Hint], photo_size: tuple[int, int], render_size: int | tuple[int, int]) -> torch.Tensor:
    """Hints in a photo of (width, height) pixels -> the network's (1, 3, R, R) hint input at the render size."""
    if len(hints) > MAX_HINTS:
        raise HintError(f"{len(hints)} hints given; at most {MAX_HINTS} are allowed")
    width, height = photo_size
    out_h, out_w = (render_size, render_size) if isinstance(render_size, int) else render_size
    channels = torch.zeros(1, HINT_CHANNELS, out_h, out_w)
    if not hints:
        return channels
    check_inside(hints, photo_size)
    colours = torch.tensor([parse_color(hint.color) for hint in hints], dtype=torch.float32) / 255.0
    ab = rgb_to_lab(colours.T[None, :, :, None])[0, 1:, :, 0].T  # (N, 2)
    for hint, (a, b) in zip(hints, ab.tolist()):
        x, y = float(hint.x), float(hint.y)
        column, row = min(int(x * out_w / width), out_w - 1), min(int(y * out_h / height), out_h - 1)
        channels[0, :, row, column] = torch.tensor([a / AB_MAX, b / AB_MAX, 1.0])
    return channels


def check_inside(hints, photo_size: tuple[int, int]) -> None:
    """A HintError for the first hint outside a photo of (width, height) pixels."""
    width, height = photo_size
    for hint in hints:
        x, y = _coordinate(hint.x, "x"), _coordinate(hint.y, "y")
        if not (0 <= x < width and 0 <= y < height):
            raise HintError(f"hint at ({hint.x}, {hint.y}) lies outside the {width}x{height} photo")


def spread_hints(hints: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """The hint input (B, 3, H, W) -> its colours spread over a coarser (h, w) grid, (B, 9, h, w): for
    each width in SPREAD_SIGMAS, the hints' mean ab weighted by distance, times a confidence (1 on a
    point hint, falling as a Gaussian of the distance to the hints), and the confidence. A sparse point
    becomes a dense signal the network learns from fast and can follow along edges."""
    height, width = hints.shape[-2:]
    mask = hints[:, 2:3].float()
    mass = torch.cat([hints[:, :2].float() * mask, mask], dim=1)
    mass = F.adaptive_avg_pool2d(mass, size) * (height * width / (size[0] * size[1]))  # a pixel's hint: 1
    channels = []
    for sigma in SPREAD_SIGMAS:
        side = 2 * math.ceil(3 * sigma) + 1
        kernel = kornia.filters.get_gaussian_kernel1d(side, sigma, device=mass.device, dtype=mass.dtype)  # (1, side)
        blurred = kornia.filters.filter2d_separable(mass, kernel, kernel, border_type="constant")
        blurred = blurred / kernel.max().square()  # peak 1 under a point hint
        confidence = blurred[:, 2:3].clamp(max=1.0)
        ab = blurred[:, :2] / blurred[:, 2:3].clamp_min(1e-6)
        channels += [ab * confidence, confidence]
    return torch.cat(channels, dim=1).to(hints.dtype)


def follow_hints(ab: torch.Tensor, l: torch.Tensor, hints: torch.Tensor, reach: float = FOLLOW_REACH,
                 lightness: float = FOLLOW_LIGHTNESS) -> torch.Tensor:
    """The network's ab (B, 2, R, R) in Lab units, its L (B, 1, R, R) and its hint input (B, 3, R, R) ->
    ab that takes each hint's colour where it was given. What the network left of the difference between
    a hint and its colour there is added back around the hint, fading with distance (a Gaussian of `reach`
    times the render size) and with difference in lightness (a Gaussian of `lightness` in L): a joint
    bilateral spread, so a hint also reaches the parts of its object the network coloured too timidly.
    Where several hints reach, their differences mix by weight. No hints: ab as it is."""
    out = ab.clone()
    height, width = ab.shape[-2:]
    rows = torch.arange(height, dtype=torch.float32, device=ab.device)[:, None] / height
    columns = torch.arange(width, dtype=torch.float32, device=ab.device)[None, :] / height  # one unit: the height
    for index in range(len(ab)):
        point_rows, point_columns = hints[index, 2].nonzero(as_tuple=True)
        if len(point_rows) == 0:
            continue
        difference = hints[index, :2, point_rows, point_columns].T.float() * AB_MAX - ab[index, :, point_rows, point_columns].T
        point_l, frame_l = l[index, 0, point_rows, point_columns].float(), l[index, 0].float()
        total = torch.zeros(2, height, width, device=ab.device)
        weight_sum = torch.zeros(height, width, device=ab.device)
        reached = torch.zeros(height, width, device=ab.device)
        step = max(1, _FOLLOW_CHUNK // (height * width))
        for start in range(0, len(point_rows), step):
            part = slice(start, start + step)
            distance = ((rows - point_rows[part, None, None] / height).square()
                        + (columns - point_columns[part, None, None] / height).square()) / (2 * reach ** 2)
            weight = torch.exp(-distance - (frame_l - point_l[part, None, None]).square() / (2 * lightness ** 2))
            total += torch.einsum("phw,pc->chw", weight, difference[part])
            weight_sum += weight.sum(0)
            reached = torch.maximum(reached, weight.amax(0))
        out[index] += reached * total / weight_sum.clamp_min(1e-12)
    return out.clamp_(-AB_MAX, AB_MAX)


def _coordinate(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise HintError(f"hint {name} must be a finite number, not {value!r}")
    return float(value)


@dataclass
class HintSimulation:
    """How training reveals true colours as hints (Zhang et al. 2017, with more photos left without)."""

    none_share: float = 0.5  # photos with no hint at all, so automatic colorization stays trained
    geometric_p: float = 0.125  # otherwise 1 + Geometric(p) points (mean 8)
    max_points: int = 32
    patch_sizes: tuple[int, ...] = (1, 1, 3, 5)  # a point, sometimes a few pixels wide


def simulate_hints(ab: torch.Tensor, generator: torch.Generator | None, simulation: HintSimulation | None = None,
                   counts: list[int] | None = None, patch_size: int | None = None) -> torch.Tensor:
    """True ab (B, 2, H, W) in Lab units -> a hint input (B, 3, H, W): at random points the mean ab of a
    small patch, revealed over that patch. `counts` fixes the number of points per photo (evaluation);
    `patch_size` fixes the patch side."""
    simulation = simulation or HintSimulation()
    batch, _, height, width = ab.shape
    if counts is None:
        counts = []
        for _ in range(batch):
            if torch.rand((), generator=generator) < simulation.none_share:
                counts.append(0)
                continue
            uniform = float(torch.rand((), generator=generator).clamp_min(1e-7))
            points = 1 + int(math.log(uniform) / math.log(1 - simulation.geometric_p))
            counts.append(min(points, simulation.max_points))
    hints = torch.zeros(batch, HINT_CHANNELS, height, width, dtype=torch.float32, device=ab.device)
    sizes = [patch_size] if patch_size else sorted(set(simulation.patch_sizes))
    means = {size: F.avg_pool2d(ab.float(), size, stride=1, padding=size // 2, count_include_pad=False)
             for size in sizes}
    for index, count in enumerate(counts):
        for _ in range(count):
            size = patch_size or simulation.patch_sizes[int(torch.randint(len(simulation.patch_sizes), (), generator=generator))]
            row = int(torch.randint(height, (), generator=generator))
            column = int(torch.randint(width, (), generator=generator))
            top, left = max(0, row - size // 2), max(0, column - size // 2)
            bottom, right = min(height, top + size), min(width, left + size)
            colour = means[size][index, :, row, column] / AB_MAX
            hints[index, :2, top:bottom, left:right] = colour[:, None, None]
            hints[index, 2, top:bottom, left:right] = 1.0
    return hints
