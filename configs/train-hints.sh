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
  colorem export colorem/weights/default.safetensors -o "$runs/default-raw.safetensors" --name default-raw \
    --prior-correction -1 --ab-prior "$runs/stage1_ab_prior.json"
fi
colorem train --config configs/hints.toml --out "$runs/hints" --init-from "$runs/default-raw.safetensors" --resume auto --no-progress
