"""Where and at what precision a network runs, and what running out of memory there becomes: one set of rules for
colorizing and for training."""

from __future__ import annotations

import contextlib
import os

import torch

from colorem.errors import NotEnoughMemoryError, OptionError

PRECISIONS = ("auto", "fp32", "bf16", "fp16")


def pick_device(device: str | torch.device | None = None, local_rank: int | None = None) -> torch.device:
    """None or "auto": CUDA when present, else the CPU. Under torchrun (`local_rank`, or LOCAL_RANK in the
    environment) a CUDA device named without an index is this rank's GPU. A named device must exist here
    (OptionError otherwise)."""
    if device is None or device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise OptionError(f"unknown device {str(device)!r} (use cpu, cuda or cuda:N)") from None
    if local_rank is None and "LOCAL_RANK" in os.environ:
        local_rank = int(os.environ["LOCAL_RANK"])
    if resolved.type == "cuda" and resolved.index is None and local_rank is not None and torch.cuda.is_available():
        resolved = torch.device("cuda", local_rank % max(torch.cuda.device_count(), 1))
    _check_available(resolved)
    return resolved


def _check_available(device: torch.device) -> None:
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise OptionError(f"device {device} asked for, but CUDA is not available on this machine; use cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise OptionError(f"device {device} asked for, but this machine has {torch.cuda.device_count()} CUDA device(s)")
    elif device.type == "mps" and not torch.backends.mps.is_available():
        raise OptionError("device mps asked for, but MPS is not available on this machine; use cpu")


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


def resolve_precision(precision: str, device: torch.device, training: bool = False) -> str:
    """auto: bf16 where it is fast (AVX512-BF16/AMX CPUs, Ampere+ GPUs), else fp32; training on an older CUDA
    GPU takes fp16 instead (with a GradScaler), where it still doubles the speed. fp16 needs CUDA."""
    if precision not in PRECISIONS:
        raise OptionError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
    if precision == "auto":
        if bf16_is_fast(device):
            return "bf16"
        return "fp16" if training and device.type == "cuda" else "fp32"
    if precision == "fp16" and device.type != "cuda":
        raise OptionError(f"fp16 {'training' if training else 'inference'} needs CUDA; use bf16 or fp32 on the CPU")
    return precision


def autocast(device: torch.device, precision: str):
    """The autocast context for a precision ("fp32" runs plain)."""
    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


@contextlib.contextmanager
def enough_memory(name: str, size: tuple[int, int] | None, what: str | None = None):
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
