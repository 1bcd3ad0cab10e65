"""Scoring colorizers on a folder of colour photos: each photo is colorized by every model (and by the gray
baseline, a = b = 0) exactly as `colorem colorize` colorizes it, scored with colorem.metrics against the photo
itself, and summarized with bootstrap intervals into a Markdown table, a JSON summary, a per-image CSV and a
contact sheet.

photo ─▶ prepare_photo: its L at full and render size ─▶ predict_ab, each model ─▶ finish_rgb8: ab upsampled,
      joined with that L, keep-L gamut mapping, 8-bit RGB (the file the writer writes) ─▶ metrics per image
      against the photo's RGB and Lab ─▶ means and 95% intervals over images

With `hints`, models with a hint input get extra rows ("NAME +10 hints"): N points per photo revealed
from the true ab at the render size (colorem.train.hint_simulation.simulate_hints, seeded per photo).
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np
import torch
from PIL import Image, ImageDraw

from colorem.color import rgb_to_lab
from colorem.colorize import Colorizer
from colorem.errors import ColoremError, ImageReadError
from colorem.imageio import IMAGE_EXTENSIONS, read_image, write_image
from colorem.metrics import METRICS, colorfulness, score_batch
from colorem.stages import finish_rgb8, prepare_photo, render_l, upsample_ab
from colorem.train.hint_simulation import simulate_hints

GRAY = "gray"  # the baseline row: every pixel's ab is 0
MIN_SIDE = 7  # SSIM's window (colorem.metrics.ssim_rgb)
BOOTSTRAP_SAMPLES = 1000
CONTACT_IMAGES = 6  # rows of the contact sheet
EVAL_RENDER_SIZE = 256  # one size for every model compared, and the size the published figures use
CONTACT_TILE = 160  # side of one contact-sheet tile, pixels
LABELS = {  # column titles of the Markdown table, in METRICS order
    "psnr_rgb": "PSNR RGB (dB)", "ssim_rgb": "SSIM", "psnr_ab": "PSNR ab (dB)", "mse_ab": "MSE ab",
    "auc_ab": "AuC", "within_10": "≤10", "within_25": "≤25", "colorfulness": "CF", "delta_colorfulness": "ΔCF",
    "false_colour": "false %",
}
WORST_IMAGES = 5  # photos listed per model under the table, by false colour
HINT_PATCH = 3  # side of a simulated hint's patch at the render size (its colour is the patch's mean)


class NothingScoredError(ColoremError):
    """No photo could be scored; `failures` holds (photo, reason) for each one skipped, for the caller to list."""

    def __init__(self, failures: list[tuple[str, str]]):
        self.failures = failures
        super().__init__("no photo could be scored" + (f" ({len(failures)} skipped)" if failures else ""))


@dataclass
class Interval:
    """The mean over images of one metric, with its 95% bootstrap (percentile) interval."""

    mean: float
    low: float
    high: float


@dataclass
class Evaluation:
    """Scores of every row (the gray baseline first, then the models) on the same images."""

    images: list[str]  # names of the scored photos, in order
    scores: dict[str, dict[str, np.ndarray]]  # row -> metric -> (N,) per image
    original_colorfulness: np.ndarray  # (N,)
    summary: dict[str, dict[str, Interval]]  # row -> metric -> mean and interval
    original_summary: Interval
    failures: list[tuple[str, str]] = field(default_factory=list)  # (photo, reason) of skipped photos
    contact_sheet: Image.Image | None = None
    settings: dict = field(default_factory=dict)

    @property
    def rows(self) -> list[str]:
        return list(self.scores)


def find_images(folder: str | Path, limit: int | None = None) -> list[Path]:
    """The image files directly in `folder`, sorted by name; the first `limit` of them when given."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ColoremError(f"{folder}: not a folder of images")
    files = sorted(path for path in folder.iterdir() if path.is_file() and path.suffix.lower() in IMAGE_EXTENSIONS)
    return files[:limit] if limit is not None else files


def bootstrap(values: np.ndarray, samples: int = BOOTSTRAP_SAMPLES, seed: int = 0) -> Interval:
    """Mean of `values` and the 2.5th/97.5th percentiles of the means of `samples` resamples (with
    replacement, seeded) — the same seed draws the same resamples, so rows are compared on paired draws."""
    values = np.asarray(values, dtype=np.float64)
    if len(values) == 0:
        return Interval(math.nan, math.nan, math.nan)
    draws = np.random.default_rng(seed).integers(0, len(values), size=(samples, len(values)))
    means = values[draws].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return Interval(float(values.mean()), float(low), float(high))


