"""Colour hints: the latency of one hinted re-colorize, and quality over the number of hints.

    python bench/hints.py --model HINT_WEIGHTS [--repeats 20]                      # latency
    python bench/hints.py --model HINT_WEIGHTS --images ../shared/data/eval \
        --counts 0,1,2,5,10,20 --plot docs/hints-curve.png                         # the curve
    python bench/hints.py --images HELD_OUT --limit 150 --follow-grid              # follow_hints' widths
    python bench/hints.py --images HELD_OUT.tar --limit 400 --decode-grid          # decoding near hints
    python bench/hints.py --images HELD_OUT.tar --limit 400 --far-field            # how far hints move colours

Latency: what the page waits for after each hint change, one forward at the render size plus the
colour math, for a photo of the render size and a 1 MP one. A model without a hint input is timed as
the same network given a (zero) hint input: speed does not depend on the weights' values.
The curve scores `colorem evaluate --hints` rows (the same protocol) and draws PSNR and AuC against the
number of simulated hints with PIL (no matplotlib needed).
The follow grid scores colorem.hint_input.follow_hints at several widths (reach, lightness) against the
network alone, with 1 and 10 simulated hints, on held-out photos (never eval/ or eval-scenes/): how its
defaults, FOLLOW_REACH and FOLLOW_LIGHTNESS, were chosen.
The decode grid scores, with 1, 3 and 10 simulated hints on held-out photos (a folder or a .tar shard), how a
hinted photo is decoded before its colours follow the hints: the card's calibrated decoding (vibrance, cast
removal) everywhere, the network's own colours everywhere, or the network's own where hints reach
(colorem.hint_input.hint_reach) at several widths: how DECODE_REACH was chosen.
The far field asks whether a hint moves colours far from it, and whether towards the photo's or away: the ab error
with and without 1 and 3 simulated hints, in bands of distance from the nearest hint.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from colorem.colorize import Colorizer
from colorem.stages import decode_ab, render_l
from colorem.evaluate import GRAY, evaluate, find_images, hint_row, simulated_hints
from colorem.hint_input import DECODE_REACH, FOLLOW_LIGHTNESS, FOLLOW_REACH, follow_hints, hint_reach
from colorem.hints import Hint
from colorem.models import build_model
from colorem.weights import load_weights
from calibrate import load_truth, score  # photos and scores as `colorem evaluate` makes them
from vibrance import photos  # a folder, or a shard's photos extracted

REPO = Path(__file__).resolve().parents[1]


def hint_colorizer(model: str, precision: str) -> Colorizer:
    """The weights as a Colorizer with a hint input (added, zero, when the model has none)."""
    network, card = load_weights(model)
    if not getattr(network, "accepts_hints", False):
        card.architecture_options = {**card.architecture_options, "hints": True}
        hinted = build_model(card.architecture, card.architecture_options)
        hinted.load_state_dict(network.state_dict(), strict=False)
        network = hinted.eval()
        print(f"{model}: no hint input; timing the same network with a zero-initialized one", file=sys.stderr)
    return Colorizer(network, card, precision=precision, backend="torch")


def median_ms(function, repeats: int, warmup: int = 3) -> tuple[float, float]:
    """Median wall time and median CPU time of this process (all threads), in ms. On a shared machine the
    CPU time is the steadier figure: it does not count the time other processes hold the cores."""
    for _ in range(warmup):
        function()
    walls, cpus = [], []
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        function()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls) * 1000, statistics.median(cpus) * 1000


def latency(colorizer: Colorizer, repeats: int, count: int = 10) -> list[tuple[str, tuple[float, float]]]:
    sample = Image.open(REPO / "colorem" / "samples" / "mountain-meadow.jpg").convert("L")
    size = colorizer.render_size
    rows = []
    for label, (width, height) in [(f"{size}×{size} (the render size)", (size, size)), ("1 MP", (1152, 864))]:
        photo = np.asarray(sample.resize((width, height), Image.Resampling.BICUBIC))
        rng = np.random.default_rng(0)
        hints = [Hint(float(rng.integers(width)), float(rng.integers(height)), "#3a6ea5") for _ in range(count)]
        rows.append((f"colorize {label}, no hints", median_ms(lambda: colorizer.colorize(photo), repeats)))
        rows.append((f"colorize {label}, {count} hints", median_ms(lambda: colorizer.colorize(photo, hints=hints), repeats)))
    item = colorizer.prepare(photo, size)
    hint_input = colorizer.hint_input([hints], [item], size)
    ab = colorizer.predict_ab(item.l_small, hints=hint_input, follow=False)
    rows.append((f"of which follow_hints, {count} hints (at the render size, for any photo)", median_ms(lambda: follow_hints(ab, item.l_small, hint_input), repeats)))
    followed = follow_hints(ab, item.l_small, hint_input)  # the colour math's cost grows with the colours out of sRGB
    rows.append(("of which the colour math, 1 MP, the network's hinted colours", median_ms(lambda: colorizer.finish(item, ab, 1.0), repeats)))
    rows.append(("of which the colour math, 1 MP, those colours followed", median_ms(lambda: colorizer.finish(item, followed, 1.0), repeats)))
    return rows


def curve(colorizer: Colorizer, images: list[Path], counts: list[int], render_size: int, seed: int) -> dict[int, dict[str, float]]:
    """Mean PSNR RGB and AuC per number of hints (0: the automatic row)."""
    result = evaluate({"model": colorizer}, images, render_size=render_size, seed=seed, contact_images=0, hints=counts)
    means = {row: {metric: float(np.mean(values)) for metric, values in metrics.items()} for row, metrics in result.scores.items()}
    points = {count: means["model" if count == 0 else hint_row("model", count)] for count in counts}
    print(f"{len(result.images)} photos; gray baseline PSNR {means[GRAY]['psnr_rgb']:.2f} dB, AuC {means[GRAY]['auc_ab']:.3f}")
    print("| hints | PSNR RGB (dB) | AuC | colourfulness |\n|---|---|---|---|")
    for count, values in points.items():
        print(f"| {count} | {values['psnr_rgb']:.2f} | {values['auc_ab']:.3f} | {values['colorfulness']:.1f} |")
    return points


FOLLOW_GRID = [(0.1, 8.0), (0.25, 4.0), (0.25, 8.0), (0.25, 16.0), (0.5, 8.0), (0.7, 12.0), (1.5, 12.0)]


def follow_grid(colorizer: Colorizer, images: list[Path], counts: list[int], render_size: int, seed: int) -> None:
    """PSNR, colourfulness, AuC and false colour with `count` simulated hints (as `colorem evaluate --hints`
    draws them), the network alone and followed at each (reach, lightness) of FOLLOW_GRID."""
    truth = load_truth(images, render_size)
    print(f"{len(images)} photos, render {render_size}; defaults: reach {FOLLOW_REACH}, lightness {FOLLOW_LIGHTNESS}")
    print("| hints | follow (reach, lightness) | PSNR RGB (dB) | colourfulness | AuC | false % |\n|---|---|---|---|---|---|")
    for count in counts:
        alone, followed, first = {}, {setting: {} for setting in FOLLOW_GRID}, 0
        for size, (_, lab, _, l_small) in truth.items():
            hints = simulated_hints(render_l(lab[:, 1:], render_size), range(first, first + len(l_small)), count, seed)
            first += len(l_small)
            alone[size] = torch.cat([colorizer.predict_ab(l_small[start:start + 16], hints=hints[start:start + 16], follow=False)
                                     for start in range(0, len(l_small), 16)])
            for setting in FOLLOW_GRID:
                followed[setting][size] = follow_hints(alone[size], l_small, hints, *setting)
        for setting, ab_small in [("network alone", alone), *followed.items()]:
            print(f"| {count} | {setting} | " + " | ".join(f"{value:.4g}" for value in score(ab_small, truth, 1.0)) + " |")


DECODE_GRID = [0.25, 0.5, 1.0]  # hint_reach widths, as shares of the render size


def decode_grid(colorizer: Colorizer, images: list[Path], counts: list[int], render_size: int, seed: int) -> None:
    """PSNR, colourfulness, AuC and false colour with `count` simulated hints, the colours followed, for each way of
    decoding a hinted photo: the card's decoding, the network's own colours, or the network's own near hints."""
    truth = load_truth(images, render_size)
    vibrance, cast_removal = colorizer.vibrance, colorizer.cast_removal
    print(f"{len(images)} photos, render {render_size}; the card: vibrance {vibrance:g}, cast removal {cast_removal:g}; "
          f"default reach {DECODE_REACH}")
    print("| hints | decoding | PSNR RGB (dB) | colourfulness | AuC | false % |\n|---|---|---|---|---|---|")
    colorizer.vibrance, colorizer.cast_removal = 1.0, 0.0  # predict_ab then gives the network's own colours
    for count in counts:
        rows: dict[str, dict] = {}
        first = 0
        for size, (_, lab, _, l_small) in truth.items():
            hints = simulated_hints(render_l(lab[:, 1:], render_size), range(first, first + len(l_small)), count, seed)
            first += len(l_small)
            own = torch.cat([colorizer.predict_ab(l_small[start:start + 16], hints=hints[start:start + 16], follow=False)
                             for start in range(0, len(l_small), 16)])
            card = decode_ab(own, vibrance, cast_removal)
            ways = {"the card's everywhere": card, "the network's own everywhere": own}
            ways.update({f"the network's own near hints, reach {reach:g}": torch.lerp(card, own, hint_reach(l_small, hints, reach))
                         for reach in DECODE_GRID})
            for name, ab in ways.items():
                rows.setdefault(name, {})[size] = follow_hints(ab, l_small, hints)
        for name, ab_small in rows.items():
            print(f"| {count} | {name} | " + " | ".join(f"{value:.4g}" for value in score(ab_small, truth, 1.0)) + " |")
    colorizer.vibrance, colorizer.cast_removal = vibrance, cast_removal


