"""Colour math, pure and batched: sRGB (D65) <-> CIELAB, split/join of L and ab, ab quantization.

Units everywhere: RGB in [0, 1], L in [0, 100], a and b in Lab units (roughly [-128, 127]).
"""

from __future__ import annotations

import functools
import math

import kornia.color
import numpy as np
import torch

AB_MAX = 128.0  # |a|, |b| bound used to scale the network's tanh output
D65_WHITE = (0.95047, 1.0, 1.08883)  # XYZ of the reference white, as kornia uses
GAMUT_TOLERANCE = 1e-4  # linear RGB this far outside [0, 1] counts as out of gamut
GAMUT_BLOCK = 1 << 16  # out-of-gamut pixels mapped at once
GAMUT_TABLE_L, GAMUT_TABLE_HUES = 256, 1024  # the gamut boundary table's steps of lightness and of hue
GAMUT_EDGE = 1e-5  # a colour whose linear RGB comes this close to 0 or 1 lies on the gamut's boundary
GRAY_L_TABLE_SIZE = 1 << 16  # gray steps of 1.5e-5 for gray_to_l
SRGB8_TABLE_SIZE = 1 << 16  # linear steps of 1.5e-5: the uint8 table is exact to within one level of 255


def rgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) sRGB in [0, 1] -> (B, 3, H, W) Lab (L in [0, 100])."""
    return kornia.color.rgb_to_lab(rgb.clamp(0.0, 1.0))


def lab_to_rgb(lab: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) Lab -> (B, 3, H, W) sRGB clipped to [0, 1]."""
    return kornia.color.lab_to_rgb(lab, clip=True)


def srgb_to_linear(x: torch.Tensor) -> torch.Tensor:
    """sRGB values in [0, 1] -> linear light: the IEC 61966-2-1 curve of kornia's rgb_to_linear_rgb, for
    any shape (kornia's takes 3 channels only; gray photos and lookup tables have one)."""
    x = x.clamp(0.0, 1.0)
    return torch.where(x > 0.04045, ((x + 0.055) / 1.055).pow(2.4), x / 12.92)


def linear_to_srgb(x: torch.Tensor) -> torch.Tensor:
    """Linear light in [0, 1] -> sRGB values in [0, 1] (the inverse of srgb_to_linear)."""
    x = x.clamp(0.0, 1.0)
    return torch.where(x > 0.0031308, x.clamp_min(0.0031308).pow(1.0 / 2.4).mul_(1.055).sub_(0.055), x * 12.92)


def lab_to_linear_rgb(lab: torch.Tensor) -> torch.Tensor:
    """(..., 3, H, W) Lab (D65) -> linear-light RGB, unclipped: out-of-gamut colours fall outside [0, 1]."""
    l, a, b = lab.unbind(dim=-3)
    f = torch.empty(lab.shape, dtype=lab.dtype, device=lab.device)  # f(X / Xn), f(Y / Yn), f(Z / Zn)
    fx, fy, fz = f.unbind(dim=-3)
    torch.add(l, 16.0, out=fy).div_(116.0)
    torch.add(fy, a, alpha=1 / 500.0, out=fx)
    torch.sub(fy, b, alpha=1 / 200.0, out=fz)
    xyz = _f_inverse(f)  # XYZ / white
    # kornia's XYZ -> linear RGB matrix with the white point folded in: one matmul over the channels
    return (_xyz_to_linear_matrix(xyz.dtype, xyz.device) @ xyz.flatten(-2)).unflatten(-1, xyz.shape[-2:])


def _f_inverse(f: torch.Tensor) -> torch.Tensor:
    """CIELAB's f^-1: f(X / Xn) -> X / Xn, a cube above 6/29 and its tangent line below, as the sum of the two
    parts (no torch.where: a few passes over the pixels, not both branches and a select)."""
    edge = 6.0 / 29.0
    return f.clamp_min(edge).pow_(3).add_(f.clamp_max(edge).sub_(edge).mul_(3.0 * edge * edge))


