#!/usr/bin/env bash
# The shipped default model, from scratch, in four resumable stages ("sets", as the original trained):
#   bash configs/train-default.sh [RUNS_FOLDER]        (default ../runs, outside the repo)
# Rerun the same command after an interruption: every stage resumes from its newest good checkpoint, and
# finished stages are skipped. Wall-clock on the 2-core AVX512-BF16 CPU, bf16: see MODEL_CARD.md.
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-../runs}"
train() { colorem train --resume auto --no-progress "$@"; }

# 1. MSE on the 64x64 shards (its 12000-step schedule was cut at step 9045, where the session's time ran out)
train --config configs/default.toml --out "$runs/default-64" --until 9045
# 2. the same network as an ab classifier (fresh output layer) on 128x128 crops of the 160x160 shards
train --config configs/default-finish.toml --init-from "$runs/default-64" --out "$runs/default"
# 3. classification on the 64x64 shards
train --config configs/default-cls64.toml --init-from "$runs/default" --out "$runs/default-cls64"
# 4. stage 2's preset again, shorter, to finish at the larger scale
train --config configs/default-finish.toml --init-from "$runs/default-cls64" --out "$runs/default-final" \
  --set run.steps=2500
# Export with the temperature calibrated on held-out photos (MODEL_CARD.md: bench/vibrance.py --calibrate --margin 0.35)
colorem export "$runs/default-final" -o colorem/weights/default.safetensors --fp16 --name default \
  --render-size 192 --temperature 0.3