FAR_BANDS = (0.0, 0.1, 0.25, 0.5, 2.0)  # distances from the nearest hint, as shares of the render size


def far_field(colorizer: Colorizer, images: list[Path], counts: list[int], render_size: int, seed: int) -> None:
    """Where a hint moves the colours, and whether for better: with `count` simulated hints, the pixels (at the render
    size) in bands of distance from the nearest hint; per band the mean ab distance from the photo's colour of the
    automatic colours and of the hinted ones (each as colorize makes them), and the shares of pixels the hints moved
    by more than 10 ab units towards the photo's colour and away from it."""
    truth = load_truth(images, render_size)
    print(f"{len(images)} photos, render {render_size}; colours as colorize makes them, with and without the hints")
    print("| hints | distance from the nearest hint | pixels | ab error, automatic | ab error, hinted | "
          "moved > 10 towards the photo | moved > 10 away from it |\n|---|---|---|---|---|---|---|")
    for count in counts:
        totals = torch.zeros(len(FAR_BANDS) - 1, 5, dtype=torch.float64)  # pixels, two error sums, towards, away
        first = 0
        for _, lab, _, l_small in truth.values():
            true_ab = render_l(lab[:, 1:], render_size)
            hints = simulated_hints(true_ab, range(first, first + len(l_small)), count, seed)
            first += len(l_small)
            automatic, hinted = (torch.cat([colorizer.predict_ab(l_small[start:start + 16], hints=None if given is None
                                                                 else given[start:start + 16])
                                            for start in range(0, len(l_small), 16)]) for given in (None, hints))
            errors = [(ab - true_ab).norm(dim=1) for ab in (automatic, hinted)]  # (N, R, R) each
            moved = (hinted - automatic).norm(dim=1) > 10
            distance = _hint_distance(hints)
            for band, (near, far) in enumerate(zip(FAR_BANDS, FAR_BANDS[1:])):
                inside = (distance >= near) & (distance < far)
                totals[band] += torch.tensor([inside.sum(), errors[0][inside].sum(), errors[1][inside].sum(),
                                              (inside & moved & (errors[1] < errors[0])).sum(),
                                              (inside & moved & (errors[1] > errors[0])).sum()], dtype=torch.float64)
        for (near, far), (pixels, automatic, hinted, towards, away) in zip(zip(FAR_BANDS, FAR_BANDS[1:]), totals.tolist()):
            band = f"{near:g}–{far:g}" if far < FAR_BANDS[-1] else f"≥ {near:g}"
            print(f"| {count} | {band} | {pixels / totals[:, 0].sum().item():.1%} | {automatic / pixels:.2f} | "
                  f"{hinted / pixels:.2f} | {towards / pixels:.2%} | {away / pixels:.2%} |")


