#!/usr/bin/env bash
# Candidates after v9 (not shipped; MODEL_CARD.md, "Without class rebalancing, from v9"): v9 (configs/train-default-v9.sh)
# one stage further WITHOUT class rebalancing (loss.rebalance = 1). v9's raw weights get the prior correction they
# were always decoded with (so the head starts from the classes' probabilities, not the rebalanced ones), then v7's
# stage recipe runs twice from them, at 160² crops (1,200 × 24) and at 224² crops (600 × 24), and the two are
# averaged. Each is calibrated on held-out photos of shard 000070 by the rule of v5-v9 (bench/calibrate.py, at low
# temperatures: a head trained without rebalancing is sharper) and exported as RUNS/lite2-l1-{160,224,soup}.safetensors.
# Resumable: rerun after an interruption. Needs the train extra: pip install ".[train]"
#   bash configs/train-lite2-unbalanced.sh [RUNS_FOLDER]        (default ../runs, outside the repo)
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-../runs}"
bash configs/train-lite2.sh "$runs"
[ -s "$runs/v9-corrected-raw.safetensors" ] || colorem export "$runs/lite2-soup44-raw.safetensors" \
  -o "$runs/v9-corrected-raw.safetensors" --prior-correction 1 --ab-prior "$runs/lite2-stage4-224/ab_prior.json" --temperature 1.0
stage() {  # NAME RUN [--set ...]: v7's stage recipe without rebalancing from v9, exported raw
  local name=$1 run=$2
  shift 2
  colorem train --config configs/default-v7.toml --set model.architecture=effnet-lite2-unet \
    --set 'model.options={frozen_bn=true}' --set loss.rebalance=1.0 "$@" --out "$runs/$run" \
    --init-from "$runs/v9-corrected-raw.safetensors" --resume auto --no-progress
  colorem export "$runs/$run" -o "$runs/$name-raw.safetensors" --name "$name-raw" --temperature 1.0
}
stage lite2-l1-160 lite2-stage5-l1 --set run.steps=1200 --set run.seed=89
stage lite2-l1-224 lite2-stage5-l1-224 --set data.size=224 --set run.steps=600 --set run.seed=97
colorem export "$runs/lite2-l1-224-raw.safetensors" -o "$runs/lite2-l1-soup-raw.safetensors" --name lite2-l1-soup-raw \
  --average-with "$runs/lite2-l1-160-raw.safetensors" --temperature 1.0
for name in lite2-l1-160 lite2-l1-224 lite2-l1-soup; do
  [ -s "$runs/$name.safetensors" ] && continue
  python bench/calibrate.py --model "$runs/$name-raw.safetensors" --images ../shared/data/train/train-000070.tar \
    --limit 400 --strengths 1 --temperatures 0.2,0.3 --casts 0,0.25 --margin 1.0 --max-false 1.5 | tee "$runs/$name-calibration.txt"
  eval "$(tail -n 1 "$runs/$name-calibration.txt" | sed "s#-o OUT.safetensors#-o $runs/$name.safetensors#") \
    --name $name --render-size 256 --fp16"
done
