#!/usr/bin/env bash
# Default model v8: v7 (configs/train-default-v7.sh, run first when RUNS has no v7 raw export) trained a fourth stage
# by configs/default-v8.toml from v7's raw export, exported raw (temperature 1), calibrated on held-out photos of shard
# 000070 (bench/calibrate.py: prior correction, temperature, cast removal and vibrance by the rule in MODEL_CARD.md)
# and exported with the chosen settings as RUNS/default-v8.safetensors. Resumable: rerun after an interruption.
#   bash configs/train-default-v8.sh [RUNS_FOLDER]        (default ../runs, outside the repo)
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-../runs}"
[ -f "$runs/default-v7-raw.safetensors" ] || bash configs/train-default-v7.sh "$runs"
colorem train --config configs/default-v8.toml --out "$runs/default-v8" --init-from "$runs/default-v7-raw.safetensors" \
  --resume auto --no-progress
colorem export "$runs/default-v8" -o "$runs/default-v8-raw.safetensors" --name default-v8-raw --temperature 1.0
python bench/calibrate.py --model "$runs/default-v8-raw.safetensors" --ab-prior "$runs/default-v8/ab_prior.json" \
  --images ../shared/data/train/train-000070.tar --limit 400 --strengths 1 --temperatures 0.5,0.6 --casts 0,0.25 \
  --margin 1.0 --max-false 1.5 | tee "$runs/default-v8-calibration.txt"
# The calibration's last line is the export command with the chosen settings; the shipped card adds its name,
# render size and float16 storage (colorem/pretrained/default.*).
eval "$(tail -n 1 "$runs/default-v8-calibration.txt" | sed "s#-o OUT.safetensors#-o $runs/default-v8.safetensors#") \
  --name default --render-size 256 --fp16"
