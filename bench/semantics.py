"""Does a network's global embedding still say what is in the photo? For a network whose embedding is a pretrained
ImageNet classifier (effnet-*: the model contract's `semantic_teacher` and `class_logits`), how often its classifier,
seeing the gray photo, names the class that the classifier as pretrained names seeing the colour photo.

    python bench/semantics.py --model WEIGHTS [--model OTHER ...] --images ../shared/data/eval [--limit 348]

The first row is the pretrained classifier itself on the gray photo (its stem summed to one channel, as training
starts): how much of the class a gray photo still shows. Training can move the classifier anywhere (it is trained
with the rest at optim.pretrained_lr_scale); loss.semantic_weight keeps it near the first row. Prints a Markdown
table: top-1 and top-5 agreement, and the mean entropy of the embedding (nats).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from colorem.color import rgb_to_lab, split_lab
from colorem.data import load_fixed_images
from colorem.models import create_model
from colorem.weights import load_pretrained, load_weights


def agreement(network: torch.nn.Module, teacher: torch.nn.Module, photos: torch.Tensor) -> tuple[float, float, float]:
    """(top-1, top-5 agreement with the teacher on colour, mean entropy) of `network`'s classifier on the gray photos."""
    top1 = top5 = 0
    entropy = 0.0
    with torch.inference_mode():
        for start in range(0, len(photos), 16):
            rgb = photos[start:start + 16].float() / 255.0
            named = teacher(rgb).argmax(dim=1)
            network(split_lab(rgb_to_lab(rgb))[0], raw=True)
            probabilities = network.class_logits.softmax(dim=1)
            top1 += int((probabilities.argmax(dim=1) == named).sum())
            top5 += int((probabilities.topk(5, dim=1).indices == named[:, None]).any(dim=1).sum())
            entropy += float(-(probabilities * probabilities.clamp_min(1e-12).log()).sum())
    return top1 / len(photos), top5 / len(photos), entropy / len(photos)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", action="append", required=True, help="weights to score; repeat for several")
    parser.add_argument("--images", type=Path, required=True, help="a folder or .tar shard of colour photos")
    parser.add_argument("--limit", type=int, default=100_000, help="the first N photos")
    args = parser.parse_args()
    photos = load_fixed_images(str(args.images), args.limit, 256, "--images")[0]  # centre-cropped 256², uint8
    rows = []
    for index, path in enumerate(args.model):
        network, card = load_weights(path)  # as trained: batch norm not folded, float32
        network = network.float()
        if getattr(network, "semantic_teacher", lambda: None)() is None:
            raise SystemExit(f"bench: {path}: its network has no pretrained classifier as its embedding")
        if index == 0:
            teacher = network.semantic_teacher().eval()
            start = create_model(card.architecture, **card.architecture_options)
            load_pretrained(start, card.architecture)
            rows.append(("pretrained classifier, gray photo", *agreement(start.eval(), teacher, photos)))
        rows.append((Path(path).name, *agreement(network, teacher, photos)))
    print(f"{len(photos)} photos of {args.images.name}/, 256², the pretrained classifier on the colour photo as the reference\n")
    print("| classifier | top-1 agreement | top-5 agreement | entropy (nats) |\n|---|---|---|---|")
    for name, top1, top5, entropy in rows:
        print(f"| {name} | {top1:.3f} | {top5:.3f} | {entropy:.2f} |")


if __name__ == "__main__":
    main()
