"""Inference benchmark: model forward at 256² per precision/layout, and end-to-end file -> file.

    python bench/colorize.py [--model WEIGHTS [--model OTHER ...]] [--repeats 20] [--rounds 3]
    python bench/colorize.py --memory [--baseline OLD_CHECKOUT] [--runs 3]

Without --model it times the original network (color-em-original, learned embedder) with random
weights: speed does not depend on the weights' values. Several --model are timed side by side: in each of
--rounds rounds every model is timed in turn, and the table gives the median over the rounds, so the
machine's drift affects them alike. Each end-to-end case runs in a fresh subprocess (at bf16 where the CPU
has it, and at fp32) so its peak memory (max RSS) is its own. Prints a Markdown table of medians.

--memory colorizes 12 MP and 50 MP JPEG files (file -> JPEG file) and reports peak memory per pixel;
with --baseline (a folder holding another version's `colorem/` package, e.g. from `git archive`) the
two versions run alternately in the same run, so the machine's drift affects both alike.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

REPO = Path(__file__).resolve().parents[1]


def median_ms(function, repeats: int, warmup: int = 3) -> float:
    for _ in range(warmup):
        function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def forward_rows(model_path: str | None, repeats: int) -> list[tuple[str, float]]:
    from colorem.models import create_model
    from colorem.weights import load_weights

    model = (load_weights(model_path)[0] if model_path else create_model("color-em-original")).eval()
    l = torch.rand(1, 1, 256, 256) * 100
    rows = []
    for label, channels_last, bf16 in [("fp32 eager", False, False), ("fp32 channels_last", True, False),
                                       ("bf16 channels_last", True, True)]:
        net = model.for_inference("bf16" if bf16 else "fp32")  # as colorem.runtime runs it (a family may fold its batch norm)
        net = net.to(memory_format=torch.channels_last if channels_last else torch.contiguous_format)
        x = l.contiguous(memory_format=torch.channels_last) if channels_last else l

        def run():
            with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                net(x)

        rows.append((f"forward 256², {label}", median_ms(run, repeats)))
    return rows


def make_photo(path: Path, width: int, height: int) -> None:
    """A photo-like test image: a real sample upscaled, with grain so JPEG has detail to code."""
    sample = Image.open(REPO / "colorem" / "samples" / "originals" / "mountain-meadow.jpg").convert("RGB")
    image = np.asarray(sample.resize((width, height), Image.Resampling.BICUBIC), dtype=np.int16)
    grain = np.random.default_rng(0).integers(-6, 7, image.shape, dtype=np.int16)
    Image.fromarray(np.clip(image + grain, 0, 255).astype(np.uint8)).convert("L").save(path, quality=92)


CHILD = r"""
import json, resource, statistics, sys, time, torch
import colorem
from colorem.colorize import Colorizer
from colorem.imageio import write_image
from colorem.models import create_model
source, target, model_path, repeats = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
precision = sys.argv[5] if len(sys.argv) > 5 else "auto"
colorizer = (colorem.load(model_path, precision=precision) if model_path
             else Colorizer.from_model(create_model("color-em-original"), precision=precision))
def once():
    write_image(colorizer.colorize(source), target)
once()
times = []
for _ in range(repeats):
    start = time.perf_counter(); once(); times.append(time.perf_counter() - start)
