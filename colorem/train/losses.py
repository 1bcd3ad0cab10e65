"""Training losses on ab, selected by LossConfig.name:

mse                  the original's MSE on ab / 128 (regression head); tends to desaturated "sepia"
classification       cross-entropy over quantized ab bins with class rebalancing λ (Zhang et al., ECCV 2016)
huber_colorfulness   Huber on ab / 128 plus a penalty when an image's mean chroma falls below the target's
mix                  classification + mse_weight · MSE of the annealed-mean ab (the trade-off in between)
colorful             classification + colorfulness_weight · each image's mean chroma of the annealed mean
                     below the target's (huber_colorfulness's penalty on the classification head)
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterable

import torch
import torch.nn.functional as F
from torch import nn

from colorem.color import AB_MAX, rgb_to_lab
from colorem.errors import OptionError

CLASSIFICATION_LOSSES = ("classification", "mix", "colorful")  # the losses on the classification head
LOSSES = ("mse", "huber_colorfulness", *CLASSIFICATION_LOSSES)
PRIOR_SIGMA = 5.0  # Gaussian smoothing of the empirical ab distribution, in Lab units (Zhang et al.)


class BinGrid:
    """Maps ab values to the in-gamut bins of a regular grid (model.bins): nearest bin and a bilinear
    soft encoding over the four surrounding grid points (each mapped to its nearest in-gamut bin)."""

    def __init__(self, bins: torch.Tensor):
        bins = bins.float().cpu()
        values = torch.unique(bins[:, 0])
        self.step = float((values[1:] - values[:-1]).min())
        self.low = float(bins.min())
        self.size = int(round((float(bins.max()) - self.low) / self.step)) + 1
        axis = self.low + self.step * torch.arange(self.size, dtype=torch.float32)
        a, b = torch.meshgrid(axis, axis, indexing="ij")
        cells = torch.stack([a.flatten(), b.flatten()], dim=1)  # (G*G, 2)
        self.cell_to_bin = torch.cdist(cells, bins).argmin(dim=1)  # (G*G,)

    def to(self, device) -> "BinGrid":
        self.cell_to_bin = self.cell_to_bin.to(device)
        return self

    def _coordinates(self, ab: torch.Tensor) -> torch.Tensor:
        return ((ab.float() - self.low) / self.step).clamp(0, self.size - 1)  # (B, 2, H, W) grid units

    def nearest(self, ab: torch.Tensor) -> torch.Tensor:
        """(B, 2, H, W) ab -> (B, H, W) index of the nearest in-gamut bin."""
        grid = self._coordinates(ab).round().long()
        return self.cell_to_bin[grid[:, 0] * self.size + grid[:, 1]]

    def soft(self, ab: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, 2, H, W) ab -> bin indices (B, 4, H, W) and weights (B, 4, H, W) summing to 1."""
        grid = self._coordinates(ab)
        low = grid.floor().clamp(max=self.size - 2).long()
        fraction = grid - low
        indices, weights = [], []
        for da in (0, 1):
            for db in (0, 1):
                weight_a = fraction[:, 0] if da else 1 - fraction[:, 0]
                weight_b = fraction[:, 1] if db else 1 - fraction[:, 1]
                cell = (low[:, 0] + da) * self.size + (low[:, 1] + db)
                indices.append(self.cell_to_bin[cell])
                weights.append(weight_a * weight_b)
        return torch.stack(indices, dim=1), torch.stack(weights, dim=1)


@torch.no_grad()
def estimate_ab_prior(rgb_batches: Iterable[torch.Tensor], bins: torch.Tensor, images: int) -> torch.Tensor:
    """The empirical distribution of ab over the bins, from (B, 3, H, W) uint8 batches of training photos."""
    grid = BinGrid(bins)
    counts = torch.zeros(len(bins), dtype=torch.float64)
    seen = 0
    for rgb in rgb_batches:
        lab = rgb_to_lab(rgb.float() / 255.0)
        counts += torch.bincount(grid.nearest(lab[:, 1:]).flatten(), minlength=len(bins)).double()
        seen += len(rgb)
        if seen >= images:
            break
    if not seen:
        raise ValueError("no images to estimate the ab prior from")
    return (counts / counts.sum()).float()


def rebalancing_weights(prior: torch.Tensor, bins: torch.Tensor, rebalance: float) -> torch.Tensor:
    """w ∝ ((1 − λ) p̃ + λ / Q)⁻¹ with p̃ the prior smoothed by a Gaussian (σ = 5), normalized so
    that E_p̃[w] = 1 (Zhang et al. 2016, eq. 4). λ = 1 gives uniform weights."""
    distances = torch.cdist(bins.float(), bins.float())
    kernel = torch.exp(-distances ** 2 / (2 * PRIOR_SIGMA ** 2))
    smoothed = kernel @ prior.float()
    smoothed = smoothed / smoothed.sum()
    weights = 1.0 / ((1 - rebalance) * smoothed + rebalance / len(bins))
    return weights / (smoothed * weights).sum()


