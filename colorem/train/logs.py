"""What a training run reports: metrics.jsonl and TensorBoard scalars, the window of steps a log line
averages, and the progress bar."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from colorem.errors import install_hint
from colorem.train import distributed
from colorem.train.distributed import DistributedEnv

log = logging.getLogger("colorem.train")


@dataclass
class LogWindow:
    """The steps since the last log line: their loss parts and images, and when the window opened."""

    images: int = 0
    losses: list[dict[str, torch.Tensor]] = field(default_factory=list)
    start: float = field(default_factory=time.perf_counter)

    def close(self, env: DistributedEnv) -> tuple[dict[str, float], float]:
        """(each loss part's mean over the window and the ranks, images a second over all ranks); then
        the window starts afresh."""
        elapsed = time.perf_counter() - self.start
        means = {key: distributed.mean_across_ranks(env, float(torch.stack([p[key] for p in self.losses]).mean()))
                 for key in self.losses[0]}
        images_per_s = self.images * env.world_size / max(elapsed, 1e-9)
        self.images, self.losses, self.start = 0, [], time.perf_counter()
        return means, images_per_s


class MetricsLog:
    """metrics.jsonl (one JSON object per line) and TensorBoard scalars when tensorboard is installed."""

    def __init__(self, run_dir: Path, step: int, tensorboard: bool):
        self.path = run_dir / "metrics.jsonl"
        if self.path.is_file():  # after a crash, drop lines newer than the checkpoint resumed from
            lines = [line for line in self.path.read_text().splitlines() if line.strip()]
            kept = [line for line in lines if _step_of(line) <= step]
            self.path.write_text("".join(line + "\n" for line in kept))
        self.stream = open(self.path, "a", encoding="utf-8")
        self.writer = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.writer = SummaryWriter(str(run_dir / "tensorboard"), purge_step=step + 1 if step else None)
            except ImportError:
                log.info("tensorboard is not installed: %s for TensorBoard logs", install_hint("train"))

    def write(self, record: dict) -> None:
        self.stream.write(json.dumps({"time": round(time.time(), 3), **record}) + "\n")
        self.stream.flush()
        if self.writer is not None:
            for key, value in record.items():
                if key != "step" and isinstance(value, (int, float)):
                    self.writer.add_scalar(key, value, record["step"])

    def close(self) -> None:
        self.stream.close()
        if self.writer is not None:
            self.writer.close()


def _step_of(line: str) -> int:
    try:
        return int(json.loads(line).get("step", 0))
    except (ValueError, AttributeError):
        return 0


def progress_bar(total: int, initial: int, enabled: bool):
    """A tqdm bar of steps, or one that shows nothing."""
    if not enabled:
        return _NoBar()
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, unit="step", dynamic_ncols=True, smoothing=0.1)


class _NoBar:
    def update(self, n: int = 1) -> None: ...
    def set_postfix(self, **kwargs) -> None: ...
    def close(self) -> None: ...
