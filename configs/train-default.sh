#!/usr/bin/env bash
# The shipped default model from scratch: train configs/default.toml (stage 1, a GPU run), continue it at a
# lower learning rate (stage 2, the run behind the shipped weights: 5,000 steps of 32 on the 2-core CPU), then
# export it with the decoding settings calibrated on held-out photos (MODEL_CARD.md). Rerun the same command
# after an interruption: each stage resumes from its newest good checkpoint.
#   bash configs/train-default.sh [RUNS_FOLDER]        (default ../runs, outside the repo)
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-../runs}"
colorem train --config configs/default.toml --out "$runs/default" --resume auto --no-progress
colorem train --config configs/default.toml --out "$runs/default-ft" --init-from "$runs/default" --resume auto \
  --no-progress --set loss.prior_file="$runs/default/ab_prior.json" --set data.batch_size=32 --set data.workers=2 \
  --set run.steps=5000 --set optim.lr=1e-4 --set optim.warmup_steps=100 --set run.checkpoint_every=500
# The decoding settings: colorem export "$runs/default-ft" -o W.safetensors --temperature 1.0, then
#   python bench/calibrate.py --model W.safetensors --ab-prior "$runs/default/ab_prior.json" \
#     --images ../shared/data/train/train-000002.tar --exclude-source debian_wallpapers --strengths 0,1,1.25 --temperatures 0.8,1.0
#   and the vibrance at the finer step: the same with --strengths 1 --temperatures 0.8 --step 0.005
colorem export "$runs/default-ft" -o colorem/weights/default.safetensors --fp16 --name default \
  --prior-correction 1 --temperature 0.8 --vibrance 1.055 --render-size 192
