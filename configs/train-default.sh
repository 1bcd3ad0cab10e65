#!/usr/bin/env bash
# The shipped default model from scratch: train configs/default.toml, then export it with the settings
# calibrated on held-out photos (MODEL_CARD.md). Rerun the same command after an interruption: training
# resumes from its newest good checkpoint.
#   bash configs/train-default.sh [RUNS_FOLDER]        (default ../runs, outside the repo)
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-../runs}"
colorem train --config configs/default.toml --out "$runs/default" --resume auto --no-progress
# vibrance 0.6: python bench/vibrance.py --model W --images ../shared/data/train/train-000002.tar \
#   --exclude-source debian_wallpapers --knob vibrance --calibrate --margin 0.35 (W exported at temperature 1.0)
colorem export "$runs/default" -o colorem/weights/default.safetensors --fp16 --name default \
  --temperature 1.0 --vibrance 0.6 --render-size 192
