"""The main API: a Colorizer holds one model and colorizes photos of any size.

photo -> prepare_photo: L at full resolution, and render_l: L resized to the render size
      -> predict_ab: model -> ab (clamped) -> upsample_ab: ab at full size, joined with the full-resolution L
      -> lab_to_srgb8 -> RGB (Colorizer.finish for photos, finish_rgb8 for video frames and evaluate: one
      row-streamed finishing step)
Colour hints (colorem.hints), in the photo's pixels, enter the model beside L at the render size; the
predicted ab then takes each hint's colour where it was given (follow_hints).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import os
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from colorem.color import AB_MAX, gray_to_l, join_lab, lab_to_srgb8, rgb_to_l
from colorem.device import autocast, pick_device, resolve_precision
from colorem.errors import ModelOutputError, NotEnoughMemoryError, OptionError
from colorem.hints import Hint, HintError, as_hints, follow_hints, hint_map
from colorem.imageio import DEFAULT_MAX_PIXELS, ImageInput, Photo, read_image
from colorem.limits import check_options
from colorem.onnx_backend import (BACKENDS, OnnxBackend, export_onnx, onnx_fingerprint, onnxruntime_available,
                                  weights_fingerprint)
from colorem.weights import ModelCard, load_weights, resolve_weights

log = logging.getLogger("colorem")
CHUNK_PIXELS = 1 << 20  # full-resolution colour math runs in slices of about 1 MP to bound memory


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


class Colorizer:
    """A model on a device at a precision, with its card. Build with colorem.load() or from_model()."""

    def __init__(self, model: nn.Module, card: ModelCard, device: str | torch.device | None = None,
                 precision: str = "auto", max_pixels: int = DEFAULT_MAX_PIXELS, backend: str = "auto",
                 onnx_model: bytes | str | os.PathLike | None = None):
        self.device = pick_device(device)
        if backend == "onnxruntime" and precision == "auto":
            precision = "fp32"  # what ONNX Runtime runs
        self.precision = resolve_precision(precision, self.device)
        self.card = card
        self.max_pixels = max_pixels
        self.vibrance = float(card.vibrance)  # the model's calibrated colour strength; saturation=1 means "as calibrated"
        self.cast_removal = float(card.cast_removal)  # the share of each photo's mean colour taken away (sepia casts)
        self.temperature: float | None = None  # classification heads: annealed-mean temperature (None: the model's)
        self.model = model.to(self.device).eval()
        if self.device.type == "cpu" or self.precision != "fp32":
            self.model = self.model.to(memory_format=torch.channels_last)
        self.backend = choose_backend(backend, self.device, self.precision, onnx_model is not None)
        self._onnx = None
        if self.backend == "onnxruntime":
            self._onnx = OnnxBackend(onnx_model if onnx_model is not None else export_onnx(self.model))

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
        photo = image if isinstance(image, Photo) else read_image(image, max_pixels=self.max_pixels)
        return prepare_photo(photo, render_size)

    @torch.inference_mode()
    def predict_ab(self, l_small: torch.Tensor, temperature: float | None = None,
                   hints: torch.Tensor | None = None, follow: bool = True) -> torch.Tensor:
        """(B, 1, R, R) L in [0, 100] -> (B, 2, R, R) ab in Lab units (float32, CPU); `hints` is the
        model's (B, 3, R, R) hint input (hint_input()), and the colours follow it (follow_hints) unless
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
        if self.cast_removal:  # a cast over the whole photo (sepia, say) is its mean colour: take a share of it away
            ab = ab - self.cast_removal * ab.mean(dim=(2, 3), keepdim=True)
        ab = (ab * self.vibrance).clamp_(-AB_MAX, AB_MAX)
        if hints is not None and follow:
            ab = follow_hints(ab, l_small.float().cpu(), hints.float().cpu())
        ab[broken] = math.nan  # finish() turns these into a ModelOutputError for their photo alone
        return ab

    def finish(self, prepared: Prepared, ab_small: torch.Tensor, saturation: float) -> Image.Image:
        """Upsample ab to full size, join it with the full-resolution L and convert to sRGB, in horizontal
        slices of about CHUNK_PIXELS: no full-size float image is ever made, only the uint8 result."""
        if not torch.isfinite(ab_small).all():
            raise ModelOutputError(f"{prepared.name}: the model's colours for this photo are not finite "
                                   "(NaN or infinity); its weights are probably broken")
        height, width = prepared.size
        with _enough_memory(prepared.name, (width, height)):
            image = Image.new("RGB" if prepared.alpha is None else "RGBA", (width, height))
            for top, bottom, pixels in _finished_rows(prepared.l_rows, ab_small, saturation, height, width):
                pixels = pixels.numpy()  # (rows, W, 3) uint8
                if prepared.alpha is not None:
                    alpha = np.clip(prepared.alpha[top:bottom] * 255.0 + 0.5, 0, 255).astype(np.uint8)
                    pixels = np.concatenate([pixels, alpha[..., None]], axis=2)
                image.paste(Image.fromarray(pixels, image.mode), (0, top))
        return image

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

    def colorize_video(self, source: str | os.PathLike, target: str | os.PathLike, progress=None, **options):
        """Colorize a video file into `target` (temporary name, then renamed), streaming, with colours kept
        stable over time; `options` are colorem.video.VideoOptions' fields (render_size, saturation,
        temperature, stabilize, ...). Needs PyAV: pip install ".[video]" in a checkout. Returns a VideoResult."""
        from colorem.video import VideoOptions, colorize_video

        return colorize_video(self, source, target, VideoOptions(**options), progress=progress)


