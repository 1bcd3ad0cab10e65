"""Quality, not speed: per-pixel alternatives to the one global vibrance, under the calibration rule.

    python bench/decoding.py --model RAW --ab-prior RUN/ab_prior.json --images HELD_OUT [--limit 120]

RAW is a classification model exported from its run at temperature 1, not yet prior-corrected (as for
bench/calibrate.py, whose rule this applies: the most colourful setting with PSNR ≥ gray + --margin, AuC ≥
gray's and false colour ≤ --max-false %). Four kinds are scored against the global vibrance:

- confidence-aware decoding, ab = v · c^k · annealed mean, with c per pixel the class distribution's
  1 − normalised entropy ("entropy"), its largest probability ("maxp"), or |mean ab| / mean |ab|
  ("resultant"), or the annealed mean's own chroma / AB_MAX ("chroma": a curve that mutes weak colour and
  strengthens strong colour, k = γ − 1); v is searched for each (c, k);
- test-time flip averaging: the class probabilities of the photo and of its mirror image (mirrored back)
  averaged before decoding, at twice the network's cost;
- ab upsampled to full size under the guidance of the full-resolution L (kornia's guided filter after the
  bilinear upsampling), at the global vibrance's colourfulness;
- removing a share of each photo's mean predicted colour ("cast"), against sepia and other casts over a
  whole photo, before the global vibrance;
- the class distribution smoothed in space (a Gaussian of 1 or 2 cells over the probabilities before the
  annealed mean), against isolated blotches where neighbouring cells disagree.

Photos are scored as `colorem evaluate` scores them (what `colorem colorize` writes).
"""

from __future__ import annotations

import argparse
import math
import tempfile
from pathlib import Path

import torch
import torch.nn.functional as F
from kornia.filters import gaussian_blur2d, guided_blur

import colorem
from colorem.color import AB_MAX
from colorem.stages import upsample_ab
from colorem.train.export import adjust_logits
from colorem.train.losses import load_prior
from calibrate import load_truth, score, search_vibrance
from vibrance import photos

CONFIDENCES = ("entropy", "maxp", "resultant", "chroma")
SMOOTHING = {"distribution smoothed, sigma 1 cell": 1.0, "distribution smoothed, sigma 2 cells": 2.0}


def decode(model, truth: dict, temperature: float) -> tuple[dict, dict, dict]:
    """Per photo size at the render size: the annealed-mean ab; the same with the class probabilities
    averaged with those of the mirrored photo, mirrored back (test-time flip); each confidence map (B, 1, R, R)."""
    bins = model.bins.float()
    chroma = bins.norm(dim=1)
    means, flipped, confidences = {}, {}, {name: {} for name in (*CONFIDENCES, *SMOOTHING)}
    with torch.no_grad():
        for size, (_, _, _, l_small) in truth.items():
            parts: dict[str, list] = {name: [] for name in ("mean", "flip", *CONFIDENCES, *SMOOTHING)}
            for start in range(0, len(l_small), 8):
                logits = model(l_small[start:start + 8], raw=True).float()  # (B, Q, R/2, R/2)
                p = torch.softmax(logits / temperature, 1)
                mean = torch.einsum("bqhw,qc->bchw", p, bins)
                mirrored = model(l_small[start:start + 8].flip(-1), raw=True).float().flip(-1)
                p_both = (p + torch.softmax(mirrored / temperature, 1)) / 2  # test-time flip: the two averaged
                parts["flip"].append(torch.einsum("bqhw,qc->bchw", p_both, bins))
                p1 = torch.softmax(logits, 1)
                entropy = -(p1 * p1.clamp_min(1e-12).log()).sum(1, keepdim=True) / math.log(len(bins))
                parts["mean"].append(mean)
                parts["entropy"].append(1 - entropy)
                parts["maxp"].append(p1.amax(1, keepdim=True))
                mean_chroma = torch.einsum("bqhw,q->bhw", p, chroma)[:, None]
                parts["resultant"].append(mean.norm(dim=1, keepdim=True) / mean_chroma.clamp_min(1e-6))
                parts["chroma"].append(mean.norm(dim=1, keepdim=True) / AB_MAX)
                for name, sigma in SMOOTHING.items():
                    side = 2 * math.ceil(3 * sigma) + 1
                    smooth = gaussian_blur2d(p, (side, side), (sigma, sigma), border_type="replicate")
                    parts[name].append(torch.einsum("bqhw,qc->bchw", smooth, bins))
            # as the network upsamples its decoded ab (nearest for the seed's network, bilinear for the U-Nets)
            up = lambda maps: F.interpolate(torch.cat(maps), size=l_small.shape[-2:], mode=model.upsample_mode)  # noqa: E731
            means[size] = up(parts["mean"])
            flipped[size] = up(parts["flip"])
            for name in (*CONFIDENCES, *SMOOTHING):
                confidences[name][size] = up(parts[name])
    return means, flipped, confidences


