"""How a loaded model runs: on which device, at which precision, in which memory format, and by which backend
(eager PyTorch, or ONNX Runtime for an exported model), chosen once when a Colorizer is made."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from colorem.device import pick_device, resolve_precision
from colorem.errors import OptionError
from colorem.onnx_backend import (BACKENDS, OnnxBackend, export_onnx, onnx_fingerprint, onnxruntime_available,
                                  weights_fingerprint)

log = logging.getLogger("colorem")


@dataclass(frozen=True)
class Runtime:
    model: nn.Module  # on its device, in eval mode (channels_last where that is faster)
    device: torch.device
    precision: str  # fp32 | bf16 | fp16
    backend: str  # torch | onnxruntime
    onnx: OnnxBackend | None  # the ONNX Runtime session, for backend onnxruntime
    parameters: int  # the trained network's, as its weights file holds them (for_inference may fold some away)


def start_runtime(model: nn.Module, device: str | torch.device | None = None, precision: str = "auto",
                  backend: str = "auto", onnx_model: bytes | str | os.PathLike | None = None) -> Runtime:
    """The model placed for inference: its device (pick_device), precision (resolve_precision), memory format
    and backend (choose_backend; ONNX Runtime runs `onnx_model`, or the model exported in memory)."""
    device = pick_device(device)
    if backend == "onnxruntime" and precision == "auto":
        precision = "fp32"  # what ONNX Runtime runs
    precision = resolve_precision(precision, device)
    model = model.to(device).eval()
    parameters = sum(parameter.numel() for parameter in model.parameters())
    if hasattr(model, "for_inference"):  # the model contract (colorem.models.registry.ColorNet)
        model = model.for_inference(precision)
    if device.type == "cpu" or precision != "fp32":
        model = model.to(memory_format=torch.channels_last)
    backend = choose_backend(backend, device, precision, onnx_model is not None)
    onnx = None
    if backend == "onnxruntime":
        onnx = OnnxBackend(onnx_model if onnx_model is not None else export_onnx(model))
    return Runtime(model, device, precision, backend, onnx, parameters)


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


def onnx_from(path: Path, model: nn.Module, weights: Path) -> Path | None:
    """An .onnx file (the one beside the `weights` file) when it was exported from these weights; one exported
    from other weights (these were replaced since), or not by colorem, is never run in their place (a warning
    says so, with the command that rebuilds it)."""
    if onnx_fingerprint(path) == weights_fingerprint(model):
        return path
    log.warning(f"colorem: warning: {path} was not exported from these weights; not used (rebuild it: "
                f"colorem export {weights} -o {path})")
    return None
