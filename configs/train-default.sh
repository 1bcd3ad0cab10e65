#!/usr/bin/env bash
# The shipped default model from scratch: train configs/default.toml (stage 1, a GPU run), continue it in four
# CPU stages (2-5: the same preset at lower learning rates, batch 32; stage 5 adds the original's zoom and
# rotation augmentation), then export it with the decoding settings calibrated on held-out photos
# (MODEL_CARD.md). Rerun the same command after an interruption: each stage resumes from its newest good
# checkpoint.
#   bash configs/train-default.sh [RUNS_FOLDER]        (default ../runs, outside the repo)
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-../runs}"
colorem train --config configs/default.toml --out "$runs/default" --resume auto --no-progress
stage() {  # OUT INIT [--set ...]: continue INIT's weights as a new run, batch 32 on 2 decoding workers
  local out=$1 init=$2; shift 2
  colorem train --config configs/default.toml --out "$runs/$out" --init-from "$runs/$init" --resume auto --no-progress \
    --set loss.prior_file="$runs/default/ab_prior.json" --set data.batch_size=32 --set data.workers=2 \
    --set run.checkpoint_every=500 "$@"
}
stage default-ft default --set run.steps=5000 --set optim.lr=1e-4 --set optim.warmup_steps=100
later=(--set optim.lr=2e-4 --set optim.warmup_steps=200 --set optim.min_lr_ratio=0.25 --set optim.ema=0.9995)
stage default-ft3 default-ft --set run.steps=5500 "${later[@]}"
stage default-ft4 default-ft3 --set run.steps=5500 "${later[@]}" --set run.seed=4
stage default-ft5 default-ft4 --set run.steps=4000 "${later[@]}" --set run.seed=5 --set data.zoom=0.2 --set data.rotation=10
# The decoding settings: colorem export "$runs/default-ft5" -o W.safetensors --temperature 1.0, then
#   python bench/calibrate.py --model W.safetensors --ab-prior "$runs/default/ab_prior.json" \
#     --images ../shared/data/train/train-000002.tar --exclude-source debian_wallpapers --strengths 1 --temperatures 0.8 --step 0.005
colorem export "$runs/default-ft5" -o colorem/pretrained/default.safetensors --fp16 --name default \
  --prior-correction 1 --ab-prior "$runs/default/ab_prior.json" --temperature 0.8 --vibrance 1.25 --render-size 192 \
  --description "colorem default model: the original Color 'em network with a learned embedder, an ab classifier \
(222 bins, rebalancing 0.7) trained from scratch on one H100 (5.6 min) on 128x128 crops of all training shards, \
continued in four stages on a 2-core CPU (5.6 h; the last with zoom and rotation augmentation); logits \
prior-corrected (strength 1), annealed mean at temperature 0.8, vibrance 1.25, calibrated on held-out photos"