def contact_selection(count: int, size: int = CONTACT_IMAGES, seed: int = 0) -> list[int]:
    """A fixed, seeded choice of image indices for the contact sheet, in order."""
    return sorted(np.random.default_rng(seed).choice(count, size=min(size, count), replace=False).tolist())


class _Sheet:
    """Collects tiles (gray | each model | original) for the selected photos and draws the sheet."""

    def __init__(self, columns: list[str]):
        self.columns = columns
        self.rows: list[list[Image.Image]] = []

    @staticmethod
    def tile(rgb: torch.Tensor) -> Image.Image:  # (3, H, W) in [0, 1]
        pixels = (rgb.permute(1, 2, 0).clamp(0, 1) * 255 + 0.5).to(torch.uint8).numpy()
        image = Image.fromarray(pixels, "RGB")
        image.thumbnail((CONTACT_TILE, CONTACT_TILE), Image.Resampling.LANCZOS)
        return image

    def add(self, tiles: list[Image.Image]) -> None:
        self.rows.append(tiles)

    def draw(self) -> Image.Image | None:
        if not self.rows:
            return None
        header, gap = 20, 4
        width = len(self.columns) * (CONTACT_TILE + gap) + gap
        height = header + len(self.rows) * (CONTACT_TILE + gap) + gap
        sheet = Image.new("RGB", (width, height), "white")
        draw = ImageDraw.Draw(sheet)
        for column, title in enumerate(self.columns):
            draw.text((gap + column * (CONTACT_TILE + gap) + 2, 4), title[:24], fill="black")
        for row, tiles in enumerate(self.rows):
            for column, tile in enumerate(tiles):
                left = gap + column * (CONTACT_TILE + gap) + (CONTACT_TILE - tile.width) // 2
                top = header + row * (CONTACT_TILE + gap) + (CONTACT_TILE - tile.height) // 2
                sheet.paste(tile, (left, top))
        return sheet


@dataclass
class Truth:
    """A colour photo as evaluate scores it: the photo itself, and the L colorize takes from it."""

    index: int  # its place in the list of images
    name: str
    rgb: torch.Tensor  # (1, 3, H, W) in [0, 1]
    l_full: torch.Tensor  # (1, 1, H, W): the L the colours are joined with, as Colorizer.prepare computes it
    l_small: torch.Tensor  # (1, 1, R, R): the L the network sees

    @property
    def size(self) -> tuple[int, int]:
        """(height, width)."""
        return tuple(self.rgb.shape[-2:])


def read_truth(path: str | Path, render_size: int, index: int = 0) -> Truth:
    """One colour photo -> its Truth (its Lab, the true ab, is rgb_to_lab(truth.rgb), best batched); an
    unreadable file, one smaller than SSIM's window, or one with no colour to score (black and white: the
    gray baseline would score an infinite PSNR on it) raises ImageReadError, so it is skipped and listed."""
    photo = read_image(path)
    width, height = photo.size
    if min(width, height) < MIN_SIDE:
        raise ImageReadError(str(path), f"{width}x{height} is smaller than the {MIN_SIDE}x{MIN_SIDE} that SSIM needs")
    rgb = torch.from_numpy(photo.rgb).permute(2, 0, 1)[None]
    if photo.gray is not None or (rgb.amax(dim=1) - rgb.amin(dim=1)).max() < 1.5 / 255:
        raise ImageReadError(str(path), "a black-and-white photo: there is no colour to score")
    prepared = prepare_photo(photo, render_size)
    return Truth(index, Path(path).name, rgb, prepared.l_rows(0, rgb.shape[-2]), prepared.l_small)


