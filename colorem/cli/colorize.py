"""`colorem colorize INPUT... -o OUT`: files, folders and globs, streamed through one loaded model."""

from __future__ import annotations

import argparse
import glob
import os
import sys
from pathlib import Path

from tqdm import tqdm

from colorem.cli.common import (add_max_pixels, add_model_arguments, check_inputs, load_colorizer, prepare_output, ranged,
                                refuse_writing_over_inputs)
from colorem.colorize import Colorizer
from colorem.errors import ColoremError, OptionError
from colorem.folder import (FolderOptions, ItemResult, colorize_files, failure_reason, rank_share, split_existing,
                            target_for)
from colorem.hints import Hint, HintError, Hints, as_hints, check_inside, parse_hint_argument, read_hints_json
from colorem.imageio import FORMATS, IMAGE_EXTENSIONS, QUALITY_RANGE, image_size, write_image
from colorem.limits import RENDER_SIZE, SATURATION
from colorem.video import is_video, sniff_video

OUTPUT_FORMATS = ("same", "png", "jpg", "webp", "tif")


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, folders or glob patterns")
    parser.add_argument("-o", "--output", required=True,
                        help="output folder (or a file name when colorizing one file)")
    parser.add_argument("-r", "--recursive", action="store_true", help="descend into sub-folders (kept in the output)")
    parser.add_argument("--render-size", type=ranged(int, *RENDER_SIZE), default=None,
                        help="side of the square the network sees, %d to %d (default: the model's)" % RENDER_SIZE)
    parser.add_argument("--saturation", type=ranged(float, *SATURATION), default=1.0,
                        help="scale the predicted colour, %g to %g (0 = gray, 1 = as predicted)" % SATURATION)
    parser.add_argument("--temperature", type=float, default=None,
                        help="classification models: annealed-mean temperature, between the predicted "
                             "distribution's mode (near 0) and its mean (1); the model card says which is more vivid")
    parser.add_argument("--format", default="same", choices=OUTPUT_FORMATS,
                        help="output format; 'same' keeps the input's (PNG for GIF input, and for JPEG with alpha)")
    parser.add_argument("--quality", type=ranged(int, *QUALITY_RANGE), default=92,
                        help="JPEG/WebP quality, %d to %d (default: %%(default)s)" % QUALITY_RANGE)
    existing = parser.add_mutually_exclusive_group()
    existing.add_argument("--skip-existing", action="store_true",
                          help="leave outputs that already exist and count them as skipped (the default: a rerun resumes)")
    existing.add_argument("--overwrite", action="store_true", help="replace outputs that already exist")
    parser.add_argument("--hint", action="append", default=[], metavar="X,Y,COLOR",
                        help="a colour hint for a model with a hint input: the pixel X,Y of the photo (0,0 at the "
                             "top left) is COLOR (sRGB hex or a CSS name), e.g. --hint 120,80,#3a6ea5 or 120,80,steelblue; "
                             "repeatable; one input photo only")
    parser.add_argument("--hints", default=None, metavar="FILE",
                        help='colour hints from a JSON file: [{"x": 120, "y": 80, "color": "#3a6ea5"}, ...] '
                             '(or {"hints": [...]}), as the web page exports them')
    parser.add_argument("--batch-size", type=ranged(int, 1), default=8, help="photos per forward pass")
    parser.add_argument("--workers", type=ranged(int, 0), default=None, help="decoding processes (default: automatic)")
    parser.add_argument("--backend", default="auto", choices=("auto", "torch", "onnxruntime"),
                        help="inference backend (auto: ONNX Runtime for fp32 on CPU when a .onnx exported from these weights is beside them)")
    add_max_pixels(parser)
    add_model_arguments(parser)
    parser.set_defaults(func=run)