def save_prior(prior: torch.Tensor, path: str | os.PathLike) -> None:
    Path(path).write_text(json.dumps({"format": "colorem-ab-prior/1", "prior": prior.tolist()}) + "\n")


def load_prior(path: str | os.PathLike) -> torch.Tensor:
    """A saved ab prior (save_prior's JSON); one that cannot be read is an OptionError naming it."""
    try:
        values = json.loads(Path(path).read_text())
        return torch.tensor(values["prior"], dtype=torch.float32)
    except (OSError, ValueError, KeyError, TypeError) as error:
        reason = getattr(error, "strerror", None) or f"{type(error).__name__}: {error}"
        raise OptionError(f"cannot read the ab prior {path} ({reason})") from None


class ColorLoss(nn.Module):
    """loss(raw head output, ab target (B, 2, H, W) in Lab units) -> (scalar loss, {part: detached tensor})."""

    def __init__(self, name: str, *, bins: torch.Tensor | None = None, prior: torch.Tensor | None = None,
                 rebalance: float = 0.5, huber_delta: float = 0.05, colorfulness_weight: float = 0.5,
                 mse_weight: float = 1.0, temperature: float = 0.38):
        super().__init__()
        self.name = name
        self.huber_delta, self.colorfulness_weight = huber_delta, colorfulness_weight
        self.mse_weight, self.temperature = mse_weight, temperature
        if name in CLASSIFICATION_LOSSES:
            if bins is None:
                raise ValueError(f"the {name} loss needs the model's ab bins")
            bins = bins.detach().cpu()  # built on the CPU, moved with the module by .to(device)
            self.grid = BinGrid(bins)
            self.register_buffer("bins", bins.float().clone(), persistent=False)
            weights = torch.ones(len(bins)) if prior is None else rebalancing_weights(prior, bins, rebalance)
            self.register_buffer("class_weights", weights, persistent=False)

    def _apply(self, fn, *args, **kwargs):  # keep the bin lookup table on the module's device
        module = super()._apply(fn, *args, **kwargs)
        if hasattr(self, "grid"):
            self.grid.to(self.bins.device)
        return module

    def forward(self, raw: torch.Tensor, ab: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        target = ab.float() / AB_MAX
        if self.name == "mse":
            loss = F.mse_loss(raw.float(), target)
            return loss, {"mse": loss.detach()}
        if self.name == "huber_colorfulness":
            huber = F.smooth_l1_loss(raw.float(), target, beta=self.huber_delta)
            shortfall = chroma_shortfall(raw.float(), target)
            return huber + self.colorfulness_weight * shortfall, {"huber": huber.detach(), "chroma_shortfall": shortfall.detach()}
        logits = raw.float()  # (B, Q, h, w): the classification head's native resolution
        if ab.shape[-2:] != logits.shape[-2:]:
            ab = F.interpolate(ab.float(), size=logits.shape[-2:], mode="area")
            target = ab / AB_MAX
        indices, weights = self.grid.soft(ab)  # (B, 4, h, w) each
        log_probabilities = torch.log_softmax(logits, dim=1)
        cross_entropy = -(log_probabilities.gather(1, indices) * weights).sum(dim=1)  # (B, H, W)
        pixel_weights = self.class_weights[self.grid.nearest(ab)]
        ce = (cross_entropy * pixel_weights).mean()
        if self.name == "classification":
            return ce, {"ce": ce.detach()}
        probabilities = torch.softmax(logits / self.temperature, dim=1)
        ab_mean = torch.einsum("bqhw,qc->bchw", probabilities, self.bins) / AB_MAX  # the annealed mean
        if self.name == "colorful":
            shortfall = chroma_shortfall(ab_mean, target)
            return ce + self.colorfulness_weight * shortfall, {"ce": ce.detach(), "chroma_shortfall": shortfall.detach()}
        mse = F.mse_loss(ab_mean, target)
        return ce + self.mse_weight * mse, {"ce": ce.detach(), "mse": mse.detach()}


def chroma_shortfall(ab: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """How far each image's mean chroma (B, 2, H, W ab / 128) falls below its target's, averaged over the batch;
    an image as colourful as its target or more costs nothing."""
    return F.relu(target.norm(dim=1).flatten(1).mean(1) - ab.norm(dim=1).flatten(1).mean(1)).mean()
