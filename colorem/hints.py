"""Colour hints as users give them: points where the user says what colour the photo is, parsed and checked
at the edge, once, by as_hints (the API, the CLI's --hint/--hints and the server's hints field all end there).

A hint is a point in the photo's own pixel coordinates and an sRGB colour; only the colour's ab is used (the
lightness comes from the photo). What the network does with them: colorem.hint_input (the hint input at the
render size, and the colours made to follow it), colorem.models.hint_spread; training's simulated hints:
colorem.train.hint_simulation.
"""

from __future__ import annotations

import json
import math
import numbers
import re
from dataclasses import dataclass

import numpy as np
from PIL import ImageColor

from colorem.errors import ColoremError

MAX_HINTS = 256
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


class Hints(tuple):
    """Hints as_hints has checked (a tuple of Hint): passed on, they are not checked again."""


def as_hints(values) -> Hints:
    """Hints as the API takes them (Hint objects or {x, y, color} dicts, in any sequence) -> checked Hints: the
    one check of a hint's fields and of their number, wherever hints enter (checked Hints pass through)."""
    if isinstance(values, Hints):
        return values
    if isinstance(values, (str, bytes, dict)) or not hasattr(values, "__iter__"):
        raise HintError(f"hints are a list of Hint or {{x, y, color}} objects, not {type(values).__name__}")
    hints = [value if isinstance(value, Hint) else Hint.from_dict(value) for value in values]
    if len(hints) > MAX_HINTS:
        raise HintError(f"{len(hints)} hints given; at most {MAX_HINTS} are allowed")
    for hint in hints:  # checked here, so a bad hint fails before any photo is read
        _coordinate(hint.x, "x")
        _coordinate(hint.y, "y")
        parse_color(hint.color)
    return Hints(hints)


def read_hints_json(text: str | bytes) -> list:
    """The hints file the CLI, the REST API and the page share: a JSON list of {"x", "y", "color"} objects, or
    {"hints": [...]} around it (x, y are photo pixels; color is "#rrggbb") -> that list, its hints not yet checked."""
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
    return data


def parse_hints_json(text: str | bytes) -> Hints:
    """A hints file (read_hints_json) -> checked Hints."""
    return as_hints(read_hints_json(text))


def parse_hint_argument(text: str) -> Hint:
    """The CLI's --hint X,Y,COLOR ("120,80,#3a6ea5", "120,80,steelblue") -> a Hint, for as_hints to check."""
    parts = [part.strip() for part in text.split(",", 2)]
    if len(parts) != 3:
        raise HintError(f"--hint {text!r}: expected X,Y,COLOR such as 120,80,#3a6ea5")
    try:
        x, y = float(parts[0]), float(parts[1])
    except ValueError:
        raise HintError(f"--hint {text!r}: X and Y must be numbers (pixels of the photo)") from None
    return Hint(x, y, parts[2])


def check_inside(hints: Hints, photo_size: tuple[int, int]) -> None:
    """A HintError for the first of checked hints that lies outside a photo of (width, height) pixels: what can
    be checked only once the photo is read."""
    width, height = photo_size
    for hint in hints:
        if not (0 <= float(hint.x) < width and 0 <= float(hint.y) < height):
            raise HintError(f"hint at ({hint.x}, {hint.y}) lies outside the {width}x{height} photo")


def _coordinate(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise HintError(f"hint {name} must be a finite number, not {value!r}")
    return float(value)