def prepare_photo(photo: Photo, render_size: int) -> Prepared:
    """A decoded photo -> its full-resolution L (from its pixels, a slice at a time) and render_l of it."""
    with _enough_memory(photo.name, photo.size):
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


def upsample_ab(ab_small: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Upsample: (B, 2, R, R) predicted ab -> (B, 2, H, W) at the photo's (height, width), clamped: the
    values finish_rgb8 and Colorizer.finish join with L (they take them a slice of rows at a time)."""
    return _BilinearRows(ab_small.contiguous(), *size)(0, size[0]).clamp_(-AB_MAX, AB_MAX)


def finish_rgb8(l_full: torch.Tensor, ab_small: torch.Tensor, saturation: float = 1.0) -> torch.Tensor:
    """Finish: (B, 1, H, W) full-resolution L and (B, 2, R, R) predicted ab -> (B, H, W, 3) uint8 sRGB.
    ab is scaled by `saturation`, upsampled to full size and joined with the full-resolution L; colours
    outside sRGB lose chroma, not lightness (color.lab_to_srgb8). Frame by frame, in slices of ~1 MP,
    exactly as Colorizer.finish does for a photo."""
    height, width = l_full.shape[-2:]
    out = torch.empty(len(l_full), height, width, 3, dtype=torch.uint8)
    for index, (l_frame, ab_frame) in enumerate(zip(l_full.split(1), ab_small.split(1))):
        rows = lambda top, bottom, l_frame=l_frame: l_frame[:, :, top:bottom]
        for top, bottom, pixels in _finished_rows(rows, ab_frame, saturation, height, width):
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



def choose_backend(backend: str, device: torch.device, precision: str, have_onnx: bool = False) -> str:
    """auto: ONNX Runtime on a CPU running fp32 when an exported model is at hand and onnxruntime is
    installed (faster than fp32 eager there; see bench/), else eager PyTorch (bf16 where fast)."""
    if backend not in BACKENDS:
        raise OptionError(f"backend must be one of {', '.join(BACKENDS)}, not {backend!r}")
    if backend != "auto":
        if backend == "onnxruntime" and device.type != "cpu":
            raise OptionError("the onnxruntime backend runs on the CPU; use the torch backend on GPUs")
        if backend == "onnxruntime" and precision != "fp32" and not have_onnx:
            raise OptionError(f"the onnxruntime backend runs fp32 (or an int8 model you pass), not {precision}; "
                              "use precision fp32")
        return backend
    if device.type == "cpu" and precision == "fp32" and have_onnx and onnxruntime_available():
        return "onnxruntime"
    return "torch"


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


@contextlib.contextmanager
def _enough_memory(name: str, size: tuple[int, int] | None, what: str | None = None):
    """A failed allocation while working on one photo (or one batch) becomes its NotEnoughMemoryError."""
    try:
        yield
    except NotEnoughMemoryError:
        raise
    except (MemoryError, RuntimeError) as error:  # torch's CPU and CUDA allocators raise RuntimeErrors
        message = str(error).lower()
        if isinstance(error, MemoryError) or "can't allocate memory" in message or "out of memory" in message:
            raise NotEnoughMemoryError(name, size, what) from None
        raise


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
    beside = resolve_weights(name_or_path).with_suffix(".onnx")  # written by `colorem export WEIGHTS -o X.onnx`
    if onnx_model is None and backend != "torch" and beside.exists():
        if onnx_fingerprint(beside) == weights_fingerprint(model):
            onnx_model = beside
        else:  # exported from other weights (these were replaced since), or not by colorem: never run in their place
            log.warning(f"colorem: warning: {beside} was not exported from these weights; not used (rebuild it: "
                        f"colorem export {resolve_weights(name_or_path)} -o {beside})")
    return Colorizer(model, card, device=device, precision=precision, max_pixels=max_pixels,
                     backend=backend, onnx_model=onnx_model)
