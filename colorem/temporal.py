"""Colours that stay put over time: a per-pixel temporal filter of the predicted ab at render size, a
scene-cut detector that resets it, and the flicker metric that measures it. Pure torch, no video I/O.

Per-frame colorization flickers because the network's ab for a wall that did not change moves a little
from frame to frame. The filter keeps a running ab per render-size pixel and blends each new prediction
into it, strongly where L did not change since the previous frame and not at all where it did (motion,
lighting), so moving things keep their per-frame colour and static things stop flickering. A pixel that
stays still keeps a longer memory (the mean of its colours since it last moved), and grain-sized changes
of L count as still; a slow change of L (a fade) opens the gate against the L that memory was seen with,
and a memory whose frames' L histogram has drifted as far from its first frame's as a cut's would (a
cross-dissolve) starts afresh.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from colorem.errors import OptionError

FLICKER_L_STEP = 2.0  # pixels whose L changes less than this between two frames count towards flicker


@dataclass(frozen=True)
class StabilizeOptions:
    """How much of the past a pixel keeps, and when the past stops counting."""

    # weight of the running ab on a pixel whose L did not change (0 = per frame). 0.9 until default model v10, whose
    # more vivid colour flickers more from frame to frame: the objects clip of bench/video.py --clips went to 1.38x
    # the original's flicker as written (the target: 1.3x); 0.95 gives 1.28x, every other clip within 1.18x, PSNR
    # within 0.05 dB of per-frame colorization (0.97: 1.16x, -0.06 dB)
    strength: float = 0.95
    l_tolerance: float = 4.0  # |ΔL| at render size at which a pixel stops keeping its running ab
    # L-histogram distance (0..1) between two frames that starts a new shot: pans and zooms over a photo
    # measured up to 0.036 and vtest.avi's walkers 0.011; cuts between any two sample photos 0.21 to 0.90. The
    # same distance from the frame the memory began with starts the memory afresh too (not counted as a cut): a
    # cross-dissolve passes it halfway, and the colours then follow the new shot instead of lagging behind
    # (bench/video.py --clips: the fade clip -0.15 -> -0.05 dB against per-frame colorization, in memory)
    cut_threshold: float = 0.15
    histogram_bins: int = 32
    # colour memory: a pixel still for n frames keeps n/(n+1) of its running ab (a plain mean of its frames so
    # far), up to this much; `strength` at least. 0: off
    # (measured with tests/footage.py's clips, bench/video.py --clips: static-camera flicker 1.43x -> 1.03x)
    memory: float = 0.97
    # 3x3 mean |ΔL| up to which a pixel counts as fully still: grain and compression noise in L
    l_noise: float = 1.0

    def __post_init__(self):
        if not 0.0 <= self.strength < 1.0:
            raise OptionError(f"strength must be in [0, 1), not {self.strength!r}")
        if not self.l_tolerance > 0.0:
            raise OptionError(f"l_tolerance must be above 0, not {self.l_tolerance!r}")
        if not 0.0 <= self.memory < 1.0:
            raise OptionError(f"memory must be in [0, 1), not {self.memory!r}")
        if not 0.0 <= self.l_noise < self.l_tolerance:
            raise OptionError(f"l_noise must be in [0, l_tolerance), not {self.l_noise!r}")
        if not 0.0 < self.cut_threshold <= 1.0:
            raise OptionError(f"cut_threshold must be in (0, 1], not {self.cut_threshold!r}")


def l_histogram(l: torch.Tensor, bins: int) -> torch.Tensor:
    """(1, 1, H, W) L in [0, 100] -> (bins,) share of pixels per L bin."""
    histogram = torch.histc(l.float(), bins=bins, min=0.0, max=100.0)
    return histogram / histogram.sum().clamp_min(1.0)


def is_cut(l_histogram_before: torch.Tensor, l_histogram_after: torch.Tensor, threshold: float) -> bool:
    """A scene cut: the L histograms of two frames differ by more than `threshold` (total variation, 0..1)."""
    return 0.5 * (l_histogram_before - l_histogram_after).abs().sum().item() > threshold


class TemporalFilter:
    """Running ab at render size for one shot at a time; call step() once per frame, in order."""

    def __init__(self, options: StabilizeOptions = StabilizeOptions()):
        self.options = options
        self.cuts = 0  # scene cuts seen (the first frame is not one)
        self._l: torch.Tensor | None = None  # (1, 1, R, R) previous frame's L at render size
        self._ab: torch.Tensor | None = None  # (1, 2, R, R) running ab
        self._histogram: torch.Tensor | None = None
        self._shot_histogram: torch.Tensor | None = None  # the L histogram of the frame the memory began with
        self._still: torch.Tensor | None = None  # (1, 1, R, R) frames each pixel has been still for (memory)
        self._l_mean: torch.Tensor | None = None  # (1, 1, R, R) L averaged as the running ab is (memory)

    def reset(self) -> None:
        self._l = self._ab = self._histogram = self._shot_histogram = self._still = self._l_mean = None

    def _gate(self, change: torch.Tensor) -> torch.Tensor:
        """3x3 mean |ΔL| -> how still a pixel is: 1 up to l_noise, falling to 0 at l_tolerance."""
        tolerance, noise = self.options.l_tolerance, self.options.l_noise
        return ((tolerance - change) / (tolerance - noise)).clamp_(0.0, 1.0)

    def step(self, l_small: torch.Tensor, ab_small: torch.Tensor) -> torch.Tensor:
        """(1, 1, R, R) L and (1, 2, R, R) predicted ab of the next frame -> its stabilized ab (1, 2, R, R)."""
        return self.run(l_small, ab_small)

    def run(self, l_small: torch.Tensor, ab_small: torch.Tensor) -> torch.Tensor:
        """(B, 1, R, R) L and (B, 2, R, R) predicted ab of the next B frames, in order -> their stabilized ab
        (B, 2, R, R), as B calls of step() give it: what does not depend on the running ab (L histograms, the
        change of L from each frame to the next) is computed for the whole batch at once."""
        options = self.options
        histograms = [l_histogram(l, options.histogram_bins) for l in l_small.split(1)]
        previous = self._l if self._l is not None and self._l.shape == l_small[:1].shape else None
        first = 0 if previous is not None else 1  # the first frame whose previous L is known
        before = l_small[:-1] if previous is None else torch.cat([previous, l_small[:-1]])  # (B - first, 1, R, R)
        changes = [None] * first + (list(_change(l_small[first:], before).split(1)) if len(before) else [])
        out = torch.empty_like(ab_small, dtype=torch.float32)  # (B, 2, R, R)
        for index, (l, ab, histogram, change) in enumerate(zip(l_small.split(1), ab_small.split(1), histograms, changes)):
            out[index] = self._next(l, ab, histogram, change)
        return out

    def _next(self, l_small: torch.Tensor, ab_small: torch.Tensor, histogram: torch.Tensor,
              change: torch.Tensor | None) -> torch.Tensor:
        """One frame: its (1, 1, R, R) L, (1, 2, R, R) ab, L histogram and 3x3 mean |ΔL| from the frame before
        (None for the first) -> its stabilized ab (1, 2, R, R)."""
        options = self.options
        if self._l is not None and is_cut(self._histogram, histogram, options.cut_threshold):
            self.cuts += 1
            self._ab = None
        elif self._shot_histogram is not None and is_cut(self._shot_histogram, histogram, options.cut_threshold):
            self._ab = None  # drifted as far as a cut since the memory began (a dissolve, a slow pan): start afresh
        if self._ab is None or self._ab.shape != ab_small.shape or options.strength == 0.0:
            ab = ab_small.float()
            self._shot_histogram = histogram
            self._still = torch.zeros_like(l_small, dtype=torch.float32)
            self._l_mean = l_small.float()
        else:
            # a 3x3 mean of |ΔL| so that sensor and compression noise in L does not open the gate
            gate = self._gate(change)  # (1, 1, R, R): 1 still, 0 moved
            keep = options.strength * gate  # (1, 1, R, R)
            if options.memory:
                # against the L the remembered colour was seen with as well: noise averages out there, a slow
                # change (a fade, a light) does not, and opens the gate before the colour lags behind it
                gate = torch.minimum(gate, self._gate(_change(l_small, self._l_mean)))
                self._still = gate * (self._still + 1.0)  # motion starts the count again
                most = max(options.strength, options.memory)
                keep = gate * (self._still / (self._still + 1.0)).clamp(options.strength, most)
                self._l_mean = torch.lerp(l_small.float(), self._l_mean, keep)
            ab = torch.lerp(ab_small.float(), self._ab, keep)
        self._l, self._ab, self._histogram = l_small, ab, histogram
        return ab


def _change(l_now: torch.Tensor, l_before: torch.Tensor) -> torch.Tensor:
    """(B, 1, R, R) 3x3 mean of |ΔL| between frames and the frames before them."""
    return F.avg_pool2d((l_now - l_before).abs(), 3, stride=1, padding=1, count_include_pad=False)


def flicker(lab_before: torch.Tensor, lab_after: torch.Tensor, l_step: float = FLICKER_L_STEP) -> float:
    """Mean |Δa| + |Δb| over the pixels whose L changed by less than `l_step` between two (1, 3, H, W) Lab
    frames (0 when none did). Averaged over consecutive pairs, it is the flicker of a video."""
    still = (lab_after[:, 0] - lab_before[:, 0]).abs() < l_step  # (1, H, W)
    if not still.any():
        return 0.0
    change = (lab_after[:, 1:] - lab_before[:, 1:]).abs().sum(dim=1)  # (1, H, W)
    return change[still].mean().item()
