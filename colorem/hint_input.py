"""Colour hints at inference: checked hints in a photo's pixels -> the network's hint input at the render size
(hint_map), how near each place is to a hint (hint_reach), and the predicted colours made to follow them
afterwards (follow_hints)."""

from __future__ import annotations

from typing import Sequence

import torch

from colorem.color import AB_MAX, rgb_to_lab
from colorem.hints import Hint, as_hints, check_inside
from colorem.models.hint_spread import HINT_CHANNELS

FOLLOW_REACH = 0.25  # follow_hints: Gaussian width of a hint's reach, as a share of the render size
FOLLOW_LIGHTNESS = 8.0  # follow_hints: Gaussian width in L (0..100) of "as light as the hinted point"
DECODE_REACH = 0.5  # hint_reach: where hints reach, as wide, the network's own colours replace the calibrated decoding
_FOLLOW_CHUNK = 1 << 24  # follow_hints: weights computed for at most this many (point, cell) pairs at once


def hint_map(hints: Sequence[Hint], photo_size: tuple[int, int], render_size: int | tuple[int, int]) -> torch.Tensor:
    """Hints in a photo of (width, height) pixels -> the network's (1, 3, R, R) hint input at the render size.
    Hints not checked yet are checked here (as_hints); those that lie outside the photo are refused."""
    hints = as_hints(hints)
    width, height = photo_size
    out_h, out_w = (render_size, render_size) if isinstance(render_size, int) else render_size
    channels = torch.zeros(1, HINT_CHANNELS, out_h, out_w)
    if not hints:
        return channels
    check_inside(hints, photo_size)
    colours = torch.tensor([hint.rgb() for hint in hints], dtype=torch.float32) / 255.0
    ab = rgb_to_lab(colours.T[None, :, :, None])[0, 1:, :, 0].T  # (N, 2)
    for hint, (a, b) in zip(hints, ab.tolist()):
        x, y = float(hint.x), float(hint.y)
        column, row = min(int(x * out_w / width), out_w - 1), min(int(y * out_h / height), out_h - 1)
        channels[0, :, row, column] = torch.tensor([a / AB_MAX, b / AB_MAX, 1.0])
    return channels


def follow_hints(ab: torch.Tensor, l: torch.Tensor, hints: torch.Tensor, reach: float = FOLLOW_REACH,
                 lightness: float = FOLLOW_LIGHTNESS) -> torch.Tensor:
    """The network's ab (B, 2, R, R) in Lab units, its L (B, 1, R, R) and its hint input (B, 3, R, R) ->
    ab that takes each hint's colour where it was given. What the network left of the difference between
    a hint and its colour there is added back around the hint, fading with distance (a Gaussian of `reach`
    times the render size) and with difference in lightness (a Gaussian of `lightness` in L): a joint
    bilateral spread, so a hint also reaches the parts of its object the network coloured too timidly.
    Where several hints reach, their differences mix by weight. No hints: ab as it is."""
    out = ab.clone()
    for index, (rows, columns), weights in _hint_weights(l, hints, reach, lightness):
        difference = hints[index, :2, rows, columns].T.float() * AB_MAX - ab[index, :, rows, columns].T
        total = torch.zeros(2, *ab.shape[-2:], device=ab.device)
        weight_sum = torch.zeros(ab.shape[-2:], device=ab.device)
        reached = torch.zeros(ab.shape[-2:], device=ab.device)
        for part, weight in weights:
            total += torch.einsum("phw,pc->chw", weight, difference[part])
            weight_sum += weight.sum(0)
            reached = torch.maximum(reached, weight.amax(0))
        out[index] += reached * total / weight_sum.clamp_min(1e-12)
    return out.clamp_(-AB_MAX, AB_MAX)


def hint_reach(l: torch.Tensor, hints: torch.Tensor, reach: float = DECODE_REACH,
               lightness: float = FOLLOW_LIGHTNESS) -> torch.Tensor:
    """L (B, 1, R, R) and the hint input (B, 3, R, R) -> (B, 1, R, R) in [0, 1]: how near each cell is to a hint,
    the largest of the hints' joint bilateral weights there (as follow_hints weighs them); 0 without hints."""
    near = torch.zeros_like(l, dtype=torch.float32)
    for index, _, weights in _hint_weights(l, hints, reach, lightness):
        for _, weight in weights:
            near[index, 0] = torch.maximum(near[index, 0], weight.amax(0))
    return near


def _hint_weights(l: torch.Tensor, hints: torch.Tensor, reach: float, lightness: float):
    """For each photo with hints: (its index, (rows, columns) of its hinted cells, and an iterator of (a slice
    of those cells, their (P, R, R) weights over the grid)): a Gaussian of distance (`reach` times the height)
    times a Gaussian of difference in L (`lightness`), at most _FOLLOW_CHUNK weights at once."""
    height, width = l.shape[-2:]
    rows = torch.arange(height, dtype=torch.float32, device=l.device)[:, None] / height
    columns = torch.arange(width, dtype=torch.float32, device=l.device)[None, :] / height  # one unit: the height
    step = max(1, _FOLLOW_CHUNK // (height * width))
    for index in range(len(l)):
        point_rows, point_columns = hints[index, 2].nonzero(as_tuple=True)
        if len(point_rows) == 0:
            continue
        point_l, frame_l = l[index, 0, point_rows, point_columns].float(), l[index, 0].float()

        def weights(point_rows=point_rows, point_columns=point_columns, point_l=point_l, frame_l=frame_l):
            for start in range(0, len(point_rows), step):
                part = slice(start, start + step)
                distance = ((rows - point_rows[part, None, None] / height).square()
                            + (columns - point_columns[part, None, None] / height).square()) / (2 * reach ** 2)
                yield part, torch.exp(-distance - (frame_l - point_l[part, None, None]).square() / (2 * lightness ** 2))

        yield index, (point_rows, point_columns), weights()
