"""The network's part of colour hints: the hint input's channels, and the hints spread over a coarser grid
(the dense signal a hint model's fusion layer and decoder take in)."""

from __future__ import annotations

import math

import kornia.filters
import torch
import torch.nn.functional as F

HINT_CHANNELS = 3  # a / AB_MAX, b / AB_MAX, mask (Zhang et al., SIGGRAPH 2017)
SPREAD_SIGMAS = (1.5, 4.0, 12.0)  # Gaussian widths, in cells of the grid the hints are spread over
SPREAD_CHANNELS = 3 * len(SPREAD_SIGMAS)


def spread_hints(hints: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """The hint input (B, 3, H, W) -> its colours spread over a coarser (h, w) grid, (B, 9, h, w): for
    each width in SPREAD_SIGMAS, the hints' mean ab weighted by distance, times a confidence (1 on a
    point hint, falling as a Gaussian of the distance to the hints), and the confidence. A sparse point
    becomes a dense signal the network learns from fast and can follow along edges."""
    height, width = hints.shape[-2:]
    mask = hints[:, 2:3].float()
    mass = torch.cat([hints[:, :2].float() * mask, mask], dim=1)
    mass = F.adaptive_avg_pool2d(mass, size) * (height * width / (size[0] * size[1]))  # a pixel's hint: 1
    channels = []
    for sigma in SPREAD_SIGMAS:
        side = 2 * math.ceil(3 * sigma) + 1
        kernel = kornia.filters.get_gaussian_kernel1d(side, sigma, device=mass.device, dtype=mass.dtype)  # (1, side)
        blurred = kornia.filters.filter2d_separable(mass, kernel, kernel, border_type="constant")
        blurred = blurred / kernel.max().square()  # peak 1 under a point hint
        confidence = blurred[:, 2:3].clamp(max=1.0)
        ab = blurred[:, :2] / blurred[:, 2:3].clamp_min(1e-6)
        channels += [ab * confidence, confidence]
    return torch.cat(channels, dim=1).to(hints.dtype)
