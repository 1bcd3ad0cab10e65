"""`colorem video INPUT... -o OUT`: colorize video files, streaming, with colours kept stable over time."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tqdm import tqdm

from colorem.cli.common import add_colorize_options, add_inputs, load_colorizer, ranged
from colorem.errors import ColoremError, OptionError
from colorem.imageio import IMAGE_EXTENSIONS
from colorem.outputs import prepare_output, refuse_writing_over_inputs
from colorem.temporal import StabilizeOptions
from colorem.video import VIDEO_EXTENSIONS, VideoOptions, colorize_video, is_video

X264_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow")


def register(parser: argparse.ArgumentParser) -> None:
    add_inputs(parser, f"video files (any container FFmpeg reads) or folders of {', '.join(VIDEO_EXTENSIONS)} files",
               "output folder, or a file name (.mp4, .mov, .mkv, .webm, .avi) for one input")
    parser.add_argument("--per-frame", action="store_true",
                        help="colorize every frame on its own, without temporal stabilization (flickers; for comparison)")
    parser.add_argument("--strength", type=ranged(float, 0.0, 0.999), default=StabilizeOptions.strength,
                        help="weight of the running colour where a pixel's lightness did not change, 0 to 0.999 "
                             "(default: %(default)s)")
    parser.add_argument("--crf", type=ranged(int, 0, 51), default=VideoOptions.crf,
                        help="encoder quality, 0 to 51: lower is better and larger (default: %(default)s)")
    parser.add_argument("--preset", default=VideoOptions.preset, choices=X264_PRESETS, metavar="PRESET",
                        help=f"x264 speed preset: {', '.join(X264_PRESETS)} (default: %(default)s)")
    parser.add_argument("--no-audio", action="store_true",
                        help="leave the sound out (for a container that cannot hold the source's audio, e.g. AAC in .webm)")
    add_colorize_options(parser, "frames", batch_size=VideoOptions.batch_size)
    parser.set_defaults(func=run)


def collect_videos(patterns: list[str]) -> list[Path]:
    """Files as named (the container decides whether they are videos), folders by extension."""
    found: list[Path] = []
    for pattern in patterns:
        path = Path(pattern)
        found += sorted(p for p in path.iterdir() if p.is_file() and is_video(p)) if path.is_dir() else [path]
    return found


def target_for(source: Path, output: Path, single_file: bool) -> Path:
    """The output file: -o itself, or in the -o folder the source's name, as .mp4 unless it is a video container
    that holds H.264 and its audio well (AVI does not hold AAC, which most cameras record)."""
    if single_file:
        return output
    keep = is_video(source) and source.suffix.lower() != ".avi"
    return output / (source.name if keep else f"{source.stem}.mp4")


def run(args: argparse.Namespace) -> int:
    sources = collect_videos(args.inputs)
    if not sources:
        print("colorem: no videos to colorize", file=sys.stderr)
        return 2
    output = Path(args.output)
    single_file = is_video(output) and not output.is_dir()
    if single_file and len(sources) > 1:
        raise OptionError(f"-o {output} names one file, but {len(sources)} videos were given; "
                          f"give a folder for several (e.g. -o {output.with_suffix('')}/)")
    if not single_file and output.suffix.lower() in IMAGE_EXTENSIONS and not output.is_dir():
        raise OptionError(f"-o {output}: colorem video writes {', '.join(VIDEO_EXTENSIONS)} files, not {output.suffix}")
    targets = [(source, target_for(source, output, single_file)) for source in sources]
    refuse_writing_over_inputs(targets, output)
    options = VideoOptions(render_size=args.render_size, saturation=args.saturation, temperature=args.temperature,
                           stabilize=not args.per_frame, stabilize_options=StabilizeOptions(strength=args.strength),
                           batch_size=args.batch_size, crf=args.crf, preset=args.preset, audio=not args.no_audio)
    colorizer = load_colorizer(args)
    colorizer.check_options(options.render_size, options.saturation, options.temperature)  # once, before any file
    prepare_output(output, single_file)
    counts = {"done": 0, "skipped": 0, "failed": 0}
    for source, target in targets:
        if target.exists() and not args.overwrite:  # done already: a rerun resumes
            counts["skipped"] += 1
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
    skipped = f"skipped {counts['skipped']}" + (" (outputs exist; --overwrite replaces them)" if counts["skipped"] else "")
    print(f"colorized {counts['done']}, {skipped}, failed {counts['failed']} -> {output}", file=sys.stderr)
    return 1 if counts["failed"] else 0
