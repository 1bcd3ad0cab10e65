"""Simulated colour hints: true colours revealed at random points, as training (and `colorem evaluate --hints N`)
shows a hint model what a user would give it."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from colorem.color import AB_MAX
from colorem.models.hint_spread import HINT_CHANNELS


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