def row(name: str, result: tuple | None) -> str:
    if result is None:
        return f"| {name} | – | no setting meets the rule | | | |"
    return "| {} | {:g} | {:.3f} | {:.2f} | {:.4f} | {:.2f} |".format(name, *result)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="classification weights, not yet prior-corrected")
    parser.add_argument("--ab-prior", required=True, help="the training run's ab_prior.json")
    parser.add_argument("--images", required=True, help="held-out colour photos: a folder or a .tar shard")
    parser.add_argument("--limit", type=int, default=120)
    parser.add_argument("--render-size", type=int, default=256)
    parser.add_argument("--temperature", type=float, default=0.8)
    parser.add_argument("--prior-correction", type=float, default=1.0, help="strength, as colorem export's")
    parser.add_argument("--margin", type=float, default=0.5)
    parser.add_argument("--max-false", type=float, default=1.5)
    parser.add_argument("--step", type=float, default=0.05, help="vibrance step")
    parser.add_argument("--confidences", default=",".join(CONFIDENCES), help="which per-pixel rows to score")
    args = parser.parse_args()
    if unknown := set(args.confidences.split(",")) - set(CONFIDENCES):
        parser.error(f"--confidences: unknown {', '.join(sorted(unknown))} (known: {', '.join(CONFIDENCES)})")

    base = colorem.load(args.model)
    model = base.model.eval()
    adjust_logits(model, load_prior(args.ab_prior), base.card.provenance["config"]["loss"]["rebalance"], args.prior_correction)
    with tempfile.TemporaryDirectory() as folder:
        images = photos(args.images, Path(folder), args.limit)
        truth = load_truth(images, args.render_size)
    means, flipped, confidences = decode(model, truth, args.temperature)
    gray = score({size: torch.zeros_like(mean) for size, mean in means.items()}, truth, 1.0)
    print(f"{len(images)} photos from {args.images} at render {args.render_size}, temperature {args.temperature:g}; "
          f"gray PSNR {gray[0]:.3f} dB, AuC {gray[2]:.4f}; rule: PSNR ≥ gray + {args.margin:g}, AuC ≥ gray's, "
          f"false colour ≤ {args.max_false:g}%, then the most colourful (vibrance steps of {args.step:g})\n")
    print("| decoding | vibrance | PSNR RGB (dB) | colourfulness | AuC | false % |\n|---|---|---|---|---|---|")

    def under_the_rule(ab_small: dict) -> tuple | None:
        return search_vibrance(ab_small, truth, gray[0] + args.margin, gray[2], args.max_false, args.step)

    def most_colourful(weights: dict) -> tuple | None:
        return under_the_rule({size: means[size] * weights[size] for size in means})

    best = most_colourful({size: torch.ones(1) for size in means})
    print(row("global vibrance (the card's)", best), flush=True)
    print(row("test-time flip average, global vibrance", under_the_rule(flipped)), flush=True)
    for name in SMOOTHING:
        print(row(f"{name}, global vibrance", under_the_rule(confidences[name])), flush=True)
    for name in args.confidences.split(","):
        pooled = torch.cat([maps.flatten() for maps in confidences[name].values()]).clamp_min(1e-3)
        for power in (0.25, 0.5, 1.0, 2.0):
            norm = pooled.pow(power).mean()  # so that a vibrance means the same average scale in every row
            weights = {size: maps.clamp_min(1e-3).pow(power) / norm for size, maps in confidences[name].items()}
            print(row(f"{name}^{power:g}", most_colourful(weights)), flush=True)
    for share in (0.25, 0.5, 1.0):
        decast = {size: mean - share * mean.mean((2, 3), keepdim=True) for size, mean in means.items()}
        print(row(f"cast removed: {share:g} of the photo's mean ab", under_the_rule(decast)), flush=True)
    if best is None:
        return
    print("\nGuided upsampling, at the global vibrance and above it (saturation: a further scale):\n")
    print("| upsampling | saturation | PSNR RGB (dB) | colourfulness | AuC | false % |\n|---|---|---|---|---|---|")
    for saturation in (1.0, 1.05, 1.1, 1.15):
        ab_small = {size: means[size] * best[0] * saturation for size in means}
        print(row("bilinear (today)", (saturation, *score(ab_small, truth, 1.0))))
        for window in (9, 17):
            # ab already at full size: calibrate's score upsamples it to the same size, which leaves it as it is
            ab_full = {size: guided_blur(l_full / 100.0, upsample_ab(ab_small[size], tuple(l_full.shape[-2:])), window,
                                         1e-3).clamp_(-AB_MAX, AB_MAX)
                       for size, (_, _, l_full, _) in truth.items()}
            print(row(f"guided, {window} px window, eps 0.001", (saturation, *score(ab_full, truth, 1.0))), flush=True)


if __name__ == "__main__":
    main()
