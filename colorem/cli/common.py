"""Options shared by the subcommands that load a model, and the argparse type for bounded numbers."""

from __future__ import annotations

import argparse

from colorem.colorize import Colorizer, load
from colorem.device import PRECISIONS
from colorem.errors import OptionError, check_range


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


def load_colorizer(args: argparse.Namespace, model: str | None = None, **kwargs) -> Colorizer:
    options = {"weights": args.embedder_weights} if getattr(args, "embedder_weights", None) else None
    return load(model or args.model, device=args.device, precision=args.precision, embedder_options=options, **kwargs)
