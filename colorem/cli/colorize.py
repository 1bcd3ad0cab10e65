"""`colorem colorize INPUT... -o OUT`: files, folders and globs; one model load per run."""

from __future__ import annotations

import argparse
import glob
import sys
from pathlib import Path

from tqdm import tqdm

from colorem.cli.common import add_model_arguments, load_colorizer
from colorem.errors import ColoremError
from colorem.imageio import FORMATS, IMAGE_EXTENSIONS, format_for, read_image, write_image

OUTPUT_FORMATS = ("same", "png", "jpg", "webp", "tif")


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, folders or glob patterns")
    parser.add_argument("-o", "--output", required=True,
                        help="output folder (or a file name when colorizing one file)")
    parser.add_argument("-r", "--recursive", action="store_true", help="descend into sub-folders (kept in the output)")
    parser.add_argument("--render-size", type=int, default=None, help="side of the square the network sees (default: the model's)")
    parser.add_argument("--saturation", type=float, default=1.0, help="scale the predicted colour (0 = gray, 1 = as predicted)")
    parser.add_argument("--temperature", type=float, default=None,
                        help="vibrance of classification models: annealed-mean temperature (lower = more vivid)")
    parser.add_argument("--format", default="same", choices=OUTPUT_FORMATS,
                        help="output format; 'same' keeps the input's (PNG when it cannot be written or has alpha)")
    parser.add_argument("--quality", type=int, default=92, help="JPEG/WebP quality")
    existing = parser.add_mutually_exclusive_group()
    existing.add_argument("--skip-existing", action="store_true", help="leave outputs that already exist (resume a run)")
    existing.add_argument("--overwrite", action="store_true", help="replace outputs that already exist")
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


def output_path(output: Path, relative: Path, chosen: str, source_format: str | None, has_alpha: bool) -> Path:
    if chosen == "same":
        extension = relative.suffix.lower().lstrip(".")
        if extension not in FORMATS or (has_alpha and FORMATS[extension] == "JPEG"):
            extension = "png"
    else:
        extension = chosen
    return output / relative.with_suffix(f".{extension}")


def run(args: argparse.Namespace) -> int:
    inputs = collect_inputs(args.inputs, args.recursive)
    if not inputs:
        print("colorem: nothing to colorize", file=sys.stderr)
        return 2
    output = Path(args.output)
    single_file = len(inputs) == 1 and output.suffix.lower().lstrip(".") in FORMATS
    colorizer = load_colorizer(args)
    failures: list[tuple[Path, str]] = []
    done = skipped = 0
    written: set[Path] = set()
    progress = tqdm(inputs, unit="img", disable=len(inputs) < 2, file=sys.stderr)
    for source, relative in progress:
        try:
            photo = read_image(source, max_pixels=colorizer.max_pixels)
            target = output if single_file else output_path(output, relative, args.format, photo.format, photo.alpha is not None)
            if target in written:
                raise ColoremError(f"two inputs map to the same output {target}")
            if target.exists() and not args.overwrite:
                if args.skip_existing:
                    skipped += 1
                    continue
                raise ColoremError(f"{target} exists (use --skip-existing or --overwrite)")
            result = colorizer.colorize(photo, args.render_size, args.saturation, args.temperature)
            write_image(result, target, quality=args.quality)
            written.add(target)
            done += 1
        except (ColoremError, ValueError) as error:
            failures.append((source, str(error)))
            progress.write(f"failed: {source}: {error}", file=sys.stderr)
    print(f"colorized {done}, skipped {skipped}, failed {len(failures)} -> {output}", file=sys.stderr)
    return 1 if failures else 0