def _hint_distance(hints: torch.Tensor) -> torch.Tensor:
    """(B, 3, R, R) hint input -> (B, R, R): each place's distance from the nearest hinted one, as a share of R."""
    size = hints.shape[-1]
    grid = torch.stack(torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij"), dim=-1).float()  # (R, R, 2)
    distances = []
    for mask in hints[:, 2]:
        points = mask.nonzero().float()  # (P, 2)
        nearest = torch.cdist(grid.flatten(0, 1), points).amin(dim=1) if len(points) else torch.full((size * size,), 1e9)
        distances.append(nearest.view(size, size) / size)
    return torch.stack(distances)


def plot(points: dict[int, dict[str, float]], path: str, title: str) -> None:
    """PSNR (left) and AuC (right) against the number of hints, drawn with PIL."""
    width, height, margin = 900, 380, 60
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    draw.text((margin, 10), title, fill="black")
    counts = sorted(points)
    panel = (width - 3 * margin) // 2
    for index, (metric, label, colour) in enumerate([("psnr_rgb", "PSNR RGB (dB)", "#1f77b4"), ("auc_ab", "AuC", "#d62728")]):
        left, top, bottom = margin + index * (panel + margin), 40, height - 40
        values = [points[count][metric] for count in counts]
        low, high = min(values), max(values)
        pad = (high - low) * 0.1 or abs(high) * 0.01 or 1.0
        low, high = low - pad, high + pad
        draw.rectangle([left, top, left + panel, bottom], outline="#888")
        draw.text((left, bottom + 18), f"{label} vs number of hints", fill="black")
        for fraction in (0.0, 0.5, 1.0):
            value = low + fraction * (high - low)
            y = bottom - fraction * (bottom - top)
            draw.line([left - 4, y, left, y], fill="#888")
            draw.text((left - margin + 6, y - 6), f"{value:.3g}", fill="#444")

        def position(count: int, value: float) -> tuple[float, float]:
            x = left + 10 + (panel - 20) * counts.index(count) / max(len(counts) - 1, 1)  # evenly spaced counts
            return x, bottom - (value - low) / (high - low) * (bottom - top)

        xy = [position(count, points[count][metric]) for count in counts]
        draw.line(xy, fill=colour, width=2)
        for count, (x, y) in zip(counts, xy):
            draw.ellipse([x - 3, y - 3, x + 3, y + 3], fill=colour)
            draw.text((x - 4, bottom + 4), str(count), fill="#444")
    image.save(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="default", help="weights (a hint model; others get a zero hint input)")
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--images", default=None, help="colour photos for the quality curve (skip the latency)")
    parser.add_argument("--counts", default=None, help="numbers of hints: the curve's (default 0,1,2,5,10,20), "
                        "the follow grid's (default 1,10) or the decode grid's (default 1,3,10)")
    parser.add_argument("--render-size", type=int, default=256)
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--plot", default=None, help="write the curve as a PNG")
    parser.add_argument("--follow-grid", action="store_true", help="score follow_hints' widths on --images")
    parser.add_argument("--decode-grid", action="store_true", help="score the decoding near hints on --images (a "
                        "folder or a .tar shard)")
    parser.add_argument("--far-field", action="store_true", help="where hints move the colours, and whether for "
                        "better, by distance from the nearest hint, on --images (a folder or a .tar shard)")
    args = parser.parse_args()

    colorizer = hint_colorizer(args.model, args.precision)
    if args.images and args.decode_grid:
        counts = [int(count) for count in (args.counts or "1,3,10").split(",")]
        with tempfile.TemporaryDirectory() as folder:
            decode_grid(colorizer, photos(args.images, Path(folder), args.limit), counts, args.render_size, args.seed)
        return
    if args.images and args.far_field:
        counts = [int(count) for count in (args.counts or "1,3").split(",")]
        with tempfile.TemporaryDirectory() as folder:
            far_field(colorizer, photos(args.images, Path(folder), args.limit), counts, args.render_size, args.seed)
        return
    if args.images and args.follow_grid:
        counts = [int(count) for count in (args.counts or "1,10").split(",")]
        follow_grid(colorizer, find_images(args.images, args.limit), counts, args.render_size, args.seed)
        return
    if args.images:
        counts = [int(count) for count in (args.counts or "0,1,2,5,10,20").split(",")]
        points = curve(colorizer, find_images(args.images, args.limit), counts, args.render_size, args.seed)
        if args.plot:
            plot(points, args.plot, f"{colorizer.card.name or args.model}: {args.images}, render {args.render_size}")
        return
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {colorizer.precision}, "
          f"render size {colorizer.render_size}, {args.repeats} runs each")
    print(f"load average before: {' '.join(f'{value:.1f}' for value in os.getloadavg())}")
    print("| case | median wall | median CPU time (all threads) |\n|---|---|---|")
    for label, (wall, cpu) in latency(colorizer, args.repeats):
        print(f"| {label} | {wall:.1f} ms | {cpu:.1f} ms |")
    print(f"load average after: {' '.join(f'{value:.1f}' for value in os.getloadavg())}")


if __name__ == "__main__":
    main()
