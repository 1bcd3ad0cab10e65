"""Backends side by side: forward at 256², end-to-end 1 MP and 12 MP photos, folder throughput,
peak memory, and the ratio of each to plain fp32 eager PyTorch measured in the same run.

    python bench/runtime.py [--model WEIGHTS] [--photos 1000] [--repeats 10] [--folder-passes 3] [--rows LABEL ...]

Each backend runs in its own subprocess (so peak memory, max RSS, is its own) over the same files.
Without --model: the packaged default model if installed, else the original network with random weights.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
ROWS = [  # label, backend, precision, onnx variant
    ("PyTorch eager fp32", "torch", "fp32", None),
    ("PyTorch fp32 channels_last", "torch", "fp32-cl", None),
    ("PyTorch bf16 channels_last", "torch", "bf16", None),
    ("ONNX Runtime fp32", "onnxruntime", "fp32", "fp32"),
    ("ONNX Runtime int8 (static)", "onnxruntime", "fp32", "int8"),
]

CHILD = r"""
import json, os, resource, statistics, sys, time
from pathlib import Path
import torch
import colorem
from colorem.folder import FolderOptions, colorize_files
from colorem.imageio import write_image
args = json.loads(sys.argv[1])
precision = "fp32" if args["precision"] == "fp32-cl" else args["precision"]
colorizer = colorem.load(args["model"], precision=precision, backend=args["backend"], onnx_model=args["onnx"])
if args["precision"] == "fp32" and args["backend"] == "torch":
    colorizer.model = colorizer.model.to(memory_format=torch.contiguous_format)  # plain eager baseline
    layout = torch.contiguous_format
else:
    layout = torch.channels_last
def median_ms(function, repeats, warmup=3):
    for _ in range(warmup):
        function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter(); function(); times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000
l1 = torch.rand(1, 1, 256, 256) * 100
if layout is torch.contiguous_format:
    def forward(l):
        with torch.inference_mode():
            return colorizer.model(l)
else:
    forward = colorizer.predict_ab
