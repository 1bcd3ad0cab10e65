#!/usr/bin/env bash
# Default model v2 (with colour hints) from default v1: take v1 as shipped at commit 0ec2daa (configs/train-default.sh
# trains it), undo its prior correction with the ab prior its stage 1 estimated (re-estimated here from
# configs/default.toml: the same photos, so the same prior), continue it as configs/default-v2.toml, then export
# with the decoding settings bench/calibrate.py picks on held-out shard 000071 (MODEL_CARD.md, Calibration).
# Rerun the same command after an interruption: the training resumes from its newest good checkpoint.
#   bash configs/train-default-v2.sh [RUNS_FOLDER]        (default ../runs, outside the repo)
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-../runs}"
mkdir -p "$runs"
if [ ! -f "$runs/default-v1-raw.safetensors" ]; then
  git show 0ec2daa:colorem/weights/default.safetensors > "$runs/default-v1.safetensors"
  git show 0ec2daa:colorem/weights/default.json > "$runs/default-v1.json"
  python - "$runs/stage1_ab_prior.json" <<'PY'
import sys
from colorem.color import ab_bins
from colorem.train.config import load_config
from colorem.train.loop import estimate_run_prior
from colorem.train.losses import save_prior
save_prior(estimate_run_prior(load_config("configs/default.toml"), ab_bins()), sys.argv[1])
PY
  colorem export "$runs/default-v1.safetensors" -o "$runs/default-v1-raw.safetensors" --name default-v1-raw \
    --prior-correction -1 --ab-prior "$runs/stage1_ab_prior.json"
fi
colorem train --config configs/default-v2.toml --out "$runs/default-v2" --init-from "$runs/default-v1-raw.safetensors" \
  --resume auto --no-progress