def peak_mb():
    # VmHWM: this process's own peak. ru_maxrss is not: Linux carries the parent's peak RSS over fork + exec,
    # so a parent that has just made a 50 MP photo would set the floor of every child's figure.
    try:
        return next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM")) / 1024
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"ms": statistics.median(times) * 1000, "peak_mb": peak_mb(), "precision": colorizer.precision}))
"""


def run_child(source: Path, target: Path, model_path: str | None, repeats: int, package_root: Path = REPO,
              precision: str = "auto") -> dict:
    """One fresh process colorizing `source` (once to warm up, then `repeats` timed); its median and peak RSS."""
    env = {**os.environ, "PYTHONPATH": str(package_root)}
    model_path = str(Path(model_path).resolve()) if model_path else ""  # the child runs in package_root
    result = subprocess.run([sys.executable, "-c", CHILD, str(source), str(target), model_path, str(repeats), precision],
                            capture_output=True, text=True, cwd=package_root, env=env)
    if result.returncode:
        raise SystemExit(f"bench: the colorizing process failed: {(result.stderr.strip().splitlines() or ['?'])[-1]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


MEMORY_CASES = [("12 MP", (4000, 3000)), ("50 MP", (8160, 6120))]


def memory_rows(model_path: str | None, runs: int, baseline: Path | None) -> list[tuple[str, str, float, float, float]]:
    """(case, version, median ms, median peak MB, median bytes per pixel): fresh processes, versions alternating."""
    versions = [("before", baseline)] if baseline else []
    versions.append(("after" if baseline else "this", REPO))
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for label, (width, height) in MEMORY_CASES:
            source = Path(folder) / f"{width}x{height}.jpg"
            make_photo(source, width, height)
            measured: dict[str, list[dict]] = {name: [] for name, _ in versions}
            for _ in range(runs):
                for name, root in versions:
                    measured[name].append(run_child(source, Path(folder) / "out.jpg", model_path, 1, root))
            for name, _ in versions:
                ms = statistics.median(m["ms"] for m in measured[name])
                peak_mb = statistics.median(m["peak_mb"] for m in measured[name])
                rows.append((label, name, ms, peak_mb, peak_mb * 2**20 / (width * height)))
    return rows


def end_to_end_rows(model_path: str | None, repeats: int, folder: Path) -> list[tuple[str, float, float]]:
    rows = []
    for label, (width, height), count in [("1 MP", (1152, 864), repeats), ("12 MP", (4000, 3000), max(3, repeats // 4))]:
        source = folder / f"{width}x{height}.jpg"
        if not source.exists():
            make_photo(source, width, height)
        for precision in ("auto", "fp32"):
            measured = run_child(source, folder / "out.jpg", model_path, count, precision=precision)
            if precision == "fp32" and measured["precision"] == rows[-1][0].rsplit("(", 1)[-1][:-1]:
                continue  # auto already was fp32 on this CPU
            rows.append((f"colorize {label} JPEG file -> JPEG file ({measured['precision']})", measured["ms"], measured["peak_mb"]))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", action="append", default=None,
                        help="weights to time; repeat to time several side by side (default: original network, random weights)")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3, help="rounds in which every model is timed in turn")
    parser.add_argument("--memory", action="store_true", help="peak memory of 12 MP and 50 MP photos, file -> file")
    parser.add_argument("--baseline", type=Path, default=None,
                        help="with --memory: a folder holding another version's colorem/ package to compare against")
    parser.add_argument("--runs", type=int, default=3, help="with --memory: fresh processes per case and version")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU capability {torch.backends.cpu.get_cpu_capability()}")
    if args.memory:
        print("| photo | version | median time | median peak RSS | bytes per pixel |\n|---|---|---|---|---|")
        for label, version, ms, peak_mb, per_pixel in memory_rows(args.model[0] if args.model else None, args.runs,
                                                                   args.baseline):
            print(f"| {label} | {version} | {ms:.0f} ms | {peak_mb:.0f} MB | {per_pixel:.0f} |")
        return
    models = args.model or [None]
    timed: dict[tuple[str, str], list[tuple[float, float]]] = {}
    with tempfile.TemporaryDirectory() as folder:
        for _ in range(args.rounds):
            for model in models:
                name = Path(model).stem if model else "color-em-original (random)"
                for label, ms in forward_rows(model, args.repeats):
                    timed.setdefault((name, label), []).append((ms, 0.0))
                for label, ms, peak in end_to_end_rows(model, args.repeats, Path(folder)):
                    timed.setdefault((name, label), []).append((ms, peak))
    print(f"medians over {args.rounds} round(s), the models timed in turn in each\n")
    print("| model | case | median | peak memory (max RSS) |\n|---|---|---|---|")
    for (name, label), values in timed.items():
        ms = statistics.median(value[0] for value in values)
        peak = statistics.median(value[1] for value in values)
        print(f"| {name} | {label} | {ms:.1f} ms | {f'{peak:.0f} MB' if peak else ''} |")


if __name__ == "__main__":
    main()
