#!/usr/bin/env bash
# Default model v9: the lite2 chain (configs/train-lite2.sh: v5's, v6's and v7's stages on an ImageNet-pretrained
# EfficientNet-Lite2, then a fourth stage twice from the third, at 160² and at 224² crops), the mean of the two fourth
# stages' raw weights (a model soup, `colorem export --average-with`), calibrated on held-out photos of shard 000070
# by the rule of v5-v7 (bench/calibrate.py) and exported with the chosen settings as the shipped card
# (colorem/pretrained/default.*: name, description, render size 256, float16 storage) into RUNS/default-v9.safetensors.
# Resumable: rerun after an interruption. Needs the train extra: pip install ".[train]"
#   bash configs/train-default-v9.sh [RUNS_FOLDER]        (default ../runs, outside the repo)
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-../runs}"
DESCRIPTION="colorem default v9: an ImageNet-pretrained EfficientNet-Lite2 U-Net, its classifier as the global embedding; \
three stages, then the mean of a fourth at 160² and at 224² (configs/train-default-v9.sh)"
bash configs/train-lite2.sh "$runs"
eval "$(tail -n 1 "$runs/lite2-soup44-calibration.txt" | sed "s#-o OUT.safetensors#-o $runs/default-v9.safetensors#") \
  --name default --render-size 256 --fp16 --description \"\$DESCRIPTION\""
