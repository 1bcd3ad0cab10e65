#!/usr/bin/env bash
# Default model v4 from default v3: train v3 (configs/train-default-v3.sh), continue its raw export as
# configs/default-v4.toml (configs/continue-default.sh), and export the mean of the two runs' weights (raw); then
# export that with the decoding settings bench/calibrate.py picks on held-out photos (MODEL_CARD.md, Calibration (v4)).
# Rerun the same command after an interruption: each training resumes from its newest good checkpoint.
#   bash configs/train-default-v4.sh [RUNS_FOLDER]        (default ../runs, outside the repo)
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-../runs}"
bash configs/train-default-v3.sh "$runs"
bash configs/continue-default.sh v3 v4 "$runs"
colorem export "$runs/default-v4" -o "$runs/default-v4-raw.safetensors" --name default-v4-raw --temperature 1.0 \
  --average-with "$runs/default-v3-raw.safetensors"
