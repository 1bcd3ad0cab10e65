"""What a colorem server is configured with: address, model, limits and concurrency."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

    from colorem.colorize import Colorizer


def packaged_samples() -> "Traversable":
    """The sample photos shipped inside the package (grayscale inputs; colour originals in originals/)."""
    return resources.files("colorem") / "samples"


def default_concurrency() -> int:
    """How many photos are colorized at once: one slot per two cores, at least two. Two slots let one
    photo be decoded, converted and encoded while another is in the network (measured on 2 cores:
    about 1.3x the throughput of one slot); more slots than that mostly add memory, since each job
    already uses every core through torch's intra-op threads."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(2, min(8, cores // 2))


@dataclass
class Settings:
    """Everything `create_app` needs. Pass `colorizer` to serve an already-built model (tests, embedding)."""

    host: str = "127.0.0.1"
    port: int = 8000
    model: str | os.PathLike | None = "default"  # packaged weights name or a .safetensors path
    device: str | None = None
    precision: str = "auto"
    max_upload_mb: float = 20.0  # request bodies above this are refused while they are being read
    max_pixels: int = 25_000_000  # 25 MP: a 6000x4000 camera photo; bigger images get 413
    max_render_size: int = 1024  # the network's input side; cost grows with its square
    concurrency: int = field(default_factory=default_concurrency)
    max_waiting: int | None = None  # photos queued for a slot before 503; default 8 per slot
    upload_timeout: float = 60.0  # seconds for a whole upload body to arrive (20 MB needs 2.8 Mbit/s), else 408
    max_receiving: int = 64  # uploads arriving at once, before 503; each holds at most 1 MB in memory (Starlette
    # spools larger bodies to a temporary file), and none of them a slot or a place in the queue
    samples_dir: "Traversable | Path" = field(default_factory=packaged_samples)
    colorizer: "Colorizer | None" = None
    warmup: bool = True  # run one small photo through the model at startup so the first user waits less

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, not {self.concurrency}")
        if not 0 < self.max_upload_mb < math.inf:
            raise ValueError(f"max_upload_mb must be a positive number, not {self.max_upload_mb}")
        if self.max_pixels < 1:
            raise ValueError(f"max_pixels must be positive, not {self.max_pixels}")
        if not self.upload_timeout > 0:
            raise ValueError(f"upload_timeout must be positive, not {self.upload_timeout}")
        if self.max_receiving < 1:
            raise ValueError(f"max_receiving must be at least 1, not {self.max_receiving}")
        if self.max_waiting is None:
            self.max_waiting = 8 * self.concurrency

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)
