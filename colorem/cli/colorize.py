"""`colorem colorize INPUT... -o OUT`: files, folders and globs, streamed through one loaded model."""

from __future__ import annotations

import argparse
import glob
import os
import sys
from pathlib import Path

from tqdm import tqdm

from colorem.cli.common import add_colorize_options, add_inputs, load_colorizer, ranged
from colorem.errors import ColoremError, OptionError
from colorem.folder import FolderOptions, FolderRun, wait_for_other_ranks
from colorem.hints import HintError, Hints, as_hints, parse_hint_argument, read_hints_json
from colorem.imageio import FORMATS, IMAGE_EXTENSIONS, QUALITY_RANGE
from colorem.video import is_video, sniff_video

OUTPUT_FORMATS = ("same", "png", "jpg", "webp", "tif")


def register(parser: argparse.ArgumentParser) -> None:
    add_inputs(parser, "image files, folders or glob patterns", "output folder (or a file name when colorizing one file)")
    parser.add_argument("-r", "--recursive", action="store_true", help="descend into sub-folders (kept in the output)")
    parser.add_argument("--format", default="same", choices=OUTPUT_FORMATS,
                        help="output format; 'same' keeps the input's (PNG for GIF input, and for JPEG with alpha)")
    parser.add_argument("--quality", type=ranged(int, *QUALITY_RANGE), default=92,
                        help="JPEG/WebP quality, %d to %d (default: %%(default)s)" % QUALITY_RANGE)
    parser.add_argument("--hint", action="append", default=[], metavar="X,Y,COLOR",
                        help="a colour hint for a model with a hint input: the pixel X,Y of the photo (0,0 at the "
                             "top left) is COLOR (sRGB hex or a CSS name), e.g. --hint 120,80,#3a6ea5 or 120,80,steelblue; "
                             "repeatable; one input photo only")
    parser.add_argument("--hints", default=None, metavar="FILE",
                        help='colour hints from a JSON file: [{"x": 120, "y": 80, "color": "#3a6ea5"}, ...] '
                             '(or {"hints": [...]}), as the web page exports them')
    parser.add_argument("--workers", type=ranged(int, 0), default=None, help="decoding processes (default: automatic)")
    add_colorize_options(parser, "photos", batch_size=8)
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
    return as_hints(hints) if hints else Hints()


def run(args: argparse.Namespace) -> int:
    """Parse and check the command line, then hand the run over to the folder runner (FolderRun) in one call."""
    hints = read_hints(args)
    output = Path(args.output)
    extension = output.suffix.lower().lstrip(".")
    single_file = extension in FORMATS and not output.is_dir()
    inputs, unmatched = collect_inputs(args.inputs, args.recursive, output=None if single_file else output)
    if not inputs and not unmatched:
        print("colorem: nothing to colorize", file=sys.stderr)
        return 2
    check_output(args, inputs, output, single_file)
    options = FolderOptions(output=output, format=args.format, render_size=args.render_size, saturation=args.saturation,
                            temperature=args.temperature, quality=args.quality, overwrite=args.overwrite,
                            batch_size=args.batch_size, workers=args.workers, single_file=single_file)
    # a bad model is an error even when every output exists already
    folder_run = FolderRun(load_colorizer(args), inputs, options, hints) if inputs else None
    for pattern in unmatched:
        print(f"failed: {pattern}: the pattern matched no files", file=sys.stderr)
    counts = {"done": 0, "skipped": 0, "failed": len(unmatched)}
    work = len(folder_run.todo) if folder_run else 0  # the progress bar counts only the work left to do
    with tqdm(total=work, unit="img", disable=work < 2, file=sys.stderr, dynamic_ncols=True) as progress:
        for result in folder_run or ():
            counts[result.status] += 1
            if result.status == "failed":
                progress.write(f"failed: {result.source}: {result.error}", file=sys.stderr)
            if result.status != "skipped":
                progress.update()
    skipped = f"skipped {counts['skipped']}" + (" (outputs exist; --overwrite replaces them)" if counts["skipped"] else "")
    print(f"colorized {counts['done']}, {skipped}, failed {counts['failed']} -> {output}", file=sys.stderr)
    try:
        wait_for_other_ranks()
    except RuntimeError as error:  # a peer died or never came: this rank's own outputs and counts stand
        print(f"colorem: could not wait for the other torchrun ranks: {str(error).splitlines()[0]}", file=sys.stderr)
    return 1 if counts["failed"] else 0


def check_output(args: argparse.Namespace, inputs: list[tuple[Path, Path]], output: Path, single_file: bool) -> None:
    """-o against the inputs: a video among them, an extension colorem does not write, one file named for several
    photos, a --format other than the file's."""
    extension = output.suffix.lower().lstrip(".")
    videos = [source for source, _ in inputs if source.suffix.lower() not in IMAGE_EXTENSIONS and sniff_video(source)]
    if videos:  # else -o out.mp4 became a folder and the video failed as "not a recognised image format"
        raise OptionError(f"{videos[0]} is a video: colorize it with colorem video {videos[0]} -o "
                          f"{output if is_video(output) else output / videos[0].name}")
    if output.suffix and extension not in FORMATS and not output.is_dir() and not args.output.endswith(("/", os.sep)):
        raise OptionError(f"-o {output}: colorem writes {', '.join(sorted(set(FORMATS)))} files, not .{extension} "
                          f"(for a folder, write -o {output}/)")
    if single_file and len(inputs) > 1:
        raise ColoremError(f"-o {output} names one file, but {len(inputs)} photos were given; "
                           f"give a folder for several (e.g. -o {output.with_suffix('')}/)")
    if single_file and args.format not in ("same", extension) and FORMATS.get(args.format) != FORMATS[extension]:
        raise OptionError(f"-o {output} names a .{extension} file, but --format is {args.format}")
