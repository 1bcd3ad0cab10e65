"""Colour math, pure and batched: sRGB (D65) <-> CIELAB, split/join of L and ab, ab quantization.

Units everywhere: RGB in [0, 1], L in [0, 100], a and b in Lab units (roughly [-128, 127]).
"""

from __future__ import annotations

import kornia.color
import torch

AB_MAX = 128.0  # |a|, |b| bound used to scale the network's tanh output


def rgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) sRGB in [0, 1] -> (B, 3, H, W) Lab (L in [0, 100])."""
    return kornia.color.rgb_to_lab(rgb.clamp(0.0, 1.0))


def lab_to_rgb(lab: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) Lab -> (B, 3, H, W) sRGB clipped to [0, 1]."""
    return kornia.color.lab_to_rgb(lab, clip=True)


def lab_to_rgb_keep_l(lab: torch.Tensor, steps: int = 8) -> torch.Tensor:
    """Lab -> sRGB like lab_to_rgb, but out-of-gamut colours lose chroma instead of lightness.

    Plain clipping of an out-of-gamut pixel changes its L (dark pixels brighten, highlights darken or
    tint); here a/b of those pixels are scaled towards gray (geometrically, `steps` times at most)
    until the colour fits, so the result keeps the requested lightness.
    """
    rgb = kornia.color.lab_to_rgb(lab, clip=False)
    outside = ((rgb < -1e-4) | (rgb > 1 + 1e-4)).any(dim=1)  # (B, H, W)
    if not outside.any():
        return rgb
    pixels = lab.permute(0, 2, 3, 1)[outside]  # (N, 3)
    scale = torch.ones(len(pixels), 1, dtype=lab.dtype, device=lab.device)
    for _ in range(steps):
        candidate = torch.cat([pixels[:, :1], pixels[:, 1:] * scale], dim=1)
        fixed = kornia.color.lab_to_rgb(candidate.T[None, :, :, None], clip=False)[0, :, :, 0].T  # (N, 3)
        bad = ((fixed < -1e-4) | (fixed > 1 + 1e-4)).any(dim=1, keepdim=True)
        if not bad.any():
            break
        scale = torch.where(bad, scale * 0.7, scale)
    rgb = rgb.permute(0, 2, 3, 1).clone()
    rgb[outside] = fixed
    return rgb.permute(0, 3, 1, 2).clamp(0.0, 1.0)


def rgb_to_l(rgb: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) sRGB -> (B, 1, H, W) lightness L in [0, 100]; cheaper than a full Lab conversion."""
    linear = kornia.color.rgb_to_linear_rgb(rgb.clamp(0.0, 1.0))
    # Y row of the sRGB -> XYZ (D65) matrix; Yn = 1.
    y = 0.212671 * linear[:, 0:1] + 0.715160 * linear[:, 1:2] + 0.072169 * linear[:, 2:3]
    threshold = 0.008856
    f = torch.where(y > threshold, y.clamp_min(threshold).pow(1.0 / 3.0), 7.787 * y + 4.0 / 29.0)
    return 116.0 * f - 16.0


def split_lab(lab: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, 3, H, W) Lab -> L (B, 1, H, W), ab (B, 2, H, W)."""
    return lab[:, :1], lab[:, 1:]


def join_lab(l: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
    """L (B, 1, H, W) and ab (B, 2, H, W) -> Lab (B, 3, H, W)."""
    return torch.cat([l, ab.to(l.dtype)], dim=1)


def gray_to_rgb(l: torch.Tensor) -> torch.Tensor:
    """(B, 1, H, W) L -> the neutral gray sRGB image of that lightness, (B, 3, H, W)."""
    return lab_to_rgb(join_lab(l, torch.zeros_like(l).expand(-1, 2, -1, -1)))


def ab_bins(step: float = 10.0, l_values: tuple[float, ...] = tuple(range(1, 100, 2))) -> torch.Tensor:
    """Centres of a regular ab grid (spacing `step`) that fall inside the sRGB gamut.

    A bin is kept when its colour is representable in sRGB at one or more of the given lightness
    values (Zhang et al., ECCV 2016 quantize ab the same way). Returns (Q, 2) in Lab units.
    """
    half = int(110 // step)
    grid = torch.arange(-half, half + 1, dtype=torch.float64) * step
    a, b = torch.meshgrid(grid, grid, indexing="ij")
    ab = torch.stack([a.flatten(), b.flatten()], dim=1)  # (N, 2)
    keep = torch.zeros(len(ab), dtype=torch.bool)
    for l_value in l_values:
        lab = torch.cat([torch.full((len(ab), 1), l_value, dtype=torch.float64), ab], dim=1)
        rgb = kornia.color.lab_to_rgb(lab.T[None, :, :, None], clip=False)[0, :, :, 0].T
        keep |= ((rgb >= -1e-6) & (rgb <= 1 + 1e-6)).all(dim=1)
    return ab[keep].float()
