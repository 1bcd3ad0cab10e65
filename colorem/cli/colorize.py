"""`colorem colorize INPUT... -o OUT`: files, folders and globs, streamed through one loaded model."""

from __future__ import annotations

import argparse
import glob
import os
import sys
from pathlib import Path

from tqdm import tqdm

from colorem.batch import BatchOptions, colorize_files, rank_share
from colorem.cli.common import add_model_arguments, load_colorizer
from colorem.hints import Hint, HintError, parse_hint_argument, parse_hints_json
from colorem.imageio import FORMATS, IMAGE_EXTENSIONS

OUTPUT_FORMATS = ("same", "png", "jpg", "webp", "tif")


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, folders or glob patterns")
    parser.add_argument("-o", "--output", required=True,
                        help="output folder (or a file name when colorizing one file)")
    parser.add_argument("-r", "--recursive", action="store_true", help="descend into sub-folders (kept in the output)")
    parser.add_argument("--render-size", type=int, default=None, help="side of the square the network sees (default: the model's)")
    parser.add_argument("--saturation", type=float, default=1.0, help="scale the predicted colour (0 = gray, 1 = as predicted)")
    parser.add_argument("--temperature", type=float, default=None,
                        help="classification models: annealed-mean temperature, between the predicted "
                             "distribution's mode (near 0) and its mean (1); the model card says which is more vivid")
    parser.add_argument("--format", default="same", choices=OUTPUT_FORMATS,
                        help="output format; 'same' keeps the input's (PNG when it cannot be written or has alpha)")
    parser.add_argument("--quality", type=int, default=92, help="JPEG/WebP quality")
    existing = parser.add_mutually_exclusive_group()
    existing.add_argument("--skip-existing", action="store_true", help="leave outputs that already exist (resume a run)")
    existing.add_argument("--overwrite", action="store_true", help="replace outputs that already exist")
    parser.add_argument("--hint", action="append", default=[], metavar="X,Y,COLOR",
                        help="a colour hint for a model with a hint input: the pixel X,Y of the photo (0,0 at the "
                             "top left) is COLOR (sRGB hex), e.g. --hint 120,80,#3a6ea5; repeatable; one input photo only")
    parser.add_argument("--hints", default=None, metavar="FILE",
                        help='colour hints from a JSON file: [{"x": 120, "y": 80, "color": "#3a6ea5"}, ...] '
                             '(or {"hints": [...]}), as the web page exports them')
    parser.add_argument("--batch-size", type=int, default=8, help="photos per forward pass")
    parser.add_argument("--workers", type=int, default=None, help="decoding processes (default: automatic)")
    parser.add_argument("--backend", default="auto", choices=("auto", "torch", "onnxruntime"),
                        help="inference backend (auto: ONNX Runtime for fp32 on CPU when an exported .onnx is beside the weights)")
    add_model_arguments(parser)
    parser.set_defaults(func=run)


def collect_inputs(patterns: list[str], recursive: bool) -> list[tuple[Path, Path]]:
    """(file, path relative to the output folder) for every image the patterns name, in order."""
    found: list[tuple[Path, Path]] = []
    for pattern in patterns:
        path = Path(pattern)
        if path.is_dir():
            walker = path.rglob("*") if recursive else path.glob("*")
            files = sorted(p for p in walker if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
            found += [(file, file.relative_to(path)) for file in files]
        elif path.exists():
            found.append((path, Path(path.name)))
        else:
            matches = sorted(glob.glob(pattern, recursive=recursive))
            if not matches:
                found.append((path, Path(path.name)))  # reported as missing, not silently dropped
            found += [(Path(match), Path(Path(match).name)) for match in matches if Path(match).is_file()]
    return found


def read_hints(args: argparse.Namespace) -> tuple[Hint, ...]:
    """--hints FILE then every --hint, checked (a bad one is a HintError: exit 2)."""
    hints: list[Hint] = []
    if args.hints is not None:
        try:
            text = Path(args.hints).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise HintError(f"cannot read the hints file {args.hints}: {getattr(error, 'strerror', None) or error}") from None
        hints += parse_hints_json(text)
    hints += [parse_hint_argument(text) for text in args.hint]
    return tuple(hints)


def run(args: argparse.Namespace) -> int:
    hints = read_hints(args)
    inputs = collect_inputs(args.inputs, args.recursive)
    if not inputs:
        print("colorem: nothing to colorize", file=sys.stderr)
        return 2
    if hints and len(inputs) > 1:
        raise HintError(f"hints are in one photo's pixels: give exactly one input photo with --hint/--hints, not {len(inputs)}")
    output = Path(args.output)
    single_file = len(inputs) == 1 and output.suffix.lower().lstrip(".") in FORMATS
    inputs = rank_share(inputs)  # under torchrun, this rank's share; everything otherwise
    if "LOCAL_RANK" in os.environ and args.device is None:
        import torch

        if torch.cuda.is_available():
            args.device = f"cuda:{os.environ['LOCAL_RANK']}"
    colorizer = load_colorizer(args, backend=args.backend)
    options = BatchOptions(output=output, format=args.format, render_size=args.render_size, saturation=args.saturation,
                           temperature=args.temperature, quality=args.quality, skip_existing=args.skip_existing,
                           overwrite=args.overwrite, batch_size=args.batch_size, workers=args.workers,
                           single_file=single_file, hints=hints)
    counts = {"done": 0, "skipped": 0, "failed": 0}
    with tqdm(total=len(inputs), unit="img", disable=len(inputs) < 2, file=sys.stderr, dynamic_ncols=True) as progress:
        for result in colorize_files(colorizer, inputs, options):
            counts[result.status] += 1
            if result.status == "failed":
                progress.write(f"failed: {result.source}: {result.error}", file=sys.stderr)
            progress.update()
    print(f"colorized {counts['done']}, skipped {counts['skipped']}, failed {counts['failed']} -> {output}", file=sys.stderr)
    return 1 if counts["failed"] else 0
