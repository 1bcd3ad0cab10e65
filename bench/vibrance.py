"""Quality, not speed: a model's PSNR-colourfulness curve over its vibrance knob, and its calibration.

    python bench/vibrance.py --model WEIGHTS --images ../shared/data/eval --plot docs/vibrance-curve.png
    python bench/vibrance.py --model WEIGHTS --images ../shared/data/train/train-000002.tar \
        --exclude-source debian_wallpapers --calibrate [--margin 0.35]

The knob is the annealed-mean temperature of classification models (`--knob temperature`: lower is more
vivid; the model's default lives in its card) or `vibrance`, a scale on the predicted ab
(`ModelCard.vibrance`). --calibrate applies the rule the default model's setting was chosen by, on photos
it never trained on: the most colourful setting whose mean PSNR stays within --budget dB of the best.
Every point is scored with colorem.evaluate (the same protocol as `colorem evaluate`).
"""

from __future__ import annotations

import argparse
import copy
import csv
import gzip
import tarfile
import tempfile
from pathlib import Path

import numpy as np

import colorem
from colorem.evaluate import GRAY, evaluate, find_images


def photos(source: str, folder: Path, limit: int | None, exclude: frozenset[str] = frozenset()) -> list[Path]:
    """A folder of photos, or the JPEGs of a tar shard extracted into `folder`, less the keys whose source
    (in the shards' train_index.tsv.gz, beside the train/ folder) is in `exclude`."""
    if source.endswith(".tar"):
        skip = set()
        if exclude:
            with gzip.open(Path(source).parent.parent / "train_index.tsv.gz", "rt") as index:
                skip = {row["key"] for row in csv.DictReader(index, delimiter="\t") if row["source"] in exclude}
        with tarfile.open(source) as archive:
            members = [m for m in archive.getmembers() if m.isfile() and m.name.lower().endswith((".jpg", ".jpeg", ".png"))
                       and Path(m.name).stem not in skip]
            for member in members[:limit]:
                (folder / Path(member.name).name).write_bytes(archive.extractfile(member).read())
        return find_images(folder)
    return find_images(source, limit)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="default")
    parser.add_argument("--images", required=True, help="a folder of colour photos or a .tar shard")
    parser.add_argument("--knob", default="temperature", choices=("temperature", "vibrance"))
    parser.add_argument("--grid", default=None, help="comma-separated values (default: a grid for the knob)")
    parser.add_argument("--render-size", type=int, default=256)
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--calibrate", action="store_true", help="print the vibrance the calibration rule picks")
    parser.add_argument("--budget", type=float, default=0.25, help="PSNR (dB) the calibration may give up for colour")
    parser.add_argument("--margin", type=float, default=None,
                        help="calibrate instead to the most colourful setting that beats the gray baseline by this "
                             "many dB of PSNR with an AuC no lower than gray's")
    parser.add_argument("--exclude-source", action="append", default=[],
                        help="with a .tar: leave out photos of this source (e.g. debian_wallpapers, whose other "
                             "crops are in the training shards); repeatable")
    parser.add_argument("--plot", default=None, help="write the curve as a PNG (needs matplotlib)")
    args = parser.parse_args()

    base = colorem.load(args.model)
    default_grid = "0.2,0.3,0.38,0.5,0.6,0.7,0.8,1.0" if args.knob == "temperature" else "1.0,1.2,1.4,1.6,1.8,2.0"
    grid = [float(value) for value in (args.grid or default_grid).split(",")]
    colorizers = {}
    for value in grid:
        colorizer = copy.copy(base)  # the same loaded model, another setting
        setattr(colorizer, args.knob, value)
        colorizers[f"{args.knob} {value:g}"] = colorizer
    current = getattr(base.model, "temperature", None) if args.knob == "temperature" else base.vibrance
    with tempfile.TemporaryDirectory() as folder:
        images = photos(args.images, Path(folder), args.limit, frozenset(args.exclude_source))
        result = evaluate(colorizers, images, render_size=args.render_size, contact_images=0)
    mean = {row: {metric: float(np.mean(values)) for metric, values in metrics.items()} for row, metrics in result.scores.items()}
    print(f"{len(result.images)} photos from {args.images}; originals' colourfulness {result.original_colorfulness.mean():.1f}; "
          f"the model's {args.knob}: {current:g}")
    print(f"| {args.knob} | PSNR RGB (dB) | colourfulness | AuC | SSIM | false colour % |\n|---|---|---|---|---|---|")
    for row in [GRAY, *colorizers]:
        values = mean[row]
        print(f"| {row} | {values['psnr_rgb']:.2f} | {values['colorfulness']:.1f} | {values['auc_ab']:.4f} | {values['ssim_rgb']:.3f} | {values['false_colour']:.2f} |")
    if args.calibrate and args.margin is not None:
        gray = mean[GRAY]
        allowed = [name for name in colorizers if mean[name]["psnr_rgb"] >= gray["psnr_rgb"] + args.margin
                   and mean[name]["auc_ab"] >= gray["auc_ab"]]
        if not allowed:
            print(f"calibration: no setting beats gray by {args.margin} dB with gray's AuC")
        else:
            chosen = max(allowed, key=lambda name: mean[name]["colorfulness"])
            print(f"calibrated {chosen} (the most colourful {args.margin} dB or more above gray, AuC ≥ gray's)")
    elif args.calibrate:
        best = max(mean[name]["psnr_rgb"] for name in colorizers)
        allowed = [name for name in colorizers if mean[name]["psnr_rgb"] >= best - args.budget]
        chosen = max(allowed, key=lambda name: mean[name]["colorfulness"])
        print(f"calibrated {chosen} (the most colourful within {args.budget} dB of the best PSNR, {best:.2f})")
    if args.plot:
        plot(mean, grid, colorizers, args.knob, current, result.original_colorfulness.mean(), args.plot)


def plot(mean: dict, grid: list[float], colorizers: dict, knob: str, default: float, original: float, path: str) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as error:
        raise SystemExit("--plot needs matplotlib: pip install matplotlib") from error
    x = [mean[name]["colorfulness"] for name in colorizers]
    y = [mean[name]["psnr_rgb"] for name in colorizers]
    figure, axes = plt.subplots(figsize=(6.4, 4.2), dpi=120)
    axes.plot(x, y, "o-", color="#1f77b4", label=f"colorem default model over its {knob}")
    for value, xi, yi in zip(grid, x, y):
        axes.annotate(f"{value:g}", (xi, yi), textcoords="offset points", xytext=(4, 5), fontsize=8)
    closest = min(range(len(grid)), key=lambda i: abs(grid[i] - default))
    axes.plot([x[closest]], [y[closest]], "*", markersize=16, color="#d62728", label=f"default ({knob} {default:g})")
    axes.plot([mean[GRAY]["colorfulness"]], [mean[GRAY]["psnr_rgb"]], "s", color="gray", label="gray baseline")
    axes.axvline(original, color="#2ca02c", linestyle=":", label=f"originals' colourfulness ({original:.1f})")
    axes.set_xlabel("mean colourfulness (Hasler & Süsstrunk)")
    axes.set_ylabel("PSNR, RGB with true L (dB)")
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8, loc="lower left")
    figure.tight_layout()
    figure.savefig(path)


if __name__ == "__main__":
    main()
