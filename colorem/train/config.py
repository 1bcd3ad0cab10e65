"""Training configuration: typed dataclasses, one per concern, loaded from TOML presets with
`--set section.key=value` overrides that are parsed and type-checked. Saved into every checkpoint."""

from __future__ import annotations

import dataclasses
import math
import os
import typing
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from colorem.errors import ColoremError, OptionError
from colorem.models import EMBEDDERS, list_models, model_spec
from colorem.train.hint_simulation import HintSimulation
from colorem.train.losses import CLASSIFICATION_LOSSES, LOSSES

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    try:
        import tomli as tomllib  # type: ignore[no-redef]
    except ModuleNotFoundError as error:
        raise ImportError("reading TOML presets on Python 3.10 needs tomli: pip install tomli") from error


class ConfigError(ColoremError, ValueError):
    """A preset or an override names an unknown key or gives a value of the wrong type."""


@dataclass
class ModelConfig:
    architecture: str = "color-em-original"  # a name from colorem.models.list_models()
    embedder: str = "learned"  # learned | none | inception_resnet_v2
    embed_dim: int = 0  # 0 = the architecture's default
    embedder_options: dict = field(default_factory=dict)  # e.g. {weights = "irv2.safetensors"}
    head: str = "regression"  # regression (MSE/Huber losses) | classification (ab bins)
    temperature: float = 0.38  # annealed-mean T of the classification head at inference
    upsample: str = "nearest"  # nearest (original) | bilinear
    freeze_embedder: bool = False  # keep the embedder fixed (then its embeddings can be cached)
    hints: bool = False  # a colour-hint input, trained on hints simulated from the true colours (colorem.hints)
    skips: bool = False  # encoder-to-decoder skips at H/4 and H/2 (zero-initialized: a model without starts equal)
    options: dict = field(default_factory=dict)  # further options of the architecture (its schema), e.g. {frozen_bn = false}
    pretrained: bool = True  # start from the architecture's pretrained weights when it has some (models.PretrainedCfg)

    def create_kwargs(self) -> dict[str, Any]:
        """The create_model() arguments; also the `architecture_options` of an exported card. Only the options the
        architecture's schema knows: a field it does not take must keep its default (ConfigError otherwise)."""
        schema = model_spec(self.architecture).options
        kwargs = {key: value for key, value in self._fusion_kwargs().items() if key in schema}
        defaults = ModelConfig(architecture=self.architecture)._fusion_kwargs()
        unused = [key for key, value in self._fusion_kwargs().items() if key not in schema and defaults.get(key) != value]
        if unused:
            raise ConfigError(f"model.{unused[0]}: {self.architecture} has no such option; it takes {', '.join(schema)}")
        for key, value in self.options.items():
            if key not in schema:
                raise ConfigError(f"model.options.{key}: {self.architecture} has no such option; it takes {', '.join(schema)}")
            kwargs[key] = value
        return kwargs

    def _fusion_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"embedder": self.embedder, "head": self.head, "upsample": self.upsample}
        if self.embed_dim:
            kwargs["embed_dim"] = self.embed_dim
        if self.embedder_options:
            kwargs["embedder_options"] = dict(self.embedder_options)
        if self.head == "classification":
            kwargs["temperature"] = self.temperature
        if self.hints:
            kwargs["hints"] = True
        if self.skips:
            kwargs["skips"] = True
        return kwargs


@dataclass
class DataConfig:
    train: list = field(default_factory=list)  # folders, *.tar shards, globs, {000..009} patterns, pipe: URLs
    size: int = 128  # square training crop
    small_images: str = "upscale"  # images smaller than `size`: upscale (then crop) | skip
    hflip: bool = True
    rotation: float = 0.0  # max degrees, as Keras' rotation_range
    zoom: float = 0.0  # scale drawn from [1 - zoom, 1 + zoom] per axis, as Keras' zoom_range
    shear: float = 0.0  # max shear angle in degrees, as Keras' shear_range
    gray_threshold: float = 0.02  # mean (max - min) RGB below this: near-gray, skipped and counted
    hint_free_share: float = HintSimulation.none_share  # a hint model's photos trained without simulated hints
    batch_size: int = 16  # per rank, per micro-batch
    workers: int = 2  # DataLoader decoding processes per rank (0 = decode in the training process)
    shuffle_buffer: int = 256  # in-stream shuffle on top of the per-epoch shard/file shuffle
    shard_mix: int = 8  # shards each stream reads at once, a photo of each in turn (1: one shard after another)
    validation: str = ""  # a folder or shards of fixed validation photos; empty: the first training photos
    validation_count: int = 16  # images scored at every validation
    grid_count: int = 8  # of those, rows in the PNG sample grid


