#!/usr/bin/env bash
# Default model v7: v6 (configs/train-default-v6.sh, run first when RUNS has no v6 raw export) trained a third stage
# by configs/default-v7.toml from v6's raw export, exported raw (temperature 1), then averaged with v6's raw weights
# (a model soup: `colorem export --average-with`), calibrated on held-out photos of shard 000070 (bench/calibrate.py:
# prior correction, temperature, cast removal and vibrance by the rule in MODEL_CARD.md) and exported with the chosen
# settings as RUNS/default-v7.safetensors. Resumable: rerun after an interruption.
#   bash configs/train-default-v7.sh [RUNS_FOLDER]        (default ../runs, outside the repo)
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-../runs}"
DESCRIPTION="colorem default v7: an ImageNet-pretrained EfficientNet-Lite0 U-Net, its classifier as the global embedding; \
v6 trained a third stage of 57,600 samples, averaged with v6 (configs/train-default-v7.sh)"
[ -f "$runs/default-v6-raw.safetensors" ] || bash configs/train-default-v6.sh "$runs"
colorem train --config configs/default-v7.toml --out "$runs/default-v7" --init-from "$runs/default-v6-raw.safetensors" \
  --resume auto --no-progress
colorem export "$runs/default-v7" -o "$runs/default-v7-raw.safetensors" --name default-v7-raw --temperature 1.0
colorem export "$runs/default-v7-raw.safetensors" -o "$runs/default-v7-soup-raw.safetensors" --name default-v7-soup-raw \
  --average-with "$runs/default-v6-raw.safetensors" --temperature 1.0
python bench/calibrate.py --model "$runs/default-v7-soup-raw.safetensors" --ab-prior "$runs/default-v7/ab_prior.json" \
  --images ../shared/data/train/train-000070.tar --limit 400 --strengths 1 --temperatures 0.5,0.6 --casts 0,0.25 \
  --margin 1.0 --max-false 1.5 | tee "$runs/default-v7-calibration.txt"
# The calibration's last line is the export command with the chosen settings; the shipped card adds its name,
# description, render size and float16 storage (colorem/pretrained/default.*).
eval "$(tail -n 1 "$runs/default-v7-calibration.txt" | sed "s#-o OUT.safetensors#-o $runs/default-v7.safetensors#") \
  --name default --render-size 256 --fp16 --description \"\$DESCRIPTION\""