result = {"forward_ms": median_ms(lambda: forward(l1), args["repeats"])}
render = args["render_size"] or colorizer.render_size  # what the folder run renders at
l8 = torch.rand(8, 1, render, render) * 100
result["model_batch_img_s"] = 8000 / median_ms(lambda: forward(l8), max(10, args["repeats"]))
for name in ("1mp", "12mp"):
    source = args[name]
    target = str(Path(args["tmp"]) / f"out-{name}.jpg")
    result[name + "_ms"] = median_ms(lambda: write_image(colorizer.colorize(source, render_size=render), target), max(3, args["repeats"] // (1 if name == "1mp" else 3)), warmup=1)
files = sorted(Path(args["folder"]).glob("*.jpg"))
out = Path(args["tmp"]) / ("folder-" + args["label"].replace(" ", "_"))
options = FolderOptions(output=out, batch_size=8, overwrite=True, render_size=render)
rates = []
for _ in range(args["folder_passes"]):  # this VM's speed drifts by 10-20% between passes: take the median
    start = time.perf_counter()
    done = sum(r.status == "done" for r in colorize_files(colorizer, [(f, Path(f.name)) for f in files], options))
    rates.append(done / (time.perf_counter() - start))
result["folder_img_s"] = statistics.median(rates)
result["folder_passes"] = [round(rate, 1) for rate in rates]
result["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(result))
"""


def make_inputs(folder: Path, count: int) -> dict[str, str]:
    """The 1 MP and 12 MP photos, and `count` 512x512-ish photos of mixed sizes (crops of the samples)."""
    originals = sorted((REPO / "colorem" / "samples" / "originals").glob("*.jpg"))
    rng = np.random.default_rng(0)
    photos = folder / "photos"
    photos.mkdir()
    for index in range(count):
        image = Image.open(originals[index % len(originals)]).convert("L")
        width, height = int(rng.integers(384, 641)), int(rng.integers(384, 641))
        image.resize((width, height), Image.Resampling.BILINEAR).save(photos / f"{index:05d}.jpg", quality=90)
    base = Image.open(originals[0]).convert("L")
    paths = {}
    for name, size in (("1mp", (1152, 864)), ("12mp", (4000, 3000))):
        paths[name] = str(folder / f"{name}.jpg")
        base.resize(size, Image.Resampling.BICUBIC).save(paths[name], quality=92)
    paths["folder"] = str(photos)
    return paths


def default_model(folder: Path) -> str:
    from colorem.weights import packaged_weights

    if packaged_weights().exists():
        return str(packaged_weights())
    from colorem.models import create_model
    from colorem.weights import ModelCard, save_weights

    return str(save_weights(create_model("color-em-original"), ModelCard(architecture="color-em-original"), folder / "original.safetensors"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None)
    parser.add_argument("--photos", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--render-size", type=int, default=0,
                        help="render size of the model-only and folder runs (default: the model card's)")
    parser.add_argument("--folder-passes", type=int, default=3, help="passes over the folder per row (median)")
    parser.add_argument("--rows", nargs="+", default=[label for label, *_ in ROWS], metavar="LABEL",
                        help="only these rows (the fp32 eager baseline always runs)")
    args = parser.parse_args()
    from colorem.onnx_backend import export_onnx, quantize_onnx
    from colorem.weights import load_weights
    from colorem.colorize import Colorizer

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        model_path = args.model or default_model(folder)
        inputs = make_inputs(folder, args.photos)
        model, card = load_weights(model_path)
        onnx_bytes = export_onnx(model, folder / "model.onnx")
        calibration = [Colorizer.from_model(model, precision="fp32").prepare(p, card.render_size).l_small.numpy()
                       for p in sorted(Path(inputs["folder"]).glob("*.jpg"))[:32]]
        quantize_onnx(onnx_bytes, folder / "model-int8.onnx", calibration)
        onnx_files = {"fp32": str(folder / "model.onnx"), "int8": str(folder / "model-int8.onnx")}
        results = []
        for label, backend, precision, variant in ROWS:
            if label not in args.rows and label != ROWS[0][0]:
                continue
            child = {"model": model_path, "backend": backend, "precision": precision, "onnx": onnx_files.get(variant),
                     "repeats": args.repeats, "folder_passes": args.folder_passes, "tmp": tmp, "render_size": args.render_size, "label": label, **inputs}
            run = subprocess.run([sys.executable, "-c", CHILD, json.dumps(child)], capture_output=True, text=True)
            if run.returncode:
                print(f"{label}: failed\n{run.stderr[-2000:]}", file=sys.stderr)
                continue
            results.append((label, json.loads(run.stdout.strip().splitlines()[-1])))
    base = dict(results)["PyTorch eager fp32"]
    render = args.render_size or card.render_size
    print(f"model: {model_path}, {args.photos} photos of 384-640 px, rendered at {render}²; medians; "
          "ratio = speed vs PyTorch eager fp32 in this run")
    print(f"| backend | forward 256² | model-only batch 8 at {render}² | 1 MP file→file | 12 MP file→file | folder | folder / model-only | peak RSS |")
    print("|---|---|---|---|---|---|---|---|")
    for label, r in results:
        print(f"| {label} | {r['forward_ms']:.1f} ms ({base['forward_ms'] / r['forward_ms']:.2f}×) "
              f"| {r['model_batch_img_s']:.1f} img/s | {r['1mp_ms']:.0f} ms ({base['1mp_ms'] / r['1mp_ms']:.2f}×) "
              f"| {r['12mp_ms']:.0f} ms ({base['12mp_ms'] / r['12mp_ms']:.2f}×) "
              f"| {r['folder_img_s']:.1f} img/s ({r['folder_img_s'] / base['folder_img_s']:.2f}×) "
              f"| {r['folder_img_s'] / r['model_batch_img_s']:.0%} | {r['peak_mb']:.0f} MB |")
    print("folder passes (img/s): " + "; ".join(f"{label} {r['folder_passes']}" for label, r in results))


if __name__ == "__main__":
    main()
