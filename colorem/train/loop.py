"""The training loop: one Trainer (pytorch/examples DDP style) for one process, one GPU or many ranks.

batch of uint8 RGB (decoded in DataLoader workers) -> Lab on the device -> model(L) -> loss on ab
-> optimizer step -> metrics, sample grids, checkpoints (global rank 0 only).
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import signal
import threading
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from colorem.color import rgb_to_lab, split_lab
from colorem.data import Augment, DataIterator, PhotoStream, Position, load_fixed_images, resolve_source
from colorem.device import autocast, resolve_precision
from colorem.errors import ColoremError
from colorem.models import build_model
from colorem.train import distributed
from colorem.train.checkpoint import (list_checkpoints, resolve_resume, rng_state, save_checkpoint,
                                      set_rng_state, trained_weights)
from colorem.train.config import Config, ConfigError
from colorem.train.distributed import DistributedEnv
from colorem.train.hint_simulation import HintSimulation, simulate_hints
from colorem.train.logs import LogWindow, MetricsLog, progress_bar
from colorem.train.losses import CLASSIFICATION_LOSSES, ColorLoss, estimate_ab_prior, load_prior, save_prior
from colorem.train.optim import EMA, create_optimizer, create_scheduler
from colorem.train.validate import predict, score, write_grid
from colorem.weights import external_prefixes, load_pretrained, load_state, read_state

log = logging.getLogger("colorem.train")


def load_initial_weights(model: nn.Module, spec: str) -> None:
    """--init-from: weights (.safetensors), a checkpoint or a run folder -> model weights only
    (the EMA weights when the run kept an EMA); optimizer and step start fresh."""
    path = Path(spec)
    if path.suffix == ".safetensors" or path.suffix == ".json":
        state = read_state(path.with_suffix(".safetensors"))
    else:
        state = trained_weights(resolve_resume(str(path), path)[0])
    # A different head (e.g. a regression run continued as classification) starts its output layer fresh;
    # so do new hint inputs and skips (zero-initialized: the model starts as the one it came from).
    load_state(model, state, f"--init-from {spec}", start="weights")


def estimate_run_prior(config: Config, bins: torch.Tensor) -> torch.Tensor:
    """The ab prior a run of `config` estimates (deterministic: the same photos for the same config)."""
    data = config.data
    stream = PhotoStream(resolve_source(data.train), Augment.from_config(data), data.batch_size,
                         seed=config.run.seed + 1, shuffle_buffer=data.shuffle_buffer, shard_mix=data.shard_mix)
    return estimate_ab_prior((batch["rgb"] for batch in stream), bins.cpu(), config.loss.prior_images)


class Trainer:
    """Train `config` into `run_dir`. `checkpoint` (from resolve_resume) continues a run exactly."""

    def __init__(self, config: Config, run_dir: str | Path, *, env: DistributedEnv | None = None,
                 checkpoint: dict | None = None, init_from: str | None = None, progress: bool = False):
        self.config = config.validate()
        self.run_dir = Path(run_dir)
        self.env = env or distributed.setup(config.run.device)
        self.device = self.env.device
        self.progress = progress
        self.precision = resolve_precision(config.run.precision, self.device, training=True)
        self.channels_last = config.run.channels_last and self.precision != "fp32"
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # fixed crop sizes: let cuDNN pick the fastest kernels once
        if checkpoint is None and list_checkpoints(self.run_dir):
            raise ColoremError(f"{self.run_dir} already holds checkpoints: continue it with --resume auto, "
                               "or start a new run with another --out")
        torch.manual_seed(config.run.seed)  # the same initial weights on every rank
        self._build_model(init_from if checkpoint is None else None, checkpoint)
        self._build_optimization()
        self.step = 0
        self._saved_step: int | None = None  # the step of the last checkpoint written (or resumed from)
        self.metrics: dict[str, float] = {}
        self.embedding_cache: dict[str, torch.Tensor] = {}
        position, self.images_before, skipped_before = None, 0, {}
        if checkpoint is not None:  # load the snapshot before wrapping in DDP
            position, self.images_before, skipped_before = self._load_snapshot(checkpoint)
        self.ddp_model = (DistributedDataParallel(self.model, device_ids=[self.device] if self.device.type == "cuda" else None)
                          if self.env.distributed else self.model)
        self._build_data(position, skipped_before)

    # --- set-up -------------------------------------------------------------------------------
    def _build_model(self, init_from: str | None, checkpoint: dict | None) -> None:
        """The network (from --init-from weights when given), on the device; the ab prior and the loss."""
        config = self.config
        model = build_model(config.model.architecture, config.model.create_kwargs(),
                            freeze_embedder=config.model.freeze_embedder)
        if init_from:
            load_initial_weights(model, init_from)
        elif checkpoint is None and config.model.pretrained:
            load_pretrained(model, config.model.architecture)  # its family's ImageNet weights, when it has some
        # training mode as the architecture defines it (EfficientNetColorizer keeps ImageNet's batch-norm statistics
        # under frozen_bn): until 2026-12-05 nothing called train(), so frozen_bn = true had no effect in any run
        self.model = model.to(self.device).train()
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.prior = self._ab_prior(checkpoint)
        self.loss = ColorLoss(config.loss.name, bins=getattr(model, "bins", None), prior=self.prior, rebalance=config.loss.rebalance,
                              huber_delta=config.loss.huber_delta, colorfulness_weight=config.loss.colorfulness_weight,
                              mse_weight=config.loss.mse_weight, temperature=config.model.temperature).to(self.device)
        self.teacher = None
        if config.loss.semantic_weight > 0:
            teacher = model.semantic_teacher()
            if teacher is None:
                raise ConfigError(f"loss.semantic_weight: {config.model.architecture} has no pretrained classifier "
                                  "as its embedding to keep (an effnet-* architecture has)")
            self.teacher = teacher.to(self.device).eval().requires_grad_(False)
            if self.channels_last:
                self.teacher = self.teacher.to(memory_format=torch.channels_last)

    def _build_optimization(self) -> None:
        optim = self.config.optim
        self.optimizer = create_optimizer(self.model, optim)
        self.scheduler = create_scheduler(self.optimizer, optim, self.config.run.steps)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.precision == "fp16")
        self.ema = EMA(self.model, optim.ema) if optim.ema > 0 else None

    def _build_data(self, position: Position | None, skipped: dict) -> None:
        """This rank's training batches, resumed at `position`; on rank 0 the fixed validation photos."""
        data = self.config.data
        self.source = resolve_source(data.train)
        dataset = PhotoStream(self.source, Augment.from_config(data), data.batch_size, seed=self.config.run.seed,
                              rank=self.env.rank, world_size=self.env.world_size, workers=data.workers,
                              shuffle_buffer=data.shuffle_buffer, shard_mix=data.shard_mix)
        self.data = DataIterator(dataset, data.workers, position)
        self.data.skipped = dict(skipped)
        self.validation = None
        if self.env.is_main:
            self.validation = load_fixed_images(data.validation or data.train, data.validation_count, data.size,
                                                "validation photos (data.validation)" if data.validation else "training data")

    # --- snapshot -----------------------------------------------------------------------------
    def _ab_prior(self, checkpoint: dict | None) -> torch.Tensor | None:
        loss = self.config.loss
        if loss.name not in CLASSIFICATION_LOSSES or loss.rebalance >= 1.0:
            return None
        if checkpoint is not None and checkpoint.get("ab_prior") is not None:
            return torch.as_tensor(checkpoint["ab_prior"], dtype=torch.float32)
        if loss.prior_file:
            return load_prior(loss.prior_file)
        prior = None
        if self.env.is_main:  # estimated once from the training photos, stored with the run
            prior = estimate_run_prior(self.config, self.model.bins)
            self.run_dir.mkdir(parents=True, exist_ok=True)
            save_prior(prior, self.run_dir / "ab_prior.json")
        return distributed.broadcast_object(self.env, prior)

    def _load_snapshot(self, state: dict) -> tuple[Position | None, int, dict]:
        load_state(self.model, state["model"], "the checkpoint")
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        if self.ema is not None and state.get("ema"):
            self.ema.load_state_dict(state["ema"])
        self.step = self._saved_step = int(state["step"])
        self.metrics = dict(state.get("metrics", {}))
        ranks = state.get("data", {}).get("ranks", [])
        same_layout = len(ranks) == self.env.world_size
        rank_state = ranks[self.env.rank] if same_layout else (ranks[0] if ranks else {})
        rng = state.get("rng", [])
        if rng:
            set_rng_state(rng[self.env.rank] if len(rng) == self.env.world_size else rng[0])
        position = Position.from_dict(rank_state["position"]) if rank_state else None
        if position is not None and not same_layout:  # another world size: restart that epoch's new split
            position = Position(epoch=position.epoch)
        images = state.get("data", {}).get("images", 0)
        return position, images, (rank_state.get("skipped", {}) if same_layout or self.env.is_main else {})

    def model_state(self) -> dict[str, torch.Tensor]:
        """Model weights for checkpoints; an external embedder (Inception-ResNet-v2) is left out: it is
        rebuilt from its own weights file."""
        skip = external_prefixes(self.model)
        return {key: value for key, value in self.model.state_dict().items() if not (skip and key.startswith(skip))}

    def save(self) -> Path | None:
        """All ranks call this; rank 0 writes, between barriers."""
        distributed.barrier(self.env)
        ranks = distributed.gather_objects(self.env, {"position": self.data.position.to_dict(),
                                                      "skipped": dict(self.data.skipped)})
        rngs = distributed.gather_objects(self.env, rng_state())
        images = self.images_before + int(sum(distributed.gather_objects(self.env, self.data.images)))
        path = None
        if self.env.is_main:
            state = {
                "step": self.step,
                "model": self.model_state(),
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(),
                "scaler": self.scaler.state_dict(),
                "ema": self.ema.state_dict() if self.ema is not None else None,
                "config": self.config.to_dict(),
                "data": {"ranks": ranks, "images": images, "source": self.source.describe(),
                         "world_size": self.env.world_size},
                "rng": rngs,
                "metrics": dict(self.metrics),
                "ab_prior": self.prior.tolist() if self.prior is not None else None,
                "precision": self.precision,
            }
            path = save_checkpoint(self.run_dir, state, keep=self.config.run.keep_checkpoints)
            log.info("checkpoint %s", path)
        distributed.barrier(self.env)
        self._saved_step = self.step
        return path

    # --- one step -----------------------------------------------------------------------------
    def _embeddings(self, keys: list[str], l: torch.Tensor) -> torch.Tensor | None:
        """Cached outputs of a frozen embedder, per image key (computed on first sight)."""
        embedder = getattr(self.model, "embedder", None)
        if not (self.config.run.cache_embeddings and embedder is not None and embedder.frozen and embedder.dim):
            return None
        missing = [index for index, key in enumerate(keys) if key not in self.embedding_cache]
        if missing:
            with torch.no_grad(), autocast(self.device, self.precision):
                fresh = embedder(l[missing]).float().cpu()
            for index, vector in zip(missing, fresh):
                self.embedding_cache[keys[index]] = vector.half()
        return torch.stack([self.embedding_cache[key] for key in keys]).to(self.device, torch.float32)

    def _run_batch(self, batch: dict, sync: bool) -> dict[str, torch.Tensor]:
        rgb = batch["rgb"].to(self.device, non_blocking=True).float().div_(255.0)  # (B, 3, S, S)
        l, ab = split_lab(rgb_to_lab(rgb))  # (B, 1, S, S) in [0, 100], (B, 2, S, S) Lab units
        embedding = self._embeddings(batch["keys"], l)
        # Hints drawn from the global RNG, whose state every checkpoint keeps (exact resumes).
        hints = None
        if getattr(self.model, "accepts_hints", False):
            hints = simulate_hints(ab, None, HintSimulation(none_share=self.config.data.hint_free_share))
        if self.channels_last:
            l = l.contiguous(memory_format=torch.channels_last)
        no_sync = self.ddp_model.no_sync() if self.env.distributed and not sync else contextlib.nullcontext()
        with no_sync:
            with autocast(self.device, self.precision):
                raw = self.ddp_model(l, embedding, hints=hints, raw=True)
            class_logits = self.model.pop_class_logits()
            loss, parts = self.loss(raw, ab)
            if self.teacher is not None:
                semantic = self._semantic_divergence(rgb, class_logits)
                loss, parts = loss + self.config.loss.semantic_weight * semantic, {**parts, "semantic_kl": semantic.detach()}
            self.scaler.scale(loss / self.config.optim.accumulate).backward()
        return {"loss": loss.detach(), **parts}

    def _semantic_divergence(self, rgb: torch.Tensor, class_logits: torch.Tensor) -> torch.Tensor:
        """KL(teacher on the colour crop || the network's own classifier on its gray), per photo (batch mean)."""
        with torch.no_grad(), autocast(self.device, self.precision):
            target = self.teacher(rgb.contiguous(memory_format=torch.channels_last) if self.channels_last else rgb)
        return F.kl_div(class_logits.float().log_softmax(dim=1), target.float().log_softmax(dim=1),
                        log_target=True, reduction="batchmean")

    def _optimizer_step(self) -> None:
        if self.config.optim.grad_clip > 0:
            self.scaler.unscale_(self.optimizer)
            nn.utils.clip_grad_norm_(self.model.parameters(), self.config.optim.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        self.scheduler.step()
        if self.ema is not None:
            self.ema.update(self.model)
        self.step += 1

    # --- the run ------------------------------------------------------------------------------
    def validate(self) -> dict[str, float]:
        """Rank 0: metrics on the fixed validation photos (EMA weights when kept) and a sample grid."""
        if self.validation is None:
            return {}
        model = self.model
        if self.ema is not None:
            model = copy.deepcopy(self.model)
            model.load_state_dict(self.ema.weights(self.model))
        rgb_true, l, ab = predict(model, self.validation[0], self.device, self.precision)
        metrics = score(rgb_true, l, ab)
        write_grid(self.run_dir / "samples" / f"step-{self.step:08d}.png", rgb_true, l, ab, self.config.data.grid_count)
        self.metrics = {**metrics, "step": self.step}
        return metrics

    def fit(self, until: int | None = None) -> dict[str, Any]:
        """Train to config.run.steps (or stop at step `until`, with a checkpoint: a time-boxed session).
        Returns a summary; status "interrupted" after SIGINT/SIGTERM (a checkpoint was written first)."""
        run = self.config.run
        until = run.steps if until is None else min(until, run.steps)
        if self.env.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            (self.run_dir / "config.json").write_text(json.dumps(self.config.to_dict(), indent=2) + "\n")
        logger = MetricsLog(self.run_dir, self.step, run.tensorboard) if self.env.is_main else None
        self._stop: str | None = None
        handlers = self._install_signal_handlers()
        bar = progress_bar(run.steps, self.step, self.progress and self.env.is_main)
        window = LogWindow()
        status = "completed"
        try:
            while self.step < until:
                if distributed.any_rank(self.env, self._stop is not None) or not self._train_step(window):
                    status = "interrupted"
                    break
                bar.update(1)
                self._after_step(self.step == until, window, bar, logger)
            if status == "interrupted":
                if self._saved_step != self.step:  # not again when the signal came just after a checkpoint
                    self.save()
        finally:
            bar.close()
            self._restore_signal_handlers(handlers)
            if logger:
                logger.close()
            self.data.close()
        if status == "completed" and self.step < run.steps:
            status = "paused"
        return {"status": status, "step": self.step, "signal": self._stop, "images": self.images_seen(),
                "skipped": dict(self.data.skipped), "metrics": dict(self.metrics), "run_dir": str(self.run_dir)}

    def _train_step(self, window: LogWindow) -> bool:
        """One optimizer step over optim.accumulate micro-batches. False when a signal arrived mid-step (and may
        have stopped the decoding workers): the partial step is dropped, the data position rolled back."""
        accumulate = self.config.optim.accumulate
        snapshot = (self.data.position.to_dict(), dict(self.data.skipped), self.data.images)
        try:
            for micro in range(accumulate):
                batch = next(self.data)
                parts = self._run_batch(batch, sync=micro == accumulate - 1)
                window.images += len(batch["keys"])
        except Exception:
            if self._stop is None:
                raise
            self.data.position = Position.from_dict(snapshot[0])
            self.data.skipped, self.data.images = snapshot[1], snapshot[2]
            self.optimizer.zero_grad(set_to_none=True)
            return False
        self._optimizer_step()
        window.losses.append(parts)
        return True

    def _after_step(self, last: bool, window: LogWindow, bar, logger: MetricsLog | None) -> None:
        """The cadence of a run: a log line every run.log_every steps, validation every run.validate_every
        (rank 0, and at the very end), a checkpoint every run.checkpoint_every (and at the last step)."""
        run = self.config.run
        if self.step % run.log_every == 0 or last:
            record, images_per_s = window.close(self.env)
            record.update(step=self.step, epoch=self.data.position.epoch, lr=self.scheduler.get_last_lr()[0],
                          img_per_s=images_per_s, images=self.images_seen(), skipped=dict(self.data.skipped))
            bar.set_postfix(loss=f"{record['loss']:.4f}", img_s=f"{images_per_s:.1f}")
            if self.env.is_main and not self.progress:  # --no-progress: the same figures as log lines
                log.info("step %d/%d loss %.4f lr %.3g %.1f img/s", self.step, run.steps, record["loss"],
                         record["lr"], images_per_s)
            if logger:
                logger.write(record)
        if self.env.is_main and ((run.validate_every and self.step % run.validate_every == 0) or self.step == run.steps):
            metrics = self.validate()
            if logger:
                logger.write({"step": self.step, **metrics})
        if self.step % run.checkpoint_every == 0 or last:
            self.save()

    def images_seen(self) -> int:
        """Images trained on so far (this rank's count times the world size, plus earlier sessions)."""
        return self.images_before + self.data.images * self.env.world_size

    def _install_signal_handlers(self) -> dict:
        if threading.current_thread() is not threading.main_thread():
            return {}

        def request_stop(signum, frame):
            if self._stop is not None:
                raise KeyboardInterrupt  # a second signal: stop now, without a checkpoint
            self._stop = signal.Signals(signum).name

        return {signum: signal.signal(signum, request_stop) for signum in (signal.SIGINT, signal.SIGTERM)}

    @staticmethod
    def _restore_signal_handlers(handlers: dict) -> None:
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
