"""`colorem models`: registered architectures and installed weights."""

from __future__ import annotations

import argparse

from colorem.models import EMBEDDERS, list_models
from colorem.weights import packaged_weights, read_card


def register(parser: argparse.ArgumentParser) -> None:
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    print("architectures:", ", ".join(list_models()))
    print("embedders:    ", ", ".join(EMBEDDERS))
    folder = packaged_weights().parent
    weights = sorted(folder.glob("*.safetensors")) if folder.exists() else []
    if not weights:
        print("installed weights: none (train with `colorem train`, then pass --model PATH)")
    for path in weights:
        card = read_card(path)
        size_mb = path.stat().st_size / 1e6
        print(f"installed weights: {path.stem}  [{card.architecture}, render {card.render_size}, {size_mb:.1f} MB]  {path}")
    return 0
