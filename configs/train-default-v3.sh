#!/usr/bin/env bash
# Default model v3 from default v2: train v2 (configs/train-default-v2.sh), then continue its raw export as
# configs/default-v3.toml (configs/continue-default.sh); export it with the decoding settings bench/calibrate.py
# picks on held-out photos (MODEL_CARD.md, Calibration (v3)).
# Rerun the same command after an interruption: each training resumes from its newest good checkpoint.
#   bash configs/train-default-v3.sh [RUNS_FOLDER]        (default ../runs, outside the repo)
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-../runs}"
bash configs/train-default-v2.sh "$runs"
bash configs/continue-default.sh v2 v3 "$runs"
