"""The main API: a Colorizer holds one model and colorizes photos of any size.

photo -> L at full resolution -> L resized to the render size -> model -> ab (clamped)
      -> ab upsampled to full size -> joined with the full-resolution L -> RGB
Colour hints (colorem.hints), in the photo's pixels, enter the model beside L at the render size.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from colorem.color import AB_MAX, gray_to_l, join_lab, lab_to_srgb8, rgb_to_l
from colorem.hints import Hint, HintError, as_hints, hint_map
from colorem.imageio import DEFAULT_MAX_PIXELS, ImageInput, Photo, read_image, to_pil
from colorem.runtime import BACKENDS, OnnxBackend, export_onnx, onnxruntime_available
from colorem.weights import ModelCard, load_weights, resolve_weights

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
CHUNK_PIXELS = 1 << 20  # full-resolution colour math runs in slices of about 1 MP to bound memory


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def bf16_is_fast(device: torch.device) -> bool:
    """bf16 pays off on GPUs that support it and on CPUs with AVX512-BF16/AMX (oneDNN's check)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        try:
            return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
        except (AttributeError, RuntimeError):
            return False
    return False


def resolve_precision(precision: str, device: torch.device) -> str:
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, not {precision!r}")
    if precision == "auto":
        return "bf16" if bf16_is_fast(device) else "fp32"
    if precision == "fp16" and device.type != "cuda":
        raise ValueError("fp16 inference is only supported on CUDA; use bf16 or fp32 on CPU")
    return precision


def autocast(device: torch.device, precision: str):
    """The autocast context for a precision ("fp32" runs plain)."""
    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


@dataclass
class Prepared:
    """What finish() needs of a decoded photo (small, so DataLoader workers pass it on cheaply)."""

    l_full: torch.Tensor  # (1, 1, H, W)
    l_small: torch.Tensor  # (1, 1, R, R)
    alpha: np.ndarray | None  # (H, W) float32 in [0, 1], when the photo had transparency


class Colorizer:
    """A model on a device at a precision, with its card. Build with colorem.load() or from_model()."""

    def __init__(self, model: nn.Module, card: ModelCard, device: str | torch.device | None = None,
                 precision: str = "auto", max_pixels: int = DEFAULT_MAX_PIXELS, backend: str = "auto",
                 onnx_model: bytes | str | os.PathLike | None = None):
        self.device = torch.device(device) if device is not None else default_device()
        self.precision = resolve_precision(precision, self.device)
        self.card = card
        self.max_pixels = max_pixels
        self.vibrance = float(card.vibrance)  # the model's calibrated colour strength; saturation=1 means "as calibrated"
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

    def check_hints(self, hints: Sequence[Sequence[Hint | dict]]) -> list[list[Hint]] | None:
        """One list of hints per photo -> Hint lists, checked before any photo is read; None when
        there are none at all (a hint model then runs as the automatic one)."""
        hints = [as_hints(photo_hints) for photo_hints in hints]
        if not any(hints):
            return None
        if not self.accepts_hints:
            if getattr(self.model, "accepts_hints", False):
                raise HintError("the onnxruntime backend does not take colour hints; use backend='torch'")
            raise HintError(f"the model {self.card.name or self.card.architecture!r} takes no colour hints "
                            "(its card's architecture_options has no hints: true)")
        return hints

    def hint_input(self, hints: Sequence[Sequence[Hint]], prepared: Sequence[Prepared], render_size: int) -> torch.Tensor:
        """One list of hints per photo, in its own pixels -> the model's hint input (B, 3, R, R)."""
        return torch.cat([hint_map(photo_hints, (item.l_full.shape[-1], item.l_full.shape[-2]), render_size)
                          for photo_hints, item in zip(hints, prepared, strict=True)])

    # --- the pipeline -------------------------------------------------------------------------
    def prepare(self, image: ImageInput, render_size: int) -> Prepared:
        photo = image if isinstance(image, Photo) else read_image(image, max_pixels=self.max_pixels)
        if photo.gray is not None:  # a one-channel photo: its L comes from a lookup table
            l_full = _chunked_rows(torch.from_numpy(photo.gray)[None, None], gray_to_l)  # (1, 1, H, W)
        else:
            l_full = _chunked_rows(torch.from_numpy(photo.rgb).permute(2, 0, 1)[None], rgb_to_l)
        l_small = F.interpolate(l_full, size=(render_size, render_size), mode="bilinear",
                                align_corners=False, antialias=True)
        return Prepared(l_full, l_small, photo.alpha)

    @torch.inference_mode()
    def predict_ab(self, l_small: torch.Tensor, temperature: float | None = None,
                   hints: torch.Tensor | None = None) -> torch.Tensor:
        """(B, 1, R, R) L in [0, 100] -> (B, 2, R, R) ab in Lab units (float32, CPU); `hints` is the
        model's (B, 3, R, R) hint input (hint_input())."""
        temperature = self.temperature if temperature is None else temperature
        if self._onnx is not None:
            if hints is not None:
                raise HintError("the onnxruntime backend does not take colour hints; use backend='torch'")
            default = getattr(self.model, "temperature", 1.0)
            ab = self._onnx(l_small, default if temperature is None else temperature)
        else:
            l_small = l_small.to(self.device).contiguous(memory_format=torch.channels_last)
            with autocast(self.device, self.precision):
                kwargs = {"temperature": temperature} if temperature is not None else {}
                if hints is not None:
                    kwargs["hints"] = hints.to(self.device)
                ab = self.model(l_small, **kwargs)
        return (ab.float() * self.vibrance).clamp(-AB_MAX, AB_MAX).cpu()

    def finish(self, prepared: Prepared, ab_small: torch.Tensor, saturation: float) -> Image.Image:
        height, width = prepared.l_full.shape[-2:]
        ab_full = F.interpolate((ab_small * saturation).contiguous(), size=(height, width), mode="bilinear",
                                align_corners=False)
        lab = join_lab(prepared.l_full, ab_full.clamp_(-AB_MAX, AB_MAX))
        rgb_uint8 = _chunked_rows(lab, lab_to_srgb8, row_dim=1)  # (1, H, W, 3)
        return to_pil(rgb_uint8[0].numpy(), prepared.alpha)

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
        render_size = _check_options(render_size or self.render_size, saturation)
        hints = self.check_hints(hints) if hints is not None else None
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


def choose_backend(backend: str, device: torch.device, precision: str, have_onnx: bool = False) -> str:
    """auto: ONNX Runtime on a CPU running fp32 when an exported model is at hand and onnxruntime is
    installed (faster than fp32 eager there; see bench/), else eager PyTorch (bf16 where fast)."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, not {backend!r}")
    if backend != "auto":
        if backend == "onnxruntime" and device.type != "cpu":
            raise ValueError("the onnxruntime backend runs on the CPU; use backend='torch' on GPUs")
        if backend == "onnxruntime" and precision != "fp32" and not have_onnx:
            raise ValueError("the onnxruntime backend runs fp32 (or an int8 model you pass); use precision='fp32'")
        return backend
    if device.type == "cpu" and precision == "fp32" and have_onnx and onnxruntime_available():
        return "onnxruntime"
    return "torch"


def _check_options(render_size: int, saturation: float) -> int:
    if not isinstance(render_size, int) or not 16 <= render_size <= 2048:
        raise ValueError(f"render_size must be an integer from 16 to 2048, not {render_size!r}")
    if not (0.0 <= saturation <= 4.0) or saturation != saturation:
        raise ValueError(f"saturation must be between 0 and 4, not {saturation!r}")
    return render_size


def _chunked_rows(image: torch.Tensor, function, row_dim: int = -2) -> torch.Tensor:
    """Apply a per-pixel function to (1, C, H, W) in horizontal slices of about CHUNK_PIXELS, joining
    the results along `row_dim` (the rows of the function's output)."""
    height, width = image.shape[-2:]
    rows = max(1, CHUNK_PIXELS // max(width, 1))
    if rows >= height:
        return function(image)
    return torch.cat([function(image[:, :, top:top + rows]) for top in range(0, height, rows)], dim=row_dim)


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
    if onnx_model is None and resolve_weights(name_or_path).with_suffix(".onnx").exists():
        onnx_model = resolve_weights(name_or_path).with_suffix(".onnx")  # written by `colorem export --format onnx`
    return Colorizer(model, card, device=device, precision=precision, max_pixels=max_pixels,
                     backend=backend, onnx_model=onnx_model)
