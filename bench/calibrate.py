"""Quality, not speed: the joint calibration of a classification model's decoding on held-out photos.

    python bench/calibrate.py --model WEIGHTS --ab-prior RUN/ab_prior.json \
        --images ../shared/data/train/train-000002.tar --exclude-source debian_wallpapers

Four settings decide a classification model's colours: the prior correction (how much of the training's
class rebalancing the logits undo, `colorem export --prior-correction`), the annealed-mean temperature,
the cast removal (the share of each photo's mean predicted ab taken away, `--cast-removal`) and the
vibrance (a scale on the predicted ab). For every (correction, temperature, cast removal) of the grid the
photos' ab are predicted once, then the vibrance is searched in steps of --step; the rule is the one the
default model's vibrance was calibrated by: the most colourful setting whose mean PSNR beats the gray
baseline by --margin dB with an AuC no lower than gray's and at most --max-false % false colour (pixels
neutral in the original painted with chroma ≥ 20, the blotches of `colorem evaluate`). The photos are scored
as `colorem evaluate` does (what `colorem colorize` writes, with the vibrance applied to the predicted ab). Prints a table, the
chosen setting and the `colorem export` command that writes it into a card. WEIGHTS must not be
prior-corrected already (one exported at temperature 1, vibrance 1 from its run). A model trained without
rebalancing (`loss.rebalance = 1`) has nothing to correct: --ab-prior is then not needed and the grid's
corrections are ignored.
"""

from __future__ import annotations

import argparse
import copy
import itertools
import tempfile
from pathlib import Path

import torch

import colorem
from colorem.color import rgb_to_lab
from colorem.evaluate import as_written, read_truth
from colorem.metrics import auc_ab, colorfulness, false_colour, psnr_rgb
from colorem.train.export import adjust_logits
from colorem.train.losses import load_prior
from vibrance import photos


def load_truth(images: list[Path], render_size: int) -> dict[tuple[int, int], tuple[torch.Tensor, ...]]:
    """The photos as evaluate reads them, per size: (RGB, Lab, full-size L, L at the render size), (N, C, ., .) each."""
    groups: dict[tuple[int, int], list] = {}
    for path in images:
        truth = read_truth(path, render_size)
        groups.setdefault(truth.size, []).append(truth)
    result = {}
    for size, group in groups.items():
        rgb, l_full, l_small = (torch.cat([getattr(truth, name) for truth in group]) for name in ("rgb", "l_full", "l_small"))
        result[size] = (rgb, rgb_to_lab(rgb), l_full, l_small)
    return result


def predict(colorizer: colorem.Colorizer, truth: dict, batch: int = 32) -> dict:
    """ab at the render size for every photo, per size, with the colorizer's temperature and cast removal and
    vibrance 1."""
    colorizer.vibrance = 1.0
    return {size: torch.cat([colorizer.predict_ab(l_small[start:start + batch]) for start in range(0, len(l_small), batch)])
            for size, (_, _, _, l_small) in truth.items()}


def score(ab_small: dict, truth: dict, vibrance: float) -> tuple[float, float, float, float]:
    """Mean PSNR (RGB), colourfulness, AuC and false colour (%) over all photos at one vibrance (a scale on the
    predicted ab, as the card's vibrance is; applied here like the saturation option, so one prediction serves
    every one)."""
    psnr, colour, auc, false = [], [], [], []
    for size, (rgb_true, lab, l_full, _) in truth.items():
        rgb, ab = as_written(l_full, ab_small[size], saturation=vibrance)
        psnr.append(psnr_rgb(rgb, rgb_true))
        colour.append(colorfulness(rgb))
        auc.append(auc_ab(ab, lab[:, 1:]))
        false.append(false_colour(ab, lab[:, 1:]))
    return tuple(float(torch.cat(values).mean()) for values in (psnr, colour, auc, false))


