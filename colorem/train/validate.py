"""Intermediate results: metrics on fixed validation photos and a PNG grid (gray | prediction | original)."""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from colorem.color import gray_to_rgb, rgb_to_lab, split_lab
from colorem.device import autocast
from colorem.imageio import to_pil, write_image
from colorem.metrics import auc_ab, colorfulness, compose_rgb, psnr_rgb
from colorem.stages import decode_ab


@torch.no_grad()
def predict(model: nn.Module, rgb_uint8: torch.Tensor, device: torch.device, precision: str,
            batch_size: int = 16) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(N, 3, S, S) uint8 photos -> (rgb_true, l, ab_predicted) as float32 CPU tensors."""
    was_training = model.training
    model.eval()
    rgb_true = rgb_uint8.float() / 255.0
    l_all, ab_all = [], []
    for start in range(0, len(rgb_true), batch_size):
        lab = rgb_to_lab(rgb_true[start:start + batch_size].to(device))
        l, _ = split_lab(lab)  # (B, 1, S, S)
        with autocast(device, precision):
            ab = model(l)  # the head decoded as at inference (decode_logits at the model's temperature)
        l_all.append(l.float().cpu())
        ab_all.append(decode_ab(ab.float()).cpu())  # as Colorizer.predict_ab decodes it, with the card's defaults
    model.train(was_training)
    return rgb_true, torch.cat(l_all), torch.cat(ab_all)


def score(rgb_true: torch.Tensor, l: torch.Tensor, ab: torch.Tensor) -> dict[str, float]:
    """PSNR (RGB of predicted ab joined with the true L, data range 1), Hasler–Süsstrunk
    colourfulness of the result and of the originals, and AuC of the ab error (colorem.metrics)."""
    rgb = compose_rgb(l, ab)
    ab_true = rgb_to_lab(rgb_true.double())[:, 1:]
    return {
        "val_psnr": float(psnr_rgb(rgb, rgb_true).clamp(max=100).mean()),
        "val_colorfulness": float(colorfulness(rgb).mean()),
        "val_colorfulness_true": float(colorfulness(rgb_true).mean()),
        "val_auc": float(auc_ab(ab.double(), ab_true).mean()),
    }


def write_grid(path: str | os.PathLike, rgb_true: torch.Tensor, l: torch.Tensor, ab: torch.Tensor, rows: int) -> Path:
    """A PNG with one row per photo: gray input | prediction | original."""
    rows = min(rows, len(rgb_true))
    gray = gray_to_rgb(l[:rows])
    prediction = compose_rgb(l[:rows], ab[:rows]).float()
    grid = torch.cat([torch.cat([gray, prediction, rgb_true[:rows]], dim=3)[index] for index in range(rows)], dim=1)
    pixels = (grid.permute(1, 2, 0).clamp(0, 1) * 255 + 0.5).to(torch.uint8).numpy()  # (rows*S, 3*S, 3)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_image(to_pil(pixels), path, "PNG")
