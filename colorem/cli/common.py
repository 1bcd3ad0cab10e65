"""Options shared by the subcommands that load a model, the argparse type for bounded numbers, and the
checks of inputs and outputs that colorize and video share."""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path
from typing import Iterable

from colorem.colorize import Colorizer, load
from colorem.device import PRECISIONS
from colorem.errors import OptionError, check_range
from colorem.imageio import DEFAULT_MAX_PIXELS


def ranged(kind: type, low, high=None):
    """An argparse type: a number of `kind` in [low, high] (no upper bound when high is None), so a bad
    value is a usage error naming the option before anything is loaded."""
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {'an integer' if kind is int else 'a number'}, not {text!r}") from None
        try:
            return check_range("", value, low, high)
        except OptionError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    parse.__name__ = kind.__name__
    return parse


def add_model_arguments(parser: argparse.ArgumentParser, model: bool = True) -> None:
    """--model (unless the subcommand has its own), --device, --precision and --embedder-weights."""
    group = parser.add_argument_group("model")
    if model:
        group.add_argument("--model", default="default",
                           help="packaged weights name or a .safetensors path (default: the shipped default model)")
    group.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: CUDA when present, else CPU)")
    group.add_argument("--precision", default="auto", choices=PRECISIONS,
                       help="auto = bf16 where the hardware runs it fast, else fp32")
    group.add_argument("--embedder-weights", default=None,
                       help="local weights file for an external embedder (inception_resnet_v2)")


def add_max_pixels(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--max-pixels", type=ranged(int, 1), default=DEFAULT_MAX_PIXELS, metavar="N",
                        help="largest image (or video frame) read, in pixels (default: %(default)s; more for "
                             "very large scans; the limit guards against decompression bombs)")


def load_colorizer(args: argparse.Namespace, model: str | None = None, **kwargs) -> Colorizer:
    options = {"weights": args.embedder_weights} if getattr(args, "embedder_weights", None) else None
    if getattr(args, "max_pixels", None):
        kwargs.setdefault("max_pixels", args.max_pixels)
    return load(model or args.model, device=args.device, precision=args.precision, embedder_options=options, **kwargs)


def check_inputs(patterns: list[str]) -> None:
    """An empty input ("" from an unset shell variable) would name the current folder: refused."""
    if any(not pattern.strip() for pattern in patterns):
        raise OptionError("an input is empty (an unset shell variable?); name the files, folders or patterns")


def prepare_output(output: Path, single_file: bool, option: str = "-o") -> None:
    """The output folder (made if missing), or the folder of an output file, checked writable before any
    work is done: a bad -o is one usage error, not one failure per photo after it was colorized."""
    if not single_file and output.exists() and not output.is_dir():
        raise OptionError(f"{option} {output} is a file; give a folder")
    folder = output.parent if single_file else output
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OptionError(f"cannot make the output folder {folder}: {error.strerror or error}") from None
    try:  # a real file, not os.access: root passes that test in /sys and /proc, then fails at each photo
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".colorem-probe-"):
            pass
    except OSError as error:
        raise OptionError(f"cannot write in the output folder {folder}: {error.strerror or error}") from None


def refuse_writing_over_inputs(pairs: Iterable[tuple[Path, Path]], output: Path) -> None:
    """(input, output) pairs: an output that is its own input (-o the input folder, say) is refused, since
    --overwrite would replace the original."""
    for source, target in pairs:
        if target.exists() and source.exists() and os.path.samefile(source, target):
            raise OptionError(f"-o {output} would write over the input {source} itself; choose another output")
