#!/usr/bin/env bash
# The hint model from the shipped default: undo the default's prior correction (with the ab prior its stage 1
# estimated, re-estimated here from configs/default.toml: the same photos, so the same prior), train
# configs/hints.toml from it, then export with the default's decoding settings re-applied to the new run's prior.
# Rerun the same command after an interruption: the training resumes from its newest good checkpoint.
#   bash configs/train-hints.sh [RUNS_FOLDER]        (default ../runs, outside the repo)
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-../runs}"
mkdir -p "$runs"
if [ ! -f "$runs/default-raw.safetensors" ]; then
  python - "$runs/stage1_ab_prior.json" <<'PY'
import sys
from colorem.color import ab_bins
from colorem.train.config import load_config
from colorem.train.loop import estimate_run_prior
from colorem.train.losses import save_prior
save_prior(estimate_run_prior(load_config("configs/default.toml"), ab_bins()), sys.argv[1])
PY
  colorem export colorem/pretrained/default.safetensors -o "$runs/default-raw.safetensors" --name default-raw \
    --prior-correction -1 --ab-prior "$runs/stage1_ab_prior.json"
fi
# Stage 1: the hint input at 10x the body's learning rate, stopped at step 185 (as the shipped model was).
colorem train --config configs/hints.toml --out "$runs/hints" --init-from "$runs/default-raw.safetensors" --resume auto \
  --no-progress --until 185
# Stage 2: from stage 1's EMA weights, the hint input at 50x, a 450-step schedule stopped at step 359 (as run), a
# shorter EMA. Measured: hints still barely change the colours (README, Colour hints): it needs many more steps.
colorem train --config configs/hints.toml --out "$runs/hints2" --init-from "$runs/hints" --resume auto --no-progress --until 359 \
  --set loss.prior_file="$runs/hints/ab_prior.json" --set optim.hint_lr_scale=50 --set optim.warmup_steps=20 \
  --set run.steps=450 --set optim.ema=0.99
# The card: the default's decoding settings, with the run's own prior for the correction.
colorem export "$runs/hints2" -o "$runs/hints.safetensors" --fp16 --name hints --prior-correction 1 \
  --temperature 0.8 --vibrance 1.25 --render-size 192 \
  --description "colorem hint model: the default model given a colour-hint input (colorem.hints) and trained on \
simulated hints on a 2-core CPU (185 + 359 steps of 32 at 96x96 on the larger photos of people, streets and scenes); \
prior-corrected (strength 1), temperature 0.8, vibrance 1.25 as the default"
