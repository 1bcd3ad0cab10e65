"""Training throughput of the original network: img/s and peak memory at 128² and 256², fp32 against
bf16 + channels_last, as a bare loop on random tensors and as the full pipeline (shared shards ->
DataLoader workers -> Lab on the device -> step). Each case runs in a fresh process; prints Markdown.

    python bench/train.py [--steps 6] [--batch 16] [--data ../shared/data/train] [--sizes 128 256]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def bare(size: int, precision: str, batch: int, steps: int) -> float:
    import torch

    from colorem.color import rgb_to_lab, split_lab
    from colorem.device import autocast
    from colorem.models import create_model
    from colorem.train.losses import ColorLoss

    model = create_model("color-em-original")
    channels_last = precision == "bf16"
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    loss_function = ColorLoss("mse")
    rgb = torch.rand(batch, 3, size, size)
    device = torch.device("cpu")

    def step():
        l, ab = split_lab(rgb_to_lab(rgb))
        if channels_last:
            l = l.contiguous(memory_format=torch.channels_last)
        with autocast(device, precision):
            raw = model(l, raw=True)
        loss, _ = loss_function(raw, ab)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    for _ in range(2):
        step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return batch * steps / (time.perf_counter() - start)


def pipeline(size: int, precision: str, batch: int, steps: int, data: str) -> float:
    from colorem.train import Trainer, load_config
    from colorem.train.distributed import DistributedEnv

    shards = sorted(Path(data).glob("*.tar"))
    # 160x160 shards for crops up to 160; larger crops upscale them (as a 256² run on small photos would)
    config = load_config(None, [
        "model.architecture=color-em-original", f"data.size={size}", f"data.batch_size={batch}", "data.workers=2",
        f"data.train={json.dumps([str(path) for path in shards[:3]])}", "data.validation_count=1",
        f"run.precision={precision}", "run.channels_last=true", f"run.steps={2 * steps}", f"run.log_every={steps}",
        "run.validate_every=0", "run.checkpoint_every=100000", "run.tensorboard=false", "optim.warmup_steps=0",
    ])
    with tempfile.TemporaryDirectory() as run_dir:
        Trainer(config, run_dir, env=DistributedEnv()).fit()
        records = [json.loads(line) for line in (Path(run_dir) / "metrics.jsonl").read_text().splitlines()]
    return [record for record in records if "img_per_s" in record][-1]["img_per_s"]  # the second window: warm


def run_one(args) -> None:
    if args.mode == "bare":
        images_per_s = bare(args.size, args.precision, args.batch, args.steps)
    else:
        images_per_s = pipeline(args.size, args.precision, args.batch, args.steps, args.data)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"img_per_s": images_per_s, "peak_mb": peak_mb}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=6, help="timed steps per case (after warm-up)")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 256])
    parser.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "train"))
    parser.add_argument("--one", nargs=3, metavar=("MODE", "SIZE", "PRECISION"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        args.mode, args.size, args.precision = args.one[0], int(args.one[1]), args.one[2]
        return run_one(args)
    import torch

    from colorem.device import bf16_is_fast

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, bf16 fast: {bf16_is_fast(torch.device('cpu'))}, "
          f"batch {args.batch}, {args.steps} timed steps, original network (learned embedder), MSE, AdamW\n")
    print("| size | precision | loop | img/s | peak RSS (MB) |")
    print("|---|---|---|---|---|")
    for size in args.sizes:
        for precision in ("fp32", "bf16"):
            for mode in ("bare", "pipeline"):
                command = [sys.executable, __file__, "--one", mode, str(size), precision, "--steps", str(args.steps),
                           "--batch", str(args.batch), "--data", args.data]
                result = subprocess.run(command, capture_output=True, text=True, cwd=REPO)
                if result.returncode:
                    print(f"| {size}² | {precision} | {mode} | failed: {result.stderr.strip().splitlines()[-1]} | |")
                    continue
                values = json.loads(result.stdout.strip().splitlines()[-1])
                label = "bf16 + channels_last" if precision == "bf16" else "fp32"
                loop = "bare (random tensors)" if mode == "bare" else "full pipeline (shards, 2 workers)"
                print(f"| {size}² | {label} | {loop} | {values['img_per_s']:.1f} | {values['peak_mb']:.0f} |", flush=True)


if __name__ == "__main__":
    main()
