"""`colorem export RUN_OR_CHECKPOINT -o weights.safetensors`: weights + JSON card for colorem.load."""

from __future__ import annotations

import argparse


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", help="a training run folder (its newest good checkpoint) or one checkpoint file")
    parser.add_argument("-o", "--output", required=True, help="weights file to write (.safetensors; the card goes beside it as .json)")
    parser.add_argument("--fp16", action="store_true", help="store weights as float16 (half the size)")
    parser.add_argument("--no-ema", action="store_true", help="export the live weights even when the run kept an EMA")
    parser.add_argument("--name", default="", help="name in the card (default: the output file's stem)")
    parser.add_argument("--description", default="", help="description in the card")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from colorem.train.export import export

    path = export(args.source, args.output, dtype=torch.float16 if args.fp16 else None, use_ema=not args.no_ema,
                  name=args.name, description=args.description)
    print(f"wrote {path} and {path.with_suffix('.json')}")
    return 0