@functools.lru_cache(maxsize=8)
def _xyz_to_linear_matrix(dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """(3, 3): kornia.color.xyz_to_rgb applied to the D65 white's axes, so that M @ (XYZ / white) = RGB."""
    axes = torch.diag(torch.tensor(D65_WHITE, dtype=torch.float64))[:, :, None, None]  # (3 axes, 3, 1, 1)
    return kornia.color.xyz_to_rgb(axes)[:, :, 0, 0].T.to(dtype=dtype, device=device)


def lab_to_rgb_keep_l(lab: torch.Tensor) -> torch.Tensor:
    """Lab -> sRGB like lab_to_rgb, but out-of-gamut colours lose chroma instead of lightness.

    Plain clipping of an out-of-gamut pixel changes its L (dark pixels brighten, highlights darken or
    tint); here a/b of those pixels alone are scaled towards gray, to the largest scale that fits,
    so the result keeps the requested lightness and as much chroma as the sRGB gamut holds.
    """
    return linear_to_srgb(lab_to_linear_rgb_keep_l(lab))


def lab_to_srgb8(lab: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) Lab -> (B, H, W, 3) uint8 sRGB, as lab_to_rgb_keep_l rounded, through a lookup table
    (the photo-writing path: no float sRGB image in between)."""
    linear = lab_to_linear_rgb_keep_l(lab)  # looked up channels first, as it lies in memory, then interleaved
    return _look_up(_srgb8_table(linear.device), linear).movedim(-3, -1).contiguous()  # (B, H, W, 3)


def _look_up(table: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """The entries of a 1-D table sampled evenly over [0, 1] nearest to `values` (in [0, 1]); on the CPU
    numpy's take gathers 3x faster than torch's advanced indexing."""
    index = values.mul(len(table) - 1).add_(0.5).to(torch.int32)
    if index.device.type == "cpu":
        return torch.from_numpy(np.take(table.numpy(), index.numpy()))
    return table[index]



@functools.lru_cache(maxsize=4)
def _srgb8_table(device: torch.device) -> torch.Tensor:
    linear = torch.linspace(0.0, 1.0, SRGB8_TABLE_SIZE, dtype=torch.float64)
    return linear_to_srgb(linear).mul(255.0).add(0.5).floor().to(torch.uint8).to(device)


def lab_to_linear_rgb_keep_l(lab: torch.Tensor) -> torch.Tensor:
    """Lab -> linear RGB in [0, 1] where out-of-gamut pixels have their a/b scaled towards gray, to the largest
    chroma sRGB holds at their lightness and hue, those pixels only, GAMUT_BLOCK of them at a time to bound
    memory: the chroma read from a table of the gamut's boundary (chroma_limit), then searched exactly
    (_largest_fitting_scale) for the few pixels where the table misses the boundary, at yellow's sharp cusp."""
    linear = lab_to_linear_rgb(lab)
    outside = _outside_gamut(linear)  # (..., H, W)
    where = outside.flatten().nonzero().squeeze(1)  # (N,) indices into the pixels of all images
    if len(where):
        planes = _pixel_planes(linear)
        pixels = _pixel_planes(lab).index_select(1, where).T  # (N, 3)
        planes.index_copy_(1, where, torch.cat([_fit_chroma(block) for block in pixels.split(GAMUT_BLOCK)]).T)
        if planes.data_ptr() != linear.data_ptr():  # a copy (a batch): put it back
            linear.copy_(planes.unflatten(1, outside.shape).movedim(0, -3))
    return linear.clamp_(0.0, 1.0)


def _outside_gamut(linear: torch.Tensor) -> torch.Tensor:
    """(..., 3, H, W) linear RGB -> (..., H, W) bool: some channel lies more than GAMUT_TOLERANCE outside [0, 1].
    The three planes' distance from 0.5 and their maximum plane by plane: a quarter of the time aminmax over
    the channel dimension takes, whose channels lie a plane apart in memory."""
    red, green, blue = linear.sub(0.5).abs_().unbind(dim=-3)
    farthest = torch.maximum(red, green)
    return torch.maximum(farthest, blue, out=farthest).gt(0.5 + GAMUT_TOLERANCE)


def _pixel_planes(image: torch.Tensor) -> torch.Tensor:
    """(..., 3, H, W) -> (3, pixels): a view of one image, a copy of a batch (whose images' planes interleave)."""
    return image.movedim(-3, 0).flatten(1)


def _fit_chroma(pixels: torch.Tensor, steps: int = 9) -> torch.Tensor:
    """(N, 3) Lab pixels that do not fit sRGB -> (N, 3) linear RGB of each with its a/b scaled to the gamut's
    boundary at its lightness and hue: the table's chroma where it lands on the boundary (a channel within
    GAMUT_EDGE of 0 or 1, none outside), else the bisection's (to 1/2**steps of the chroma)."""
    l, a, b = pixels.T
    scales = (chroma_limit(l, torch.atan2(b, a)) / torch.hypot(a, b).clamp_min_(1e-6)).clamp_max_(1.0)[:, None]
    linear = lab_to_linear_rgb(_scale_chroma(pixels, scales))[:, :, 0]  # (3, N)
    low, high = linear.aminmax(dim=0)
    missed = ((low > GAMUT_EDGE) & (high < 1 - GAMUT_EDGE)) | (low < -GAMUT_TOLERANCE) | (high > 1 + GAMUT_TOLERANCE)
    if missed.any():
        again = pixels[missed]
        linear[:, missed] = lab_to_linear_rgb(_scale_chroma(again, _largest_fitting_scale(again, steps)))[:, :, 0]
    return linear.T


def chroma_limit(l: torch.Tensor, hue: torch.Tensor) -> torch.Tensor:
    """Lightness (N,) in [0, 100] and hue angle (N,) in radians -> (N,) the largest chroma (Lab units) that sRGB
    holds there: the gamut boundary table (_chroma_limit_table) interpolated bilinearly. Near yellow's sharp cusp
    (L 91-98) that can miss the boundary by tens of units; _fit_chroma searches those pixels exactly."""
    table = _chroma_limit_table(l.device)
    steps_l, steps_hue = table.shape[0] - 1, table.shape[1] - 1
    row = l.clamp(0.0, 100.0).mul_(steps_l / 100.0)
    column = torch.remainder(hue, 2 * math.pi).mul_(steps_hue / (2 * math.pi))
    top, left = row.floor().clamp_max_(steps_l - 1), column.floor().clamp_max_(steps_hue - 1)
    down, right = row.sub_(top), column.sub_(left)  # the weights of the next row and of the next column
    flat, width = table.flatten(), steps_hue + 1
    index = top.long() * width + left.long()  # each pixel's corner above and to the left

    def corner(offset: int) -> torch.Tensor:  # index_select: a quarter of the time of flat[index + offset]
        return flat.index_select(0, index + offset)

    near = torch.lerp(corner(0), corner(1), right)
    far = torch.lerp(corner(width), corner(width + 1), right)
    return torch.lerp(near, far, down)


@functools.lru_cache(maxsize=4)
def _chroma_limit_table(device: torch.device) -> torch.Tensor:
    """(GAMUT_TABLE_L + 1, GAMUT_TABLE_HUES + 1) float32: the largest chroma sRGB holds at L = 0, 100 / GAMUT_TABLE_L,
    ..., 100 and at hues 0, 2 pi / GAMUT_TABLE_HUES, ..., 2 pi, by bisection in float64 to 2**-30 of 200 (more than
    the most chroma sRGB holds, about 134); built once, in a few tenths of a second."""
    l = torch.linspace(0.0, 100.0, GAMUT_TABLE_L + 1, dtype=torch.float64)
    hue = torch.linspace(0.0, 2 * math.pi, GAMUT_TABLE_HUES + 1, dtype=torch.float64)
    l, hue = torch.meshgrid(l, hue, indexing="ij")
    pixels = torch.stack([l.flatten(), 200.0 * hue.cos().flatten(), 200.0 * hue.sin().flatten()], dim=1)
    return (200.0 * _largest_fitting_scale(pixels, 30)).reshape(l.shape).float().to(device)


def _largest_fitting_scale(pixels: torch.Tensor, steps: int) -> torch.Tensor:
    """(N, 3) Lab pixels that do not fit sRGB -> (N, 1): the largest a/b scale in [0, 1), to 1/2**steps, that
    fits, by bisection (a pixel's lightness, hence its Y, stays: each step computes X and Z alone)."""
    l, a, b = pixels.T  # (N,) each
    fy = (l + 16.0) / 116.0
    matrix = _xyz_to_linear_matrix(pixels.dtype, pixels.device)
    from_y = matrix[:, 1:2] * _f_inverse(fy)  # (3, N): Y's part of linear RGB, the same at every scale
    a, b = a / 500.0, b / 200.0
    low = torch.zeros_like(l)  # gray always fits
    step = 0.5
    for _ in range(steps):
        scale = low + step
        rgb = from_y + matrix[:, 0:1] * _f_inverse(fy + scale * a) + matrix[:, 2:3] * _f_inverse(fy - scale * b)
        inside = ((rgb >= 0.0) & (rgb <= 1.0)).all(dim=0)  # strict: dark colours are sensitive
        low = torch.where(inside, scale, low)
        step /= 2
    return low[:, None]


def _scale_chroma(pixels: torch.Tensor, scales: torch.Tensor) -> torch.Tensor:
    """(N, 3) Lab pixels, (N, K) scales -> (3, N, K) Lab with a/b times each scale (an image)."""
    l, a, b = pixels.T[:, :, None]  # (N, 1) each
    return torch.stack([l.expand_as(scales), a * scales, b * scales])


def rgb_to_l(rgb: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) sRGB -> (B, 1, H, W) lightness L in [0, 100]; cheaper than a full Lab conversion.
    A (B, 1, H, W) gray image (R = G = B) is taken as is: a third of the work."""
    linear = srgb_to_linear(rgb)
    # Y row of the sRGB -> XYZ (D65) matrix (its rows sum to Yn = 1, so gray needs no weights).
    y = linear if rgb.shape[-3] == 1 else 0.212671 * linear[:, 0:1] + 0.715160 * linear[:, 1:2] + 0.072169 * linear[:, 2:3]
    threshold = 0.008856
    f = torch.where(y > threshold, y.clamp_min(threshold).pow(1.0 / 3.0), 7.787 * y + 4.0 / 29.0)
    return 116.0 * f - 16.0


def gray_to_l(gray: torch.Tensor) -> torch.Tensor:
    """(B, 1, H, W) gray sRGB in [0, 1] -> L, as rgb_to_l, through a 65,536-entry lookup table: 4 passes over
    the photo instead of 15. The nearest entry is within 0.001 of the exact L (measured; a test checks it)."""
    return _look_up(_gray_l_table(gray.device), gray.clamp(0.0, 1.0))


@functools.lru_cache(maxsize=4)
def _gray_l_table(device: torch.device) -> torch.Tensor:
    gray = torch.linspace(0.0, 1.0, GRAY_L_TABLE_SIZE, dtype=torch.float64)[None, None, None]
    return rgb_to_l(gray).flatten().float().to(device)


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
    # On the CPU even under a `torch.device("meta")` context: colorem.weights builds a network there to
    # check a weights file's shapes before allocating anything, and the bins decide one of those shapes.
    grid = torch.arange(-half, half + 1, dtype=torch.float64, device="cpu") * step
    a, b = torch.meshgrid(grid, grid, indexing="ij")
    ab = torch.stack([a.flatten(), b.flatten()], dim=1)  # (N, 2)
    keep = torch.zeros(len(ab), dtype=torch.bool, device="cpu")
    for l_value in l_values:
        lab = torch.cat([torch.full((len(ab), 1), l_value, dtype=torch.float64, device="cpu"), ab], dim=1)
        rgb = kornia.color.lab_to_rgb(lab.T[None, :, :, None], clip=False)[0, :, :, 0].T
        keep |= ((rgb >= -1e-6) & (rgb <= 1 + 1e-6)).all(dim=1)
    return ab[keep].float()
