"""Optimizer, learning-rate schedule (linear warmup, then cosine) and an EMA of the weights."""

from __future__ import annotations

import math

import torch
from torch import nn

from colorem.train.config import OptimConfig


def create_optimizer(model: nn.Module, config: OptimConfig) -> torch.optim.Optimizer:
    """AdamW by default; RMSprop and Adam as in the original Keras recipe. Biases and 1-d parameters
    get no weight decay. Learning rates by the model's parameter_role (colorem.models.registry): the
    zero-initialized layers added to a trained network ("new": hint inputs, skips) learn at lr × hint_lr_scale,
    the layers initialised from pretrained weights at lr × pretrained_lr_scale (0: frozen)."""
    named = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
    scales = {"base": 1.0, "new": config.hint_lr_scale, "pretrained": config.pretrained_lr_scale}
    groups = []
    for role, scale in scales.items():
        lr = config.lr * scale
        parameters = [p for name, p in named if model.parameter_role(name) == role]
        if lr == 0:
            for parameter in parameters:
                parameter.requires_grad_(False)
            continue
        groups += [{"params": [p for p in parameters if p.ndim > 1], "weight_decay": config.weight_decay, "lr": lr},
                   {"params": [p for p in parameters if p.ndim <= 1], "weight_decay": 0.0, "lr": lr}]
    groups = [group for group in groups if group["params"]]
    if config.name == "adamw":
        return torch.optim.AdamW(groups, lr=config.lr, betas=tuple(config.betas))
    if config.name == "adam":
        return torch.optim.Adam(groups, lr=config.lr, betas=tuple(config.betas))
    if config.name == "rmsprop":
        return torch.optim.RMSprop(groups, lr=config.lr, momentum=config.momentum, alpha=0.9, eps=1e-7)
    raise ValueError(f"unknown optimizer {config.name!r}")


def lr_factor(step: int, total_steps: int, warmup_steps: int, min_ratio: float) -> float:
    """Linear warmup over `warmup_steps`, then cosine from 1 to `min_ratio` at `total_steps`."""
    if warmup_steps and step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def create_scheduler(optimizer: torch.optim.Optimizer, config: OptimConfig, total_steps: int):
    warmup = min(config.warmup_steps, max(total_steps - 1, 0))
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(step, total_steps, warmup, config.min_lr_ratio))


class EMA:
    """Exponential moving average of a model's floating-point state (parameters and buffers)."""

    def __init__(self, model: nn.Module, decay: float):
        self.decay = decay
        self.shadow = {key: value.detach().clone().float() for key, value in model.state_dict().items()
                       if value.is_floating_point()}

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        for key, value in model.state_dict().items():
            if key in self.shadow:
                self.shadow[key].lerp_(value.detach().float(), 1 - self.decay)

    def state_dict(self) -> dict:
        return {"decay": self.decay, "shadow": self.shadow}

    def load_state_dict(self, state: dict) -> None:
        self.decay = state["decay"]
        for key, value in state["shadow"].items():
            if key in self.shadow:
                self.shadow[key].copy_(value)

    def weights(self, model: nn.Module) -> dict:
        """The model's state dict with the averaged values in place of the live ones."""
        return {key: self.shadow[key].to(value.dtype) if key in self.shadow else value
                for key, value in model.state_dict().items()}