@dataclass
class LossConfig:
    name: str = "mse"  # mse | classification | huber_colorfulness | mix | colorful (colorem.train.losses)
    rebalance: float = 0.5  # λ of Zhang et al. (2016): 0 = full rebalancing, 1 = none
    prior_images: int = 2000  # training images used to estimate the ab prior for rebalancing
    prior_file: str = ""  # a saved ab prior (JSON) to use instead of estimating one
    huber_delta: float = 0.05  # in units of ab / 128
    colorfulness_weight: float = 0.5  # huber_colorfulness, colorful: penalty on chroma below the target's
    mse_weight: float = 1.0  # mix: weight of the MSE on the annealed-mean ab (in units of ab / 128)
    semantic_weight: float = 0.0  # weight of the KL from the pretrained classifier on colour to the network's own on
    # gray (ChromaGAN's class loss): keeps a classifier embedding (effnet-*) saying what is in the photo


@dataclass
class OptimConfig:
    name: str = "adamw"  # adamw | rmsprop (the original Keras recipe) | adam
    lr: float = 3e-4
    weight_decay: float = 0.01
    betas: list = field(default_factory=lambda: [0.9, 0.99])
    momentum: float = 0.0  # rmsprop only
    warmup_steps: int = 200
    min_lr_ratio: float = 0.05  # cosine decays to lr * min_lr_ratio at the last step
    grad_clip: float = 1.0  # max global gradient norm; 0 = off
    accumulate: int = 1  # micro-batches per optimizer step
    ema: float = 0.0  # EMA decay of the weights (e.g. 0.999); 0 = off. Export prefers the EMA weights.
    hint_lr_scale: float = 1.0  # learning-rate multiplier of the zero-initialized new layers: hint inputs, skips
    pretrained_lr_scale: float = 1.0  # learning-rate multiplier of the layers initialised from pretrained weights


@dataclass
class RunConfig:
    steps: int = 1000  # optimizer steps in total (resumes continue to this number)
    device: str = "auto"  # auto | cpu | cuda
    precision: str = "auto"  # auto: bf16 where fast, else fp16 + GradScaler on CUDA, else fp32 | bf16 | fp16 | fp32
    channels_last: bool = True  # only applied with bf16/fp16, where it pays off
    seed: int = 0
    log_every: int = 20
    validate_every: int = 500  # validation metrics and the PNG sample grid; 0 = only at the end
    checkpoint_every: int = 500
    keep_checkpoints: int = 3
    cache_embeddings: bool = False  # cache frozen-embedder outputs per image key (computed once per photo)
    tensorboard: bool = True  # when tensorboard is installed


# The float settings' ranges, checked by Config.validate: a NaN learning rate once reached torch as a
# traceback, and a NaN in any of these would train nothing without saying why.
FLOAT_RANGES = {
    "optim.lr": (1e-12, 10.0), "optim.weight_decay": (0.0, 10.0), "optim.momentum": (0.0, 1.0),
    "optim.min_lr_ratio": (0.0, 1.0), "optim.grad_clip": (0.0, 1e6), "optim.ema": (0.0, 0.999999),
    "optim.hint_lr_scale": (1e-6, 1e4), "optim.pretrained_lr_scale": (0.0, 1e4),
    "data.rotation": (0.0, 180.0), "data.zoom": (0.0, 0.9), "data.shear": (0.0, 89.0),
    "data.gray_threshold": (0.0, 1.0), "data.hint_free_share": (0.0, 1.0),
    "loss.huber_delta": (1e-6, 10.0), "loss.colorfulness_weight": (0.0, 100.0), "loss.mse_weight": (0.0, 100.0),
    "loss.semantic_weight": (0.0, 100.0),
}


