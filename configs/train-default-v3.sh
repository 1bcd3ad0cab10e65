#!/usr/bin/env bash
# Default model v3 from default v2: train v2 (configs/train-default-v2.sh), export its run at temperature 1 without
# prior correction, continue it as configs/default-v3.toml, then export with the decoding settings
# bench/calibrate.py picks on held-out photos (MODEL_CARD.md, Calibration (v3)).
# Rerun the same command after an interruption: each training resumes from its newest good checkpoint.
#   bash configs/train-default-v3.sh [RUNS_FOLDER]        (default ../runs, outside the repo)
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-../runs}"
bash configs/train-default-v2.sh "$runs"
if [ ! -f "$runs/default-v2-raw.safetensors" ]; then
  colorem export "$runs/default-v2" -o "$runs/default-v2-raw.safetensors" --name default-v2-raw --temperature 1.0
fi
colorem train --config configs/default-v3.toml --out "$runs/default-v3" --init-from "$runs/default-v2-raw.safetensors" \
  --resume auto --no-progress
