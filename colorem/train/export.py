"""Export a run (its newest good checkpoint), one checkpoint, or exported weights with new settings, to
weights + card that colorem.load reads."""

from __future__ import annotations

import copy
import dataclasses
import os
from pathlib import Path

import torch
from torch import nn

from colorem.errors import OptionError
from colorem.models import build_model
from colorem.train.checkpoint import resolve_resume, trained_weights
from colorem.train.config import saved_config
from colorem.train.losses import load_prior, rebalancing_weights
from colorem.weights import ModelCard, load_state, load_weights, pretrained_provenance, save_weights


def load_trained_model(source: str | os.PathLike, *, use_ema: bool = True, name: str = "", description: str = "",
                       render_size: int | None = None, vibrance: float | None = None,
                       cast_removal: float | None = None, temperature: float | None = None,
                       prior_correction: float | None = None,
                       ab_prior: str | os.PathLike | None = None) -> tuple[nn.Module, ModelCard]:
    """RUN_DIR or CHECKPOINT -> (model with the EMA weights when the run kept an EMA, full ModelCard).
    `temperature` sets a classification head's default annealed-mean temperature (e.g. a calibrated one);
    `prior_correction` undoes that share of the class rebalancing (adjust_logits) with the run's ab prior."""
    source = Path(source)
    state = resolve_resume(str(source), source)[0]  # a run folder's newest good checkpoint, or the file
    config = saved_config(state["config"])
    if temperature is not None:
        _check_temperature(config.model.head)
        config.model.temperature = float(temperature)
    model = build_model(config.model.architecture, config.model.create_kwargs())  # the network the run trained
    ema = use_ema and bool(state.get("ema"))
    load_state(model, trained_weights(state, use_ema), str(source))
    provenance = {}
    if prior_correction:
        prior = load_prior(ab_prior) if ab_prior else state.get("ab_prior")
        if prior is None:
            raise OptionError(f"{source}: the run kept no ab prior (it did not rebalance); nothing to correct")
        provenance = adjust_logits(model, torch.as_tensor(prior), config.loss.rebalance, prior_correction)
    data = state.get("data", {})
    card = ModelCard(
        architecture=config.model.architecture,
        architecture_options=config.model.create_kwargs(),
        render_size=render_size or config.data.size,
        vibrance=1.0 if vibrance is None else vibrance,
        cast_removal=0.0 if cast_removal is None else cast_removal,
        name=name or source.stem,
        description=description or config.description,
        provenance={"trained_steps": int(state["step"]), "loss": config.loss.name, "optimizer": config.optim.name,
                    "precision": state.get("precision", config.run.precision), "weights": "ema" if ema else "live",
                    "checkpoint": source.name, "config": public_config(config.to_dict()),
                    **(pretrained_provenance(config.model.architecture) if config.model.pretrained else {}), **provenance},
        data={"source": public_source(data.get("source", {})), "images_seen": int(data.get("images", 0)),
              "skipped": _sum_skipped(data.get("ranks", [])), "crop_size": config.data.size},
        metrics={key: value for key, value in state.get("metrics", {}).items()},
    )
    return model.eval(), card


def recard_weights(source: str | os.PathLike, *, name: str = "", description: str = "", render_size: int | None = None,
                   vibrance: float | None = None, cast_removal: float | None = None, temperature: float | None = None,
                   prior_correction: float | None = None, ab_prior: str | os.PathLike | None = None) -> tuple[nn.Module, ModelCard]:
    """Exported WEIGHTS (.safetensors + card) -> (model, card) with new calibrated settings: the same
    weights, e.g. trained on another machine, given the temperature and vibrance chosen on held-out photos
    (and, with `prior_correction`, the output bias adjusted with the training run's `ab_prior` file)."""
    model, card = load_weights(source)
    provenance = {**card.provenance, "recarded_from": Path(source).name}
    if "config" in provenance:
        provenance["config"] = public_config(provenance["config"])
    if prior_correction:
        done = card.provenance.get("prior_correction")
        if done and prior_correction > 0:
            raise OptionError(f"{source}: its logits are already prior-corrected ({done})")
        if prior_correction < 0 and (not done or abs(prior_correction + done["strength"]) > 1e-9):
            raise OptionError(f"{source}: a negative strength undoes an earlier correction, and its card records "
                             f"{'none' if not done else 'strength ' + str(done['strength'])}")
        if not ab_prior:
            raise OptionError("a prior correction of exported weights needs the training run's ab prior (--ab-prior FILE)")
        rebalance = card.provenance.get("config", {}).get("loss", {}).get("rebalance")
        if rebalance is None:
            raise OptionError(f"{source}: its card does not say how its training rebalanced the classes")
        entry = adjust_logits(model, load_prior(ab_prior), rebalance, prior_correction)
        if prior_correction < 0:  # undone: the raw logits of training again (e.g. to continue training them)
            provenance.pop("prior_correction")
        else:
            provenance.update(entry)
    options = dict(card.architecture_options)
    if temperature is not None:
        _check_temperature(options.get("head"))
        options["temperature"] = float(temperature)
    card = dataclasses.replace(
        card, architecture_options=options, name=name or card.name, description=description or card.description,
        render_size=render_size or card.render_size, vibrance=card.vibrance if vibrance is None else float(vibrance),
        cast_removal=card.cast_removal if cast_removal is None else float(cast_removal),
        provenance=provenance, data={**card.data, "source": public_source(card.data.get("source", {}))})
    recarded = build_model(card.architecture, card.architecture_options)  # the new temperature, say
    recarded.load_state_dict(model.state_dict())
    return recarded.eval(), card


