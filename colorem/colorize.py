"""The main API: a Colorizer holds one model, run as colorem.runtime placed it, and colorizes photos of any size
through the stages of colorem.stages: prepare -> predict_ab (the model; ab clamped) -> finish.

Colour hints (colorem.hints), in the photo's pixels, enter the model beside L at the render size (hint_map); the
predicted ab then takes each hint's colour where it was given (follow_hints).
"""

from __future__ import annotations

import math
import os
from typing import Sequence

import numpy as np
import torch
from PIL import Image
from torch import nn

from colorem.device import autocast, enough_memory as _enough_memory  # the name predict_ab has always used
from colorem.errors import OptionError
from colorem.color import AB_MAX
from colorem.hint_input import follow_hints, hint_map, hint_reach
from colorem.hints import Hint, HintError, as_hints
from colorem.imageio import DEFAULT_MAX_PIXELS, ImageInput
from colorem.limits import check_options
from colorem.runtime import onnx_from, start_runtime
from colorem.stages import Prepared, decode_ab, finish_image, prepare
from colorem.video import VideoOptions, VideoResult, colorize_video
from colorem.weights import ModelCard, load_weights, resolve_weights


class Colorizer:
    """A model on a device at a precision, with its card. Build with colorem.load() or from_model()."""

    def __init__(self, model: nn.Module, card: ModelCard, device: str | torch.device | None = None,
                 precision: str = "auto", max_pixels: int = DEFAULT_MAX_PIXELS, backend: str = "auto",
                 onnx_model: bytes | str | os.PathLike | None = None):
        runtime = start_runtime(model, device, precision, backend, onnx_model)
        self.model, self.device, self.precision, self.backend, self._onnx = (
            runtime.model, runtime.device, runtime.precision, runtime.backend, runtime.onnx)
        self.parameters = runtime.parameters  # the trained network's (self.model may have its batch norm folded)
        self.card = card
        self.max_pixels = max_pixels
        self.vibrance = float(card.vibrance)  # the model's calibrated colour strength; saturation=1 means "as calibrated"
        self.cast_removal = float(card.cast_removal)  # the share of each photo's mean colour taken away (sepia casts)
        self.temperature: float | None = None  # classification heads: annealed-mean temperature (None: the model's)

    @classmethod
    def from_model(cls, model: nn.Module, render_size: int = 256, **kwargs) -> "Colorizer":
        card = ModelCard(architecture=type(model).__name__, render_size=render_size, name="in-memory")
        return cls(model, card, **kwargs)

    @property
    def render_size(self) -> int:
        return self.card.render_size

    @property
    def accepts_hints(self) -> bool:
        """Whether colorize() takes colour hints: a model with a hint input, run by PyTorch."""
        return bool(getattr(self.model, "accepts_hints", False)) and self._onnx is None

    def check_options(self, render_size: int | None, saturation: float, temperature: float | None) -> int:
        """The per-call options, checked against colorem's limits and this model; returns the render size
        (None: the card's). A temperature for a model that regresses ab has nothing to act on: an OptionError."""
        render_size = check_options(render_size, saturation, temperature, self.render_size)
        if temperature is not None and getattr(self.model, "head", "classification") == "regression":
            raise OptionError(f"temperature {temperature:g}: the model {self.card.name or self.card.architecture!r} "
                              "predicts colours directly (a regression head); temperature is for classification models")
        return render_size

    def check_hints(self, hints: Sequence[Sequence[Hint | dict] | None], photos: int) -> list[list[Hint]] | None:
        """One list of hints per photo (None or [] for none) -> Hint lists, checked before any photo is read;
        None when there are none at all (a hint model then runs as the automatic one)."""
        if isinstance(hints, (str, bytes, dict)) or not hasattr(hints, "__len__"):
            raise HintError(f"hints hold one list per photo ([] or None for none), not {type(hints).__name__}")
        if len(hints) != photos:
            raise HintError(f"hints hold one list per photo ([] or None for none): {len(hints)} given for {photos}")
        hints = [as_hints(photo_hints) if photo_hints is not None else [] for photo_hints in hints]
        if not any(hints):
            return None
        if not self.accepts_hints:
            if getattr(self.model, "accepts_hints", False):
                raise HintError("the onnxruntime backend does not take colour hints; use the torch backend "
                                "(--backend torch, or backend='torch' in colorem.load)")
            raise HintError(f"the model {self.card.name or self.card.architecture!r} takes no colour hints "
                            "(its card's architecture_options has no hints: true)")
        return hints

    def hint_input(self, hints: Sequence[Sequence[Hint]], prepared: Sequence[Prepared], render_size: int) -> torch.Tensor:
        """One list of hints per photo, in its own pixels -> the model's hint input (B, 3, R, R)."""
        return torch.cat([hint_map(photo_hints, item.size[::-1], render_size)
                          for photo_hints, item in zip(hints, prepared, strict=True)])

    # --- the pipeline -------------------------------------------------------------------------
    def prepare(self, image: ImageInput, render_size: int) -> Prepared:
        """Read a photo (at most max_pixels) and prepare it: its L at full and at the render size."""
        return prepare(image, render_size, self.max_pixels)

    @torch.inference_mode()
    def predict_ab(self, l_small: torch.Tensor, temperature: float | None = None,
                   hints: torch.Tensor | None = None, follow: bool = True) -> torch.Tensor:
        """(B, 1, R, R) L in [0, 100] -> (B, 2, R, R) ab in Lab units (float32, CPU), decoded as the card says
        (stages.decode_ab). `hints` is the model's (B, 3, R, R) hint input (hint_input()): near hints (hint_reach)
        the network's own colours replace that decoding, and the colours follow the hints (follow_hints) unless
        `follow` is False (the network alone, for benchmarks)."""
        temperature = self.temperature if temperature is None else temperature
        if self._onnx is not None:
            if hints is not None:
                raise HintError("the onnxruntime backend does not take colour hints; use the torch backend "
                                "(--backend torch, or backend='torch' in colorem.load)")
            default = getattr(self.model, "temperature", 1.0)
            ab = self._onnx(l_small, default if temperature is None else temperature)
        else:
            l_small = l_small.to(self.device).contiguous(memory_format=torch.channels_last)
            what = f"the network at render size {l_small.shape[-1]} ({len(l_small)} photos)"
            with autocast(self.device, self.precision), _enough_memory("colorem", None, what):
                kwargs = {"temperature": temperature} if temperature is not None else {}
                if hints is not None:
                    kwargs["hints"] = hints.to(self.device)
                ab = self.model(l_small, **kwargs)
        ab = ab.float().cpu()
        broken = ~torch.isfinite(ab).flatten(1).all(dim=1)  # (B,): clamping would hide an infinity
        decoded = decode_ab(ab, self.vibrance, self.cast_removal)
        if hints is not None:
            # Where hints reach, the network's own colours: the card's vibrance and cast removal make up for automatic
            # colour's timidity, which the hints already do (MODEL_CARD.md, "Hints and the calibrated decoding")
            l_small, hints = l_small.float().cpu(), hints.float().cpu()
            decoded = torch.lerp(decoded, ab.clamp(-AB_MAX, AB_MAX), hint_reach(l_small, hints))
            if follow:
                decoded = follow_hints(decoded, l_small, hints)
        ab = decoded
        ab[broken] = math.nan  # finish() turns these into a ModelOutputError for their photo alone
        return ab

    def finish(self, prepared: Prepared, ab_small: torch.Tensor, saturation: float) -> Image.Image:
        """Upsample ab to full size, join it with the full-resolution L and convert to sRGB (stages.finish_image)."""
        return finish_image(prepared, ab_small, saturation)

    def colorize(self, image: ImageInput, render_size: int | None = None, saturation: float = 1.0,
                 temperature: float | None = None, hints: Sequence[Hint | dict] | None = None):
        """Colorize one photo. Returns a PIL image of exactly the input's size (RGBA if it had alpha);
        a numpy array in gives a uint8 numpy array out. `hints`: colour hints such as
        [Hint(120, 80, "#3a6ea5")] or [{"x": 120, "y": 80, "color": "#3a6ea5"}], in the photo's pixels,
        for a model with a hint input (colorem.hints)."""
        return self.colorize_batch([image], render_size, saturation, temperature,
                                   None if hints is None else [hints])[0]

    def colorize_batch(self, images: Sequence[ImageInput], render_size: int | None = None,
                       saturation: float = 1.0, temperature: float | None = None,
                       hints: Sequence[Sequence[Hint | dict]] | None = None) -> list:
        """Colorize several photos with one forward pass; decoding errors raise for the failing one.
        `hints`, when given, holds one list of hints per photo."""
        one_photo = isinstance(images, (str, bytes, os.PathLike, Image.Image)) or getattr(images, "ndim", 4) < 4
        if one_photo or hasattr(images, "read"):
            raise TypeError("colorize_batch takes a list of photos; colorize() takes one")
        images = list(images)
        render_size = self.check_options(render_size, saturation, temperature)
        hints = self.check_hints(hints, len(images)) if hints is not None else None
        prepared = [self.prepare(image, render_size) for image in images]
        if not prepared:
            return []
        hint_input = self.hint_input(hints, prepared, render_size) if hints is not None else None
        ab_small = self.predict_ab(torch.cat([item.l_small for item in prepared]), temperature, hint_input)
        results = []
        for item, ab in zip(prepared, ab_small):
            result = self.finish(item, ab[None], saturation)
            results.append(_like_input(result, images[len(results)]))
        return results

    def colorize_video(self, source: str | os.PathLike, target: str | os.PathLike, progress=None, **options) -> VideoResult:
        """Colorize a video file into `target` (temporary name, then renamed), streaming, with colours kept
        stable over time; `options` are colorem.video.VideoOptions' fields (render_size, saturation,
        temperature, stabilize, ...). Needs PyAV: pip install ".[video]" in a checkout. Returns a VideoResult."""
        return colorize_video(self, source, target, VideoOptions(**options), progress=progress)


def _like_input(result: Image.Image, image: ImageInput):
    return np.asarray(result) if isinstance(image, np.ndarray) else result


def load(name_or_path: str | os.PathLike | None = None, *, device: str | torch.device | None = None,
         precision: str = "auto", backend: str = "auto", onnx_model: str | os.PathLike | None = None,
         embedder_options: dict | None = None, max_pixels: int = DEFAULT_MAX_PIXELS) -> Colorizer:
    """Load weights (packaged name such as "default", or a .safetensors path) into a Colorizer.

    backend="onnxruntime" runs `onnx_model` (an exported or int8-quantized .onnx file; by default the
    .onnx beside the weights) or, failing that, exports the model in memory first (a few seconds).
    """
    model, card = load_weights(name_or_path, embedder_options)
    weights = resolve_weights(name_or_path)
    beside = weights.with_suffix(".onnx")  # written by `colorem export WEIGHTS -o X.onnx`
    if onnx_model is None and backend != "torch" and beside.exists():
        onnx_model = onnx_from(beside, model, weights)
    return Colorizer(model, card, device=device, precision=precision, max_pixels=max_pixels,
                     backend=backend, onnx_model=onnx_model)