@dataclass
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    run: RunConfig = field(default_factory=RunConfig)
    description: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Plain dicts/lists/numbers only, so checkpoints load with torch.load(weights_only=True)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "Config":
        return _build(cls, values, "")

    def validate(self) -> "Config":
        classification = self.loss.name in CLASSIFICATION_LOSSES
        if self.loss.name not in LOSSES:
            raise ConfigError(f"loss.name: unknown loss {self.loss.name!r}")
        if classification != (self.model.head == "classification"):
            wanted = "classification" if classification else "regression"
            raise ConfigError(f"loss.name={self.loss.name!r} needs model.head={wanted!r}")
        if self.optim.name not in ("adamw", "adam", "rmsprop"):
            raise ConfigError(f"optim.name: unknown optimizer {self.optim.name!r}")
        if self.run.precision not in ("auto", "bf16", "fp16", "fp32"):
            raise ConfigError(f"run.precision: {self.run.precision!r} is not auto, bf16, fp16 or fp32")
        if self.data.small_images not in ("upscale", "skip"):
            raise ConfigError("data.small_images must be 'upscale' or 'skip'")
        if self.data.size < 8 or self.data.size % 8:
            raise ConfigError(f"data.size must be a positive multiple of 8, not {self.data.size}")
        if min(self.optim.accumulate, self.data.batch_size, self.data.shard_mix, self.run.steps) < 1:
            raise ConfigError("optim.accumulate, data.batch_size, data.shard_mix and run.steps must be at least 1")
        if not 0.0 <= self.loss.rebalance <= 1.0:
            raise ConfigError("loss.rebalance (λ) must lie in [0, 1]")
        model = self.model
        for key, value, choices in (("model.head", model.head, ("regression", "classification")),
                                    ("model.upsample", model.upsample, ("nearest", "bilinear")),
                                    ("model.embedder", model.embedder, tuple(EMBEDDERS))):
            if value not in choices:  # once a traceback, or (upsample) a run that could never be exported
                raise ConfigError(f"{key} must be one of {', '.join(choices)}, not {value!r}")
        if not 0 <= model.embed_dim <= 4096:
            raise ConfigError(f"model.embed_dim must be from 0 (the embedder's own) to 4096, not {model.embed_dim}")
        if self.data.workers < 0 or min(self.run.log_every, self.run.checkpoint_every, self.run.keep_checkpoints) < 1:
            raise ConfigError("data.workers must be at least 0; run.log_every, run.checkpoint_every and "
                              "run.keep_checkpoints at least 1 (run.validate_every 0 turns validation off)")
        if len(self.optim.betas) != 2 or not all(isinstance(b, (int, float)) and 0 <= b < 1 for b in self.optim.betas):
            raise ConfigError(f"optim.betas must be two numbers in [0, 1), not {self.optim.betas!r}")
        if self.model.architecture not in list_models():
            raise ConfigError(f"model.architecture: unknown {self.model.architecture!r}; colorem has {', '.join(list_models())}")
        from colorem.limits import check_card  # the card's checks: what training builds, a card can hold
        try:
            check_card({"architecture": model.architecture, "architecture_options": model.create_kwargs()}, "model")
        except OptionError as error:
            raise ConfigError(str(error)) from None
        for key, (low, high) in FLOAT_RANGES.items():
            section, name = key.split(".")
            value = getattr(getattr(self, section), name)
            if not (math.isfinite(value) and low <= value <= high):
                raise ConfigError(f"{key} must be a number from {low:g} to {high:g}, not {value!r}")
        return self


def _build(cls, values: dict[str, Any], prefix: str):
    if not isinstance(values, dict):
        raise ConfigError(f"{prefix or 'config'}: expected a table, got {values!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise ConfigError(f"unknown config key(s) {', '.join(prefix + key for key in unknown)}; "
                          f"known in {prefix or 'the top level'}: {', '.join(sorted(names))}")
    kwargs = {}
    for name, value in values.items():
        kind = hints[name]
        if dataclasses.is_dataclass(kind):
            kwargs[name] = _build(kind, value, f"{prefix}{name}.")
        else:
            kwargs[name] = _check_type(value, kind, prefix + name)
    return cls(**kwargs)


def _check_type(value: Any, kind: type, key: str) -> Any:
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if kind is list and isinstance(value, tuple):
        return list(value)
    if kind is int and isinstance(value, bool) or not isinstance(value, kind):
        raise ConfigError(f"{key}: expected {kind.__name__}, got {type(value).__name__} {value!r}")
    return value


def load_config(path: str | os.PathLike | None = None, overrides: list[str] = ()) -> Config:
    """A preset (TOML; missing keys keep their defaults) plus `section.key=value` overrides."""
    values: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file not found: {path}")
        try:
            values = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as error:
            raise ConfigError(f"{path}: not valid TOML ({error})") from None
    config = Config.from_dict(values)
    return apply_overrides(config, overrides).validate()


# Keys added after runs were saved, with the value that reproduces what those runs did.
PREDATED = {"data": {"shard_mix": 1}}


def saved_config(values: dict[str, Any]) -> Config:
    """A config as a checkpoint saved it: the keys it predates keep the run as it was (so it resumes exactly)."""
    values = {name: dict(value) if isinstance(value, dict) else value for name, value in values.items()}
    for section, keys in PREDATED.items():
        for key, value in keys.items():
            values.setdefault(section, {}).setdefault(key, value)
    return Config.from_dict(values)


def apply_overrides(config: Config, overrides: list[str]) -> Config:
    """Apply `section.key=value` strings; values are TOML (`3e-4`, `true`, `[0.9, 0.99]`) or bare strings."""
    values = config.to_dict()
    for override in overrides:
        key, sep, text = override.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"override {override!r} is not of the form section.key=value")
        *sections, name = key.strip().split(".")
        table = values
        for section in sections:
            if not isinstance(table.get(section), dict):
                raise ConfigError(f"override {override!r}: no config section {section!r}")
            table = table[section]
        if name not in table:
            raise ConfigError(f"override {override!r}: unknown key {key.strip()!r}")
        table[name] = _parse_value(text.strip(), table[name])
    return Config.from_dict(values)


def _parse_value(text: str, current: Any) -> Any:
    try:
        value = tomllib.loads(f"value = {text}")["value"]
    except tomllib.TOMLDecodeError:
        value = text  # a bare string: --set data.validation=/photos/val
    if isinstance(current, str) and not isinstance(value, str):
        value = text  # keep "1e-3"-looking strings (names, paths) as written
    if isinstance(current, list) and isinstance(value, str):
        value = [item for item in value.split(",") if item]  # --set data.train=a.tar,b.tar
    return value
