"""The ranges colorize options and model-card values must fall in, checked in one place before anything is
built or read: a bad value is one OptionError that names it, never a crash (or a huge allocation) later on."""

from __future__ import annotations

import math
import numbers
from typing import Any

from colorem.errors import OptionError
from colorem.models import list_models, model_spec

RENDER_SIZE = (16, 2048)  # what a caller may ask for; the network's cost grows with the square
CARD_RENDER_SIZE = (16, 1024)  # a card's default: 2048² took 6 GB for two tiny photos, 1024² about a quarter
SATURATION = (0.0, 4.0)  # the user's scale on the predicted ab (1 = as calibrated)
VIBRANCE = (0.0, 4.0)  # the card's calibrated scale on the predicted ab
CAST_REMOVAL = (0.0, 1.0)  # the card's share of a photo's mean predicted ab removed (1: the mean is gray)
TEMPERATURE = (0.001, 10.0)  # annealed mean: near 0 the mode, 1 the mean, beyond that ever grayer

def check_number(name: str, value: Any, limits: tuple[float, float], integer: bool = False) -> float | int:
    """`value` as a finite number within `limits`, returned as a Python int when `integer`, else as it was
    a float (numpy scalars count: np.int64(128) is a whole number); else an OptionError naming `name`."""
    low, high = limits
    kind = "a whole number" if integer else "a number"
    wrong_type = (isinstance(value, bool) or not isinstance(value, numbers.Real)
                  or (integer and not isinstance(value, numbers.Integral)))
    if wrong_type or not math.isfinite(value) or not low <= value <= high:
        raise OptionError(f"{name} must be {kind} from {low:g} to {high:g}, not {value!r}")
    return int(value) if integer else float(value)


def check_options(render_size: Any, saturation: Any, temperature: Any, default_render_size: int) -> int:
    """The per-call colorize options; returns the render size (None: the model's, `default_render_size`)."""
    render_size = check_number("render_size", default_render_size if render_size is None else render_size,
                               RENDER_SIZE, integer=True)
    check_number("saturation", saturation, SATURATION)
    if temperature is not None:
        check_number("temperature", temperature, TEMPERATURE)
    return render_size


def check_card(values: Any, source: str = "the model card") -> None:
    """A card's fields (a dict as read from JSON): types, ranges and known architecture options."""
    if not isinstance(values, dict):
        raise OptionError(f"{source}: expected a JSON object, found {type(values).__name__}")
    architecture = values.get("architecture")
    if not isinstance(architecture, str) or architecture not in list_models():
        raise OptionError(f"{source}: unknown architecture {architecture!r}; colorem has {', '.join(list_models())}")
    if "render_size" in values:
        check_number(f"{source}: render_size", values["render_size"], CARD_RENDER_SIZE, integer=True)
    for key, limits in (("vibrance", VIBRANCE), ("cast_removal", CAST_REMOVAL)):
        if key in values:
            check_number(f"{source}: {key}", values[key], limits)
    for key in ("name", "description", "license", "format"):
        if key in values and not isinstance(values[key], str):
            raise OptionError(f"{source}: {key} must be a string, not {values[key]!r}")
    schema = {key: (option.kind, option.limits) for key, option in model_spec(architecture).options.items()}
    _check_table(f"{source}: architecture_options", values.get("architecture_options", {}), schema)


def _check_table(where: str, options: Any, table: dict[str, tuple]) -> None:
    if not isinstance(options, dict):
        raise OptionError(f"{where} must be a JSON object, not {type(options).__name__}")
    for key, value in options.items():
        if key not in table:
            raise OptionError(f"{where}: unknown option {key!r}; known: {', '.join(table)}")
        kind, limits = table[key]
        if value is None:
            continue
        if kind is dict and isinstance(value, dict) and limits is not None:  # a nested table (embedder_options)
            _check_table(f"{where}.{key}", value, limits)
        elif kind in (int, float):
            check_number(f"{where}.{key}", value, limits, integer=kind is int)
        elif not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise OptionError(f"{where}.{key} must be a {kind.__name__}, not {value!r}")
        elif limits is not None and value not in limits:
            raise OptionError(f"{where}.{key} must be one of {', '.join(limits)}, not {value!r}")
