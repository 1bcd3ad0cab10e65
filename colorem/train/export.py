"""Export a run (its newest good checkpoint), one checkpoint, or exported weights with new settings, to
weights + card that colorem.load reads."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import torch
from torch import nn

from colorem.train.checkpoint import load_checkpoint, resolve_resume
from colorem.train.config import Config
from colorem.weights import ModelCard, build_model, load_weights, save_weights


def load_trained_model(source: str | os.PathLike, *, use_ema: bool = True, name: str = "", description: str = "",
                       render_size: int | None = None, vibrance: float | None = None,
                       temperature: float | None = None) -> tuple[nn.Module, ModelCard]:
    """RUN_DIR or CHECKPOINT -> (model with the EMA weights when the run kept an EMA, full ModelCard).
    `temperature` sets a classification head's default annealed-mean temperature (e.g. a calibrated one)."""
    from colorem.train.loop import build_model  # the same network the run trained

    source = Path(source)
    state = resolve_resume(str(source), source)[0] if source.is_dir() else load_checkpoint(source)
    config = Config.from_dict(state["config"])
    if temperature is not None:
        _check_temperature(config.model.head)
        config.model.temperature = float(temperature)
    model = build_model(config)
    weights = state["ema"]["shadow"] if use_ema and state.get("ema") else state["model"]
    expected = model.state_dict()
    model.load_state_dict({key: value.to(expected[key].dtype) for key, value in weights.items() if key in expected},
                          strict=False)
    model.embedder.frozen = type(model.embedder).frozen  # a frozen learned embedder is still ours to ship
    data = state.get("data", {})
    card = ModelCard(
        architecture=config.model.architecture,
        architecture_options=config.model.create_kwargs(),
        render_size=render_size or config.data.size,
        vibrance=1.0 if vibrance is None else vibrance,
        name=name or source.stem,
        description=description or config.description,
        provenance={"trained_steps": int(state["step"]), "loss": config.loss.name, "optimizer": config.optim.name,
                    "precision": state.get("precision", config.run.precision), "weights": "ema" if weights is not state["model"] else "live",
                    "checkpoint": source.name, "config": config.to_dict()},
        data={"source": data.get("source", {}), "images_seen": int(data.get("images", 0)),
              "skipped": _sum_skipped(data.get("ranks", [])), "crop_size": config.data.size},
        metrics={key: value for key, value in state.get("metrics", {}).items()},
    )
    return model.eval(), card


def recard_weights(source: str | os.PathLike, *, name: str = "", description: str = "", render_size: int | None = None,
                   vibrance: float | None = None, temperature: float | None = None) -> tuple[nn.Module, ModelCard]:
    """Exported WEIGHTS (.safetensors + card) -> (model, card) with new calibrated settings: the same
    weights, e.g. trained on another machine, given the temperature and vibrance chosen on held-out photos."""
    model, card = load_weights(source)
    options = dict(card.architecture_options)
    if temperature is not None:
        _check_temperature(options.get("head"))
        options["temperature"] = float(temperature)
    card = dataclasses.replace(
        card, architecture_options=options, name=name or card.name, description=description or card.description,
        render_size=render_size or card.render_size, vibrance=card.vibrance if vibrance is None else float(vibrance),
        provenance={**card.provenance, "recarded_from": Path(source).name})
    recarded = build_model(card)
    recarded.load_state_dict(model.state_dict())
    return recarded.eval(), card


def export(source: str | os.PathLike, out: str | os.PathLike, *, dtype: torch.dtype | None = None,
           use_ema: bool = True, name: str = "", description: str = "", render_size: int | None = None,
           vibrance: float | None = None, temperature: float | None = None) -> Path:
    """RUN_DIR, CHECKPOINT or exported WEIGHTS (.safetensors) -> out.safetensors + out.json (a full
    ModelCard). dtype=torch.float16 halves the file."""
    settings = dict(name=name or Path(out).stem, description=description, render_size=render_size, vibrance=vibrance,
                    temperature=temperature)
    if Path(source).suffix == ".safetensors":
        model, card = recard_weights(source, **settings)
    else:
        model, card = load_trained_model(source, use_ema=use_ema, **settings)
    return save_weights(model, card, out, dtype=dtype)


def _check_temperature(head: str | None) -> None:
    if head != "classification":
        raise ValueError("a temperature applies to classification heads only")


def _sum_skipped(ranks: list) -> dict:
    total: dict[str, int] = {}
    for rank in ranks:
        for reason, count in rank.get("skipped", {}).items():
            total[reason] = total.get(reason, 0) + int(count)
    return total
