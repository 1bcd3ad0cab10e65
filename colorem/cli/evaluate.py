"""`colorem evaluate [--model M --model M2 ...] --images DIR`: score models next to the gray baseline."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from tqdm import tqdm

from colorem.cli.common import add_model_arguments, load_colorizer, ranged
from colorem.errors import ColoremError
from colorem.limits import RENDER_SIZE
from colorem.outputs import prepare_output
from colorem.evaluate import (CONTACT_IMAGES, EVAL_RENDER_SIZE, GRAY, NothingScoredError, evaluate, find_images,
                              markdown_table, write_report)


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", action="append", default=None, metavar="NAME_OR_PATH",
                        help="packaged weights name or a .safetensors path; repeat to compare several models "
                             "(default: the shipped default model)")
    parser.add_argument("--images", required=True, help="folder of colour photos (the ground truth)")
    parser.add_argument("--render-size", type=ranged(int, *RENDER_SIZE), default=EVAL_RENDER_SIZE,
                        help="side of the square every network sees (default: %(default)s, whatever each model's card "
                             "says, so models are compared alike; the published figures are at 256)")
    parser.add_argument("--out", default="colorem-evaluation",
                        help="folder for results.md, results.json, per_image.csv and contact_sheet.png")
    parser.add_argument("--limit", type=ranged(int, 1), default=None, help="score only the first N photos (by name)")
    parser.add_argument("--batch-size", type=ranged(int, 1), default=16, help="photos per forward pass")
    parser.add_argument("--seed", type=ranged(int, 0, 2**32 - 1), default=0, help="seed of the bootstrap and of the contact-sheet choice")
    parser.add_argument("--contact-images", type=ranged(int, 0), default=CONTACT_IMAGES,
                        help=f"photos (rows) on the contact sheet; 0 = none (default {CONTACT_IMAGES})")
    parser.add_argument("--hints", default=None, metavar="N[,N...]",
                        help="also score models with a hint input given N colour hints per photo, simulated "
                             "from the true colours (seeded by --seed); a list such as 0,1,2,5,10,20 gives the "
                             "curve, one row per count ('NAME +10 hints')")
    add_model_arguments(parser, model=False)  # --model is repeatable here
    parser.set_defaults(func=run)


def row_names(models: list[str]) -> list[str]:
    """Table row names: the file stem (or packaged name), made unique and never 'gray'."""
    names: list[str] = []
    for model in models:
        base = Path(model).stem if model.endswith(".safetensors") else Path(model).name or model
        name, count = base, 1
        while name in names or name == GRAY:
            count += 1
            name = f"{base}-{count}"
        names.append(name)
    return names


def hint_counts(text: str | None) -> list[int]:
    if text is None:
        return []
    try:
        counts = [int(part) for part in text.split(",")]
    except ValueError:
        counts = [-1]
    if not counts or min(counts) < 0:
        raise ColoremError(f"--hints {text}: expected numbers of hints such as 10 or 0,1,2,5,10,20")
    return counts


def run(args: argparse.Namespace) -> int:
    models = args.model or ["default"]
    hints = hint_counts(args.hints)
    images = find_images(args.images, args.limit)
    if not images:
        raise ColoremError(f"no images in {args.images}")
    started = time.perf_counter()
    colorizers = {name: load_colorizer(args, model) for name, model in zip(row_names(models), models)}
    if Path(args.out).resolve() == Path(args.images).resolve():  # the report would be scored as a photo next time
        raise ColoremError(f"--out {args.out} is the --images folder; write the report elsewhere")
    prepare_output(Path(args.out), single_file=False, option="--out")  # a bad --out is found now, not after the scoring
    try:
        with tqdm(total=len(images), unit="img", file=sys.stderr, disable=len(images) < 2) as progress:
            evaluation = evaluate(colorizers, images, render_size=args.render_size, batch_size=args.batch_size,
                                  seed=args.seed, contact_images=args.contact_images, progress=progress.update,
                                  hints=hints)
    except NothingScoredError as error:  # the reasons, as when some photos score, then the error
        for image, reason in error.failures:
            print(f"colorem: skipped {image}: {reason}", file=sys.stderr)
        raise
    paths = write_report(evaluation, args.out)
    for image, reason in evaluation.failures:
        print(f"colorem: skipped {image}: {reason}", file=sys.stderr)
    print(markdown_table(evaluation))
    print(f"{len(evaluation.images)} photos in {time.perf_counter() - started:.1f} s; report in {Path(args.out)}/ "
          f"({', '.join(path.name for path in paths.values())})")
    return 1 if evaluation.failures else 0  # as `colorem colorize`: 1 when any photo could not be read