def export(source: str | os.PathLike, out: str | os.PathLike, *, dtype: torch.dtype | None = None,
           use_ema: bool = True, name: str = "", description: str = "", render_size: int | None = None,
           vibrance: float | None = None, cast_removal: float | None = None, temperature: float | None = None,
           prior_correction: float | None = None, ab_prior: str | os.PathLike | None = None, average_with: str | os.PathLike | None = None) -> Path:
    """RUN_DIR, CHECKPOINT or exported WEIGHTS (.safetensors) -> out.safetensors + out.json (a full
    ModelCard). dtype=torch.float16 halves the file. `average_with`: other exported weights of the same
    network, averaged in (average_weights)."""
    if average_with and prior_correction:
        raise OptionError("average raw weights first (--average-with), then prior-correct the mean in a second export")
    settings = dict(name=name or Path(out).stem, description=description, render_size=render_size, vibrance=vibrance,
                    cast_removal=cast_removal, temperature=temperature, prior_correction=prior_correction, ab_prior=ab_prior)
    if Path(source).suffix == ".safetensors":
        model, card = recard_weights(source, **settings)
    else:
        model, card = load_trained_model(source, use_ema=use_ema, **settings)
    if average_with:
        card = average_weights(model, card, average_with)
    return save_weights(model, card, out, dtype=dtype)


@torch.no_grad()
def average_weights(model: nn.Module, card: ModelCard, other: str | os.PathLike) -> ModelCard:
    """Replace `model`'s floating-point weights by their mean with `other` exported weights of the same network
    (a "model soup", Wortsman et al. 2022), e.g. a continued run's and the run it continued; -> the card, with
    the other weights named in its provenance. Both must be raw: a prior correction is applied to the mean."""
    theirs, their_card = load_weights(other)
    other_name = Path(other).name
    for who, what in ((card.name, card), (other_name, their_card)):
        if what.provenance.get("prior_correction"):
            raise OptionError(f"{who}: its logits are prior-corrected; average raw exports, then correct the mean")
    ours, state = model.state_dict(), theirs.state_dict()
    if card.architecture != their_card.architecture or {key: value.shape for key, value in ours.items()} != {
            key: value.shape for key, value in state.items()}:
        raise OptionError(f"{other_name}: not the same network ({their_card.architecture}) as "
                         f"{card.name} ({card.architecture}); only weights of one network average")
    for key, value in ours.items():
        if value.is_floating_point():
            value.copy_((value.double() + state[key].double()).div(2))
    return dataclasses.replace(card, provenance={
        **card.provenance, "averaged_with": {"name": other_name,
                                             "trained_steps": their_card.provenance.get("trained_steps")}})


@torch.no_grad()
def adjust_logits(model: nn.Module, prior: torch.Tensor, rebalance: float, strength: float) -> dict:
    """Undo `strength` of the class rebalancing a classification head was trained with, in its output bias.

    Rebalanced cross-entropy (weights w from the ab prior, Zhang et al. 2016) teaches the head p(q)·w(q)
    up to a constant instead of p(q), so its colours lean to the rare, saturated bins; logits − strength·log w
    (post-hoc logit adjustment; strength 1 recovers p) are the same as subtracting it from the bias of the
    last convolution. Returns the provenance entry that records it."""
    if getattr(model, "head", None) != "classification":
        raise OptionError("a prior correction applies to classification heads only")
    if not (0.0 < abs(strength) <= 4.0):  # negative: undo an earlier correction of that strength
        raise OptionError(f"the prior correction's strength must be in [-4, 0) or (0, 4], not {strength}")
    if len(prior) != len(model.bins):
        raise OptionError(f"the ab prior has {len(prior)} bins, the model {len(model.bins)}")
    weights = rebalancing_weights(prior.float(), model.bins.float().cpu(), rebalance)
    bias = model.output.bias
    bias.copy_((bias.float() - strength * weights.log().to(bias.device)).to(bias.dtype))
    return {"prior_correction": {"strength": float(strength), "rebalance": float(rebalance)}}


def file_name(spec: str) -> str:
    """The last part of a data path, the name a card keeps: '../shared/data/train/train-{000..056}.tar' ->
    'train-{000..056}.tar', '/home/me/photos/' -> 'photos'. A card travels; the machine's paths mean nothing
    elsewhere and tell others how that machine is laid out. A URL's query ('?X-Amz-Signature=...') and whatever
    follows a pipe command's file name ('pipe:curl -s URL -H "Authorization: ..."') are dropped too: they may
    hold credentials, and the card is published (GET /api/models)."""
    if not spec:
        return spec
    spec = spec.split("?", 1)[0]
    if spec.startswith("pipe:"):  # the command's first argument that names a file, not its options
        words = spec[len("pipe:"):].split()
        paths = [word for word in words if "/" in word] or [word for word in words if "." in word]
        spec = paths[0] if paths else "pipe"
    return spec.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]


def public_config(config: dict) -> dict:
    """A run's config for a card: its data sources, validation photos and ab prior file as names."""
    config = copy.deepcopy(config)
    data, loss = config.get("data", {}), config.get("loss", {})
    if "train" in data:
        data["train"] = [file_name(spec) for spec in data["train"]]
    for section, key in ((data, "validation"), (loss, "prior_file")):
        if section.get(key):
            section[key] = file_name(section[key])
    return config


def public_source(source: dict) -> dict:
    """A data source's description (kind, count, first and last items) with its items as names."""
    return {key: [file_name(item) for item in value] if key in ("first", "last") else value
            for key, value in source.items()}


def _check_temperature(head: str | None) -> None:
    if head != "classification":
        raise OptionError("a temperature applies to classification heads only")


def _sum_skipped(ranks: list) -> dict:
    total: dict[str, int] = {}
    for rank in ranks:
        for reason, count in rank.get("skipped", {}).items():
            total[reason] = total.get(reason, 0) + int(count)
    return total
