#!/usr/bin/env bash
# One continuation step of the default model: export the run PREVIOUS at temperature 1 without prior correction
# (its raw logits), then continue it as configs/default-NEXT.toml. Resumes after an interruption.
#   bash configs/continue-default.sh PREVIOUS NEXT [RUNS_FOLDER]     e.g. v2 v3 ../runs
set -euo pipefail
cd "$(dirname "$0")/.."
previous="$1" next="$2" runs="${3:-../runs}"
if [ ! -f "$runs/default-$previous-raw.safetensors" ]; then
  colorem export "$runs/default-$previous" -o "$runs/default-$previous-raw.safetensors" --name "default-$previous-raw" \
    --temperature 1.0
fi
colorem train --config "configs/default-$next.toml" --out "$runs/default-$next" \
  --init-from "$runs/default-$previous-raw.safetensors" --resume auto --no-progress