def collect_inputs(patterns: list[str], recursive: bool, output: Path | None = None) -> tuple[list[tuple[Path, Path]], list[str]]:
    """(file, path relative to the output folder) for every image the patterns name, in order; and the glob
    patterns that matched no file. An `output` folder inside an input folder is not read, so a rerun with -r
    does not colorize its own results."""
    found: list[tuple[Path, Path]] = []
    unmatched: list[str] = []
    # Several folders keep their names in the output (cam/2019 and cam/2020 -> out/2019/, out/2020/), so
    # cameras' repeated file names (IMG_0001.jpg) do not collide; one folder's photos go straight into -o.
    several_folders = sum(Path(pattern).is_dir() for pattern in patterns) > 1
    for pattern in patterns:
        path = Path(pattern)
        if path.is_dir():
            walker = path.rglob("*") if recursive else path.glob("*")
            results = output.resolve() if output is not None and output.resolve() != path.resolve() else None
            # a broken link is listed too (and reported as failed): never silently left out
            files = sorted(p for p in walker if (p.is_file() or p.is_symlink() and not p.exists())
                           and p.suffix.lower() in IMAGE_EXTENSIONS
                           and not (results and p.parent.resolve().is_relative_to(results)))
            prefix = Path(path.resolve().name) if several_folders else Path()
            found += [(file, prefix / file.relative_to(path)) for file in files]
        elif path.exists() or path.is_symlink() or not glob.has_magic(pattern):
            # a file, or a name that is not a pattern: a missing file, broken link or link loop is reported
            # as failed with its reason (read_image's), never silently dropped
            found.append((path, Path(path.name)))
        else:
            matches = sorted(glob.glob(pattern, recursive=recursive))
            if not matches and glob.escape(pattern) != pattern:
                unmatched.append(pattern)
            elif not matches:
                found.append((path, Path(path.name)))  # reported as missing, not silently dropped
            root = _pattern_root(pattern)  # 'cam/**/*.jpg' keeps the folders below cam/ in the output
            found += [(Path(match), Path(match).relative_to(root)) for match in matches if not Path(match).is_dir()]
    # A file named twice (a.jpg and ./a.jpg, a folder and a file in it, a link loop under **) is done once, under
    # its shortest name.
    unique: dict[Path, tuple[Path, Path]] = {}
    for file, relative in found:
        key = file.resolve() if file.exists() else file
        if key not in unique or len(relative.parts) < len(unique[key][1].parts):
            unique[key] = (file, relative)
    return list(unique.values()), unmatched


def _pattern_root(pattern: str) -> Path:
    """The folder a glob pattern starts from: its leading parts without wildcards ('.' for '*.jpg')."""
    fixed: list[str] = []
    for part in Path(pattern).parts:
        if glob.has_magic(part):
            break
        fixed.append(part)
    return Path(*fixed) if fixed else Path(".")


def read_hints(args: argparse.Namespace) -> Hints:
    """--hints FILE then every --hint, checked together (a bad one is a HintError: exit 2)."""
    hints: list = []
    if args.hints is not None:
        try:
            text = Path(args.hints).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise HintError(f"cannot read the hints file {args.hints}: {getattr(error, 'strerror', None) or error}") from None
        hints += read_hints_json(text)
    hints += [parse_hint_argument(text) for text in args.hint]
    return as_hints(hints)