def search_vibrance(ab_small: dict, truth: dict, threshold: float, gray_auc: float, max_false: float,
                    step: float, most: float = 4.0) -> tuple | None:
    """The largest vibrance (a multiple of `step`) that keeps PSNR ≥ threshold, AuC ≥ gray_auc and false
    colour ≤ max_false, with its scores; colourfulness grows with the vibrance, PSNR and AuC fall past their best. Ten steps at a time,
    then one step at a time past the last good vibrance."""
    last_good = None
    for stride in (10 * step, step):
        vibrance = last_good[0] + stride if last_good else stride
        while vibrance <= most:
            psnr, colour, auc, false = score(ab_small, truth, vibrance)
            if psnr >= threshold and auc >= gray_auc and false <= max_false:
                last_good = (round(vibrance, 4), psnr, colour, auc, false)
            elif last_good is not None:
                break
            vibrance += stride
    return last_good


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="classification weights, not yet prior-corrected")
    parser.add_argument("--ab-prior", default=None, help="the training run's ab_prior.json (if it rebalanced)")
    parser.add_argument("--images", required=True, help="held-out colour photos: a folder or a .tar shard")
    parser.add_argument("--exclude-source", action="append", default=[], help="as in bench/vibrance.py")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--render-size", type=int, default=256)
    parser.add_argument("--strengths", default="0,0.75,1,1.25", help="prior corrections to try")
    parser.add_argument("--temperatures", default="0.6,0.7,0.8,0.9,1.0")
    parser.add_argument("--casts", default="0", help="cast removals to try (shares of a photo's mean ab, 0-1)")
    parser.add_argument("--step", type=float, default=0.025, help="vibrance step")
    parser.add_argument("--margin", type=float, default=0.35, help="dB of PSNR above the gray baseline")
    parser.add_argument("--max-false", type=float, default=100.0, help="most false colour allowed, in %% of neutral pixels")
    parser.add_argument("--max-vibrance", type=float, default=4.0, help="the largest vibrance searched")
    args = parser.parse_args()

    base = colorem.load(args.model)
    if "prior_correction" in base.card.provenance:
        raise SystemExit(f"{args.model}: already prior-corrected; calibrate the weights before the correction")
    rebalance = base.card.provenance["config"]["loss"]["rebalance"]
    strengths, prior = [float(value) for value in args.strengths.split(",")], None
    if rebalance >= 1.0:  # trained without rebalancing: its logits are the classes' probabilities already
        strengths = [0.0]
    elif args.ab_prior is None:
        raise SystemExit(f"{args.model}: trained with rebalance {rebalance:g}; give its run's --ab-prior")
    else:
        prior = load_prior(args.ab_prior)
    with tempfile.TemporaryDirectory() as folder:
        images = photos(args.images, Path(folder), args.limit, frozenset(args.exclude_source))
        truth = load_truth(images, args.render_size)
    gray_psnr, _, gray_auc, _ = score({size: torch.zeros(len(l_small), 2, *l_small.shape[-2:])
                                       for size, (_, _, _, l_small) in truth.items()}, truth, 1.0)
    threshold = gray_psnr + args.margin
    print(f"{len(images)} photos from {args.images}; gray baseline PSNR {gray_psnr:.3f} dB, AuC {gray_auc:.4f}; "
          f"rule: PSNR ≥ {threshold:.3f}, AuC ≥ gray's, false colour ≤ {args.max_false:g}%, then the most colourful")
    print("| prior correction | temperature | cast removal | vibrance | PSNR RGB (dB) | colourfulness | AuC | false % |\n"
          "|---|---|---|---|---|---|---|---|")
    best = None
    for strength in strengths:
        colorizer = copy.copy(base)
        colorizer.model = copy.deepcopy(base.model)
        if strength:
            adjust_logits(colorizer.model, prior, rebalance, strength)
        for temperature, cast in itertools.product(*(map(float, grid.split(",")) for grid in (args.temperatures, args.casts))):
            colorizer.temperature, colorizer.cast_removal = temperature, cast
            chosen = search_vibrance(predict(colorizer, truth), truth, threshold, gray_auc,
                                     args.max_false, args.step, args.max_vibrance)
            if chosen is None:
                print(f"| {strength:g} | {temperature:g} | {cast:g} | – | no vibrance meets the rule | | |")
                continue
            chosen = (strength, temperature, cast, *chosen)
            print("| {:g} | {:g} | {:g} | {:g} | {:.3f} | {:.2f} | {:.4f} | {:.2f} |".format(*chosen), flush=True)
            if best is None or chosen[5] > best[5]:
                best = chosen
    if best is None:
        raise SystemExit("no setting meets the rule")
    strength, temperature, cast, vibrance = best[:4]
    print(f"calibrated: prior correction {strength:g}, temperature {temperature:g}, cast removal {cast:g}, vibrance "
          f"{vibrance:g} (PSNR {best[4]:.3f}, colourfulness {best[5]:.2f}, AuC {best[6]:.4f}, false colour {best[7]:.2f}%)")
    correction = f" --prior-correction {strength:g} --ab-prior {args.ab_prior}" if prior is not None else ""
    print(f"colorem export {args.model} -o OUT.safetensors{correction} "
          f"--temperature {temperature:g} --cast-removal {cast:g} --vibrance {vibrance:g}")


if __name__ == "__main__":
    main()
