"""`colorem video INPUT... -o OUT`: colorize video files, streaming, with colours kept stable over time."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tqdm import tqdm

from colorem.cli.common import add_model_arguments, load_colorizer
from colorem.errors import ColoremError
from colorem.temporal import StabilizeOptions
from colorem.video import VIDEO_EXTENSIONS, VideoOptions, colorize_video, is_video


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="+", metavar="INPUT",
                        help=f"video files (any container FFmpeg reads) or folders of {', '.join(VIDEO_EXTENSIONS)} files")
    parser.add_argument("-o", "--output", required=True,
                        help="output folder, or a file name (.mp4, .mov, .mkv, .webm, .avi) for one input")
    parser.add_argument("--render-size", type=int, default=None, help="side of the square the network sees (default: the model's)")
    parser.add_argument("--saturation", type=float, default=1.0, help="scale the predicted colour (0 = gray, 1 = as predicted)")
    parser.add_argument("--temperature", type=float, default=None,
                        help="classification models: annealed-mean temperature (see colorem colorize --help)")
    parser.add_argument("--per-frame", action="store_true",
                        help="colorize every frame on its own, without temporal stabilization (flickers; for comparison)")
    parser.add_argument("--strength", type=float, default=StabilizeOptions.strength,
                        help="weight of the running colour where a pixel's lightness did not change (0..1)")
    parser.add_argument("--crf", type=int, default=VideoOptions.crf, help="encoder quality: lower is better and larger")
    parser.add_argument("--preset", default=VideoOptions.preset, help="x264 speed preset (ultrafast ... veryslow)")
    parser.add_argument("--batch-size", type=int, default=VideoOptions.batch_size, help="frames per forward pass")
    parser.add_argument("--backend", default="auto", choices=("auto", "torch", "onnxruntime"),
                        help="inference backend (see colorem colorize --help)")
    existing = parser.add_mutually_exclusive_group()
    existing.add_argument("--skip-existing", action="store_true", help="leave outputs that already exist")
    existing.add_argument("--overwrite", action="store_true", help="replace outputs that already exist")
    add_model_arguments(parser)
    parser.set_defaults(func=run)


def collect_videos(patterns: list[str]) -> list[Path]:
    """Files as named (the container decides whether they are videos), folders by extension."""
    found: list[Path] = []
    for pattern in patterns:
        path = Path(pattern)
        found += sorted(p for p in path.iterdir() if p.is_file() and is_video(p)) if path.is_dir() else [path]
    return found


def target_for(source: Path, output: Path, single_file: bool) -> Path:
    if single_file:
        return output
    return output / (source.name if is_video(source) else f"{source.stem}.mp4")


def run(args: argparse.Namespace) -> int:
    sources = collect_videos(args.inputs)
    if not sources:
        print("colorem: no videos to colorize", file=sys.stderr)
        return 2
    output = Path(args.output)
    single_file = len(sources) == 1 and is_video(output)
    options = VideoOptions(render_size=args.render_size, saturation=args.saturation, temperature=args.temperature,
                           stabilize=not args.per_frame, stabilize_options=StabilizeOptions(strength=args.strength),
                           batch_size=args.batch_size, crf=args.crf, preset=args.preset)
    colorizer = load_colorizer(args, backend=args.backend)
    counts = {"done": 0, "skipped": 0, "failed": 0}
    for source in sources:
        target = target_for(source, output, single_file)
        if target.exists() and not args.overwrite:
            if args.skip_existing:
                counts["skipped"] += 1
                continue
            print(f"failed: {source}: {target} exists (use --skip-existing or --overwrite)", file=sys.stderr)
            counts["failed"] += 1
            continue
        bar = None  # drawn from the first written frame on, so a file that cannot be read prints only its error

        def progress(written: int, total: int | None, source=source) -> None:
            nonlocal bar
            if bar is None:
                bar = tqdm(desc=source.name, unit="frame", file=sys.stderr, dynamic_ncols=True)
            if total and bar.total != total:
                bar.total = total
            bar.update(written)
        try:
            result = colorize_video(colorizer, source, target, options, progress=progress)
        except ColoremError as error:
            tqdm.write(f"failed: {source}: {error}", file=sys.stderr)
            counts["failed"] += 1
            continue
        finally:
            if bar is not None:
                bar.close()
        counts["done"] += 1
        print(f"{source} -> {target}: {result.frames} frames {result.size[0]}x{result.size[1]}, "
              f"{result.frames / max(result.seconds, 1e-9):.1f} frames/s"
              f"{', audio copied' if result.audio else ''}{f', {result.cuts} scene cuts' if result.cuts else ''}",
              file=sys.stderr)
    print(f"colorized {counts['done']}, skipped {counts['skipped']}, failed {counts['failed']} -> {output}", file=sys.stderr)
    return 1 if counts["failed"] else 0