def as_written(l_full: torch.Tensor, ab_small: torch.Tensor, saturation: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """What `colorem colorize` writes for predicted ab (B, 2, R, R) and full-resolution L (B, 1, H, W): the
    result's RGB (B, 3, H, W) in [0, 1], exactly the 8-bit file's values (keep-L gamut mapping), and the ab
    (B, 2, H, W) it joined with L (scaled by `saturation`, upsampled, clamped)."""
    rgb8 = finish_rgb8(l_full, ab_small, saturation)  # (B, H, W, 3) uint8
    return rgb8.permute(0, 3, 1, 2).float().div_(255.0), upsample_ab(ab_small * saturation, tuple(l_full.shape[-2:]))


def hint_row(name: str, count: int) -> str:
    return f"{name} +{count} hint{'' if count == 1 else 's'}"


def simulated_hints(ab_small: torch.Tensor, indices: Sequence[int], count: int, seed: int) -> torch.Tensor:
    """True ab at the render size (B, 2, R, R) -> a hint input (B, 3, R, R) of `count` points per photo.
    Each photo's points depend only on (seed, its index), so runs compare and batch size does not matter,
    and the first N points of a larger count are the N of a smaller one."""
    return torch.cat([simulate_hints(ab_small[position:position + 1],
                                     torch.Generator().manual_seed(seed * 1_000_003 + index),
                                     counts=[count], patch_size=HINT_PATCH)
                      for position, index in enumerate(indices)])


def evaluate(colorizers: Mapping[str, Colorizer], images: Sequence[str | Path], *, render_size: int = EVAL_RENDER_SIZE,
             batch_size: int = 16, seed: int = 0, contact_images: int = CONTACT_IMAGES,
             progress: Callable[[int], None] | None = None, hints: Sequence[int] = ()) -> Evaluation:
    """Score every colorizer (name -> Colorizer, each already loaded) and the gray baseline on `images`.

    Each photo is colorized at render_size as Colorizer.colorize does it (its L rendered for the network,
    the predicted ab upsampled and joined with its full-resolution L, written as 8-bit sRGB) and compared
    with the photo. Forward passes run in batches of batch_size. Unreadable photos are skipped and listed in
    `failures`; `progress(n)` is called after every batch with the number of photos it consumed. `hints`
    (numbers of points, e.g. [1, 10]) adds a row per count for every model with a hint input (0 is the
    automatic row itself).
    """
    hinted = _hinted_rows(colorizers, batch_size, hints)
    tally = _Tally([GRAY, *colorizers, *hinted], set(contact_selection(len(images), contact_images, seed)))
    for start in range(0, len(images), batch_size):
        photos = _read_batch(images, range(start, min(start + batch_size, len(images))), render_size, tally.failures)
        if photos:
            runs = _same_size_runs(photos)
            labs = [rgb_to_lab(torch.cat([photo.rgb for photo in photos[run]])) for run in runs]  # (G, 3, H, W) each
            ab_small = _predictions(colorizers, hinted, photos, labs, render_size, seed)
            for run, lab in zip(runs, labs):
                tally.add(photos[run], lab, {row: ab[run] for row, ab in ab_small.items()})
        if progress is not None:
            progress(min(batch_size, len(images) - start))
    settings = {"render_size": render_size, "batch_size": batch_size, "seed": seed,
                "bootstrap_samples": BOOTSTRAP_SAMPLES, "interval": "95% percentile bootstrap over images",
                "auc_thresholds": "0..150 step 1 (trapezoid, /150)",
                "result": "as `colorem colorize` writes it: ab upsampled and joined with the photo's L, "
                          "out-of-gamut colours losing chroma (not lightness), 8-bit sRGB",
                "hints": {"counts": sorted(set(hints)), "patch_size": HINT_PATCH,
                          "simulated": "per photo from the true ab at the render size, seeded by (seed, photo index)"},
                "models": {name: {"name": c.card.name, "architecture": c.card.architecture, "backend": c.backend,
                                  "precision": c.precision, "device": str(c.device)} for name, c in colorizers.items()}}
    return tally.evaluation(seed, settings)


def _hinted_rows(colorizers: Mapping[str, Colorizer], batch_size: int, hints: Sequence[int]) -> dict[str, tuple[str, int]]:
    """The arguments checked; the hinted rows, "NAME +N hints" -> (NAME, N)."""
    if GRAY in colorizers:
        raise ValueError(f"{GRAY!r} is the baseline's row name; give the model another name")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, not {batch_size}")
    if any(not isinstance(count, int) or count < 0 for count in hints):
        raise ValueError(f"hints must be counts of 0 or more points, not {list(hints)}")
    if hints and not any(colorizer.accepts_hints for colorizer in colorizers.values()):
        raise ColoremError("simulated hints need a model with a hint input (none of these has one)")
    return {hint_row(name, count): (name, count) for name, colorizer in colorizers.items()
            if colorizer.accepts_hints for count in sorted(set(hints)) if count > 0}


def _read_batch(images: Sequence[str | Path], indices: range, render_size: int,
                failures: list[tuple[str, str]]) -> list[Truth]:
    """The readable photos of one batch, those of one size next to each other (sizes in order of first
    appearance), so colour math and metrics run batched where sizes agree; unreadable ones go to `failures`."""
    photos = []
    for index in indices:
        try:
            photos.append(read_truth(images[index], render_size, index))
        except ImageReadError as error:
            failures.append((str(images[index]), error.reason))
    sizes = list(dict.fromkeys(photo.size for photo in photos))
    return sorted(photos, key=lambda photo: sizes.index(photo.size))


def _same_size_runs(photos: list[Truth]) -> list[slice]:
    """The runs of photos of one size in a batch as _read_batch orders it."""
    starts = [i for i in range(len(photos)) if i == 0 or photos[i].size != photos[i - 1].size]
    return [slice(start, end) for start, end in zip(starts, starts[1:] + [len(photos)])]


def _predictions(colorizers: Mapping[str, Colorizer], hinted: dict[str, tuple[str, int]], photos: list[Truth],
                 labs: list[torch.Tensor], render_size: int, seed: int) -> dict[str, torch.Tensor]:
    """Every row's ab at the render size for one batch, (B, 2, R, R): gray's zeros, each model's, each hinted
    row's (its hints drawn from the true ab, `labs` per run of one size)."""
    l_small = torch.cat([photo.l_small for photo in photos])
    ab_small = {GRAY: torch.zeros(len(photos), 2, render_size, render_size)}
    ab_small.update({name: colorizer.predict_ab(l_small) for name, colorizer in colorizers.items()})
    if hinted:
        ab_true_small = torch.cat([render_l(lab[:, 1:], render_size) for lab in labs])
        indices = [photo.index for photo in photos]
        for row, (name, count) in hinted.items():
            ab_small[row] = colorizers[name].predict_ab(l_small, hints=simulated_hints(ab_true_small, indices, count, seed))
    return ab_small


class _Tally:
    """Per-image scores of every row, the originals' colourfulness, the photos' names, the unreadable ones
    and the contact sheet, filled a batch at a time."""

    def __init__(self, rows: list[str], selected: set[int]):
        self.rows, self.selected = rows, selected
        self.scores: dict[str, dict[str, list[np.ndarray]]] = {row: {name: [] for name in METRICS} for row in rows}
        self.original_colorfulness: list[np.ndarray] = []
        self.names: list[str] = []
        self.failures: list[tuple[str, str]] = []
        self.sheet = _Sheet([*rows, "original"])

    def add(self, photos: list[Truth], lab_true: torch.Tensor, ab_small: dict[str, torch.Tensor]) -> None:
        """Score photos of one size: their Lab (G, 3, H, W), each row's predicted ab (G, 2, R, R)."""
        rgb_true, l_full = torch.cat([photo.rgb for photo in photos]), torch.cat([photo.l_full for photo in photos])
        colorfulness_true = colorfulness(rgb_true)
        results = {row: as_written(l_full, ab) for row, ab in ab_small.items()}  # row -> (rgb, ab) at full size
        for row, (rgb, ab) in results.items():
            for metric, values in score_batch(ab, rgb, lab_true, rgb_true, colorfulness_true).items():
                self.scores[row][metric].append(values.numpy())
        self.original_colorfulness.append(colorfulness_true.numpy())
        self.names += [photo.name for photo in photos]
        for position, photo in enumerate(photos):
            if photo.index in self.selected:
                self.sheet.add([_Sheet.tile(results[row][0][position]) for row in self.rows] + [_Sheet.tile(photo.rgb[0])])

    def evaluation(self, seed: int, settings: dict) -> Evaluation:
        if not self.names:
            raise NothingScoredError(self.failures)
        joined = {row: {metric: np.concatenate(parts) for metric, parts in metrics.items()}
                  for row, metrics in self.scores.items()}
        original = np.concatenate(self.original_colorfulness)
        summary = {row: {metric: bootstrap(values, seed=seed) for metric, values in metrics.items()}
                   for row, metrics in joined.items()}
        return Evaluation(self.names, joined, original, summary, bootstrap(original, seed=seed), self.failures,
                          self.sheet.draw(), settings)


# --- the report -----------------------------------------------------------------------------------

DIGITS = {"psnr_rgb": 2, "psnr_ab": 2, "mse_ab": 1, "colorfulness": 2, "delta_colorfulness": 2,
          "false_colour": 2}  # others: 3


def _cell(interval: Interval, metric: str) -> str:
    digits = DIGITS.get(metric, 3)
    return f"{interval.mean:.{digits}f} ({interval.low:.{digits}f}–{interval.high:.{digits}f})"


def markdown_table(evaluation: Evaluation) -> str:
    """The summary as a Markdown table: one row per model (gray baseline first), mean (95% interval)."""
    lines = ["| model | " + " | ".join(LABELS[metric] for metric in METRICS) + " |",
             "|---|" + "---:|" * len(METRICS)]
    for row, metrics in evaluation.summary.items():
        lines.append(f"| {row} | " + " | ".join(_cell(metrics[metric], metric) for metric in METRICS) + " |")
    original = evaluation.original_summary
    lines += ["", f"{len(evaluation.images)} photos; originals' colourfulness {_cell(original, 'colorfulness')}. "
              "Mean over photos (95% bootstrap interval). PSNR/SSIM: the result as `colorem colorize` writes it, RGB in [0, 1]; "
              "AuC: ab error CDF over 0..150; ≤10/≤25: share of pixels with ab error within 10/25; "
              "CF: colourfulness (Hasler & Süsstrunk); ΔCF = CF(result) − CF(original); "
              "false %: share of pixels neutral in the original (chroma < 8) painted with chroma ≥ 20 (blotches)."]
    for row in evaluation.rows[1:]:
        worst = worst_images(evaluation, row)
        if worst:
            lines += ["", f"Most false colour, {row}: " + ", ".join(f"{name} {value:.1f}%" for name, value in worst)]
    return "\n".join(lines) + "\n"


def worst_images(evaluation: Evaluation, row: str, count: int = WORST_IMAGES) -> list[tuple[str, float]]:
    """The photos with the most false colour (blotches) for one row, worst first, those above 0 only."""
    values = evaluation.scores[row]["false_colour"]
    order = np.argsort(-values, kind="stable")[:count]
    return [(evaluation.images[index], float(values[index])) for index in order if values[index] > 0]


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None  # JSON has no inf/nan (a perfect PSNR is inf)


def summary_json(evaluation: Evaluation) -> dict:
    """The summary as plain JSON-ready data."""
    def interval(value: Interval) -> dict:
        return {"mean": _finite(value.mean), "ci95": [_finite(value.low), _finite(value.high)]}

    return {
        "images": len(evaluation.images),
        "rows": evaluation.rows,
        "metrics": {row: {metric: interval(value) for metric, value in metrics.items()}
                    for row, metrics in evaluation.summary.items()},
        "original_colorfulness": interval(evaluation.original_summary),
        "failures": [{"image": image, "reason": reason} for image, reason in evaluation.failures],
        "most_false_colour": {row: [{"image": name, "false_colour": value} for name, value in worst_images(evaluation, row)]
                              for row in evaluation.rows[1:]},
        "settings": evaluation.settings,
    }


def write_report(evaluation: Evaluation, folder: str | Path) -> dict[str, Path]:
    """Write results.md, results.json, per_image.csv and contact_sheet.png into `folder`; returns the paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"markdown": folder / "results.md", "json": folder / "results.json", "csv": folder / "per_image.csv"}
    paths["markdown"].write_text(markdown_table(evaluation), encoding="utf-8")
    paths["json"].write_text(json.dumps(summary_json(evaluation), indent=2, allow_nan=False) + "\n", encoding="utf-8")
    with open(paths["csv"], "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["image", "model", *METRICS, "original_colorfulness"])
        for row in evaluation.rows:
            for index, image in enumerate(evaluation.images):
                values = [f"{evaluation.scores[row][metric][index]:.6g}" for metric in METRICS]
                writer.writerow([image, row, *values, f"{evaluation.original_colorfulness[index]:.6g}"])
    if evaluation.contact_sheet is not None:
        paths["contact_sheet"] = write_image(evaluation.contact_sheet, folder / "contact_sheet.png")
    return paths