def run(args: argparse.Namespace) -> int:
    hints = read_hints(args)
    check_inputs(args.inputs)
    output = Path(args.output)
    extension = output.suffix.lower().lstrip(".")
    single_file = extension in FORMATS and not output.is_dir()
    inputs, unmatched = collect_inputs(args.inputs, args.recursive, output=None if single_file else output)
    if not inputs and not unmatched:
        print("colorem: nothing to colorize", file=sys.stderr)
        return 2
    videos = [source for source, _ in inputs if source.suffix.lower() not in IMAGE_EXTENSIONS and sniff_video(source)]
    if videos:  # else -o out.mp4 became a folder and the video failed as "not a recognised image format"
        raise OptionError(f"{videos[0]} is a video: colorize it with colorem video {videos[0]} -o "
                          f"{output if is_video(output) else output / videos[0].name}")
    if output.suffix and extension not in FORMATS and not output.is_dir() and not args.output.endswith(("/", os.sep)):
        raise OptionError(f"-o {output}: colorem writes {', '.join(sorted(set(FORMATS)))} files, not .{extension} "
                          f"(for a folder, write -o {output}/)")
    if hints and len(inputs) > 1:
        raise HintError(f"hints are in one photo's pixels: give exactly one input photo with --hint/--hints, not {len(inputs)}")
    if single_file and len(inputs) > 1:
        raise ColoremError(f"-o {output} names one file, but {len(inputs)} photos were given; "
                           f"give a folder for several (e.g. -o {output.with_suffix('')}/)")
    if single_file and args.format not in ("same", extension) and FORMATS.get(args.format) != FORMATS[extension]:
        raise OptionError(f"-o {output} names a .{extension} file, but --format is {args.format}")
    options = FolderOptions(output=output, format=args.format, render_size=args.render_size, saturation=args.saturation,
                           temperature=args.temperature, quality=args.quality, overwrite=args.overwrite,
                           batch_size=args.batch_size, workers=args.workers, single_file=single_file)
    refuse_writing_over_inputs(((source, target_for(options, relative, alpha)) for source, relative in inputs
                                for alpha in (False, True)), output)
    for pattern in unmatched:
        print(f"failed: {pattern}: the pattern matched no files", file=sys.stderr)
    # Under torchrun, this rank's share; everything otherwise. Outputs that exist are done: a rerun resumes.
    todo, done = split_existing(rank_share(inputs), options)
    if hints and done:  # skipped, but a hint outside the photo is still a usage error, not "skipped 1"
        check_inside(hints, image_size(done[0][0]))
    counts = {"done": 0, "skipped": len(done), "failed": len(unmatched)}
    if todo or done:
        _colorize(args, todo, options, counts, hints, one_file=len(inputs) == 1)
    skipped = f"skipped {counts['skipped']}" + (" (outputs exist; --overwrite replaces them)" if counts["skipped"] else "")
    print(f"colorized {counts['done']}, {skipped}, failed {counts['failed']} -> {output}", file=sys.stderr)
    return 1 if counts["failed"] else 0


def _colorize(args: argparse.Namespace, inputs: list[tuple[Path, Path]], options: FolderOptions, counts: dict,
              hints: tuple[Hint, ...], one_file: bool) -> None:
    """One file through the public API (Colorizer.colorize), several through the streaming folder runner."""
    colorizer = load_colorizer(args, backend=args.backend)  # even with nothing to do: a bad model is an error
    colorizer.check_hints([hints], 1)  # hints for a model without a hint input: exit 2 before any photo is read
    prepare_output(options.output, options.single_file)
    if one_file and inputs:
        result = colorize_one(colorizer, *inputs[0], options, hints)
        counts[result.status] += 1
        if result.status == "failed":
            print(f"failed: {result.source}: {result.error}", file=sys.stderr)
        return
    # the progress bar counts only the work left to do
    with tqdm(total=len(inputs), unit="img", disable=len(inputs) < 2, file=sys.stderr, dynamic_ncols=True) as progress:
        for result in colorize_files(colorizer, inputs, options):
            counts[result.status] += 1
            if result.status == "failed":
                progress.write(f"failed: {result.source}: {result.error}", file=sys.stderr)
            progress.update()


def colorize_one(colorizer: Colorizer, source: Path, relative: Path, options: FolderOptions,
                 hints: tuple[Hint, ...] = ()) -> ItemResult:
    """The one-file case, as a library user would write it: Colorizer.colorize, then the file written where
    the folder runner would write it. A usage error (an option, a hint) raises; anything else fails the file."""
    try:
        image = colorizer.colorize(source, options.render_size, options.saturation, options.temperature, hints or None)
        target = target_for(options, relative, has_alpha=image.mode == "RGBA")
        write_image(image, target, quality=options.quality)
    except (OptionError, HintError):
        raise
    except (ColoremError, ValueError, OSError, MemoryError) as error:
        return ItemResult(source, None, "failed", failure_reason(error))
    return ItemResult(source, target, "done")
