"""Options declared once for the subcommands that share them (inputs and output, the colorize options of colorize,
video and export, the model), the argparse type for bounded numbers, and the model loaded as they ask."""

from __future__ import annotations

import argparse

from colorem.colorize import Colorizer, load
from colorem.device import PRECISIONS
from colorem.errors import OptionError
from colorem.imageio import DEFAULT_MAX_PIXELS
from colorem.limits import RENDER_SIZE, SATURATION, check_number
from colorem.onnx_backend import BACKENDS


def ranged(kind: type, low, high=None):
    """An argparse type: a number of `kind` in [low, high] (no upper bound when high is None), so a bad
    value is a usage error naming the option before anything is loaded."""
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {'an integer' if kind is int else 'a number'}, not {text!r}") from None
        try:
            return check_number("", value, (low, high), integer=kind is int)
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


def add_inputs(parser: argparse.ArgumentParser, inputs: str, output: str) -> None:
    """INPUT... and -o OUTPUT, as colorize and video take them. An empty input ("" from an unset shell variable)
    would name the current folder: refused as a usage error."""
    parser.add_argument("inputs", nargs="+", metavar="INPUT", type=_input, help=inputs)
    parser.add_argument("-o", "--output", required=True, help=output)


def _input(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError("an input is empty (an unset shell variable?); name the files, folders or patterns")
    return text


def add_render_size(parser: argparse.ArgumentParser, limits: tuple[int, int] = RENDER_SIZE,
                    help: str = "side of the square the network sees, %d to %d (default: the model's)") -> None:
    parser.add_argument("--render-size", type=ranged(int, *limits), default=None, help=help % limits)


def add_temperature(parser: argparse.ArgumentParser,
                    help: str = "classification models: annealed-mean temperature, between the predicted distribution's "
                                "mode (near 0) and its mean (1); the model card says which is more vivid") -> None:
    parser.add_argument("--temperature", type=float, default=None, help=help)


def add_colorize_options(parser: argparse.ArgumentParser, unit: str, batch_size: int) -> None:
    """What colorize and video share: the photo options (--render-size, --saturation, --temperature), --batch-size
    (`unit` per forward pass), --backend, what to do with outputs that exist, --max-pixels and the model."""
    add_render_size(parser)
    parser.add_argument("--saturation", type=ranged(float, *SATURATION), default=1.0,
                        help="scale the predicted colour, %g to %g (0 = gray, 1 = as predicted)" % SATURATION)
    add_temperature(parser)
    parser.add_argument("--batch-size", type=ranged(int, 1), default=batch_size, help=f"{unit} per forward pass")
    parser.add_argument("--backend", default="auto", choices=BACKENDS,
                        help="inference backend (auto: ONNX Runtime for fp32 on CPU when a .onnx exported from these "
                             "weights is beside them)")
    existing = parser.add_mutually_exclusive_group()
    existing.add_argument("--skip-existing", action="store_true",
                          help="leave outputs that already exist and count them as skipped (the default: a rerun resumes)")
    existing.add_argument("--overwrite", action="store_true", help="replace outputs that already exist")
    add_max_pixels(parser)
    add_model_arguments(parser)


def add_max_pixels(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--max-pixels", type=ranged(int, 1), default=DEFAULT_MAX_PIXELS, metavar="N",
                        help="largest image (or video frame) read, in pixels (default: %(default)s; more for "
                             "very large scans; the limit guards against decompression bombs)")


def load_colorizer(args: argparse.Namespace, model: str | None = None, **kwargs) -> Colorizer:
    options = {"weights": args.embedder_weights} if getattr(args, "embedder_weights", None) else None
    if getattr(args, "max_pixels", None):
        kwargs.setdefault("max_pixels", args.max_pixels)
    if getattr(args, "backend", None):
        kwargs.setdefault("backend", args.backend)
    return load(model or args.model, device=args.device, precision=args.precision, embedder_options=options, **kwargs)
