"""Exported weights: a safetensors file plus a JSON card beside it. Loading never unpickles."""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Mapping

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save
from torch import nn

from colorem.atomic import write_atomic
from colorem.errors import OptionError, WeightsError
from colorem.limits import check_card
from colorem.models import build_model

CARD_FORMAT = "colorem-card/1"
DEFAULT_NAME = "default"


@dataclass
class ModelCard:
    """What a weights file is: how to rebuild the network and how it was made and measured."""

    architecture: str
    architecture_options: dict[str, Any] = field(default_factory=dict)
    render_size: int = 256
    vibrance: float = 1.0  # scale on predicted ab before the user's saturation (calibrated per model)
    cast_removal: float = 0.0  # share of each photo's mean predicted ab taken away before the vibrance (a cast)
    name: str = ""
    description: str = ""
    provenance: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    license: str = ""
    format: str = CARD_FORMAT

    @classmethod
    def from_dict(cls, values: dict[str, Any], source: str = "the model card") -> "ModelCard":
        """A card from its JSON fields, checked against colorem.limits first (types, ranges, known options)."""
        if isinstance(values, dict) and "architecture" not in values:
            raise WeightsError(f"{source} has no 'architecture'")
        try:
            check_card(values, source)
        except OptionError as error:
            raise WeightsError(str(error)) from None
        return cls(**{key: values[key] for key in cls.__dataclass_fields__ if key in values})


def card_path(weights_path: str | os.PathLike) -> Path:
    return Path(weights_path).with_suffix(".json")


def packaged_weights(name: str = DEFAULT_NAME) -> Path:
    """Path of weights shipped inside the package (may not exist)."""
    return Path(str(resources.files("colorem") / "pretrained" / f"{name}.safetensors"))


def external_prefixes(model: nn.Module) -> tuple[str, ...]:
    """Keys whose weights live in their own file (an external embedder's), never copied into ours."""
    return tuple(getattr(model, "external_prefixes", ()))


def save_weights(model: nn.Module, card: ModelCard, path: str | os.PathLike, dtype: torch.dtype | None = None) -> Path:
    """Write `path` (.safetensors) and its card (.json), each atomically."""
    path = Path(path).with_suffix(".safetensors")
    ModelCard.from_dict(asdict(card), f"the card for {path.name}")  # never write a card that loading refuses
    skip = external_prefixes(model)
    state = {}
    for key, tensor in model.state_dict().items():
        if skip and key.startswith(skip):
            continue
        tensor = tensor.detach().cpu()
        if dtype is not None and tensor.is_floating_point() and key != "bins":
            tensor = tensor.to(dtype)
        state[key] = tensor.contiguous()
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, save(state, metadata={"format": CARD_FORMAT}), durable=True)
    text = json.dumps(asdict(card), indent=2, sort_keys=False) + "\n"
    write_atomic(card_path(path), text.encode("utf-8"), durable=True)
    return path


def resolve_weights(name_or_path: str | os.PathLike | None) -> Path:
    """A name of packaged weights or a path (file or folder) -> the .safetensors path."""
    if name_or_path is None or str(name_or_path) == DEFAULT_NAME:
        path = packaged_weights(DEFAULT_NAME)
        if not path.exists():
            raise WeightsError(
                "no trained weights are installed: this build of colorem ships without a default model. "
                "Train one with `colorem train` and export it with `colorem export`, then pass "
                "--model PATH/TO/weights.safetensors (or colorem.load(PATH))."
            )
        return path
    path = Path(name_or_path)
    if path.is_dir():
        candidates = sorted(path.glob("*.safetensors"))
        if len(candidates) != 1:
            raise WeightsError(f"{path}: expected exactly one .safetensors file in the folder, found {len(candidates)}")
        return candidates[0]
    if path.suffix == ".json" and path.with_suffix(".safetensors").exists():
        return path.with_suffix(".safetensors")
    if path.exists():
        if path.suffix != ".safetensors":
            if path.suffix == ".onnx":
                raise WeightsError(f"{path}: a .onnx runs beside the weights it was exported from: name it "
                                   f"WEIGHTS.onnx next to WEIGHTS.safetensors and pass --model WEIGHTS.safetensors")
            raise WeightsError(f"{path}: weights must be a .safetensors file (other formats may run code when loaded)")
        return path
    if not path.suffix and packaged_weights(str(name_or_path)).exists():
        return packaged_weights(str(name_or_path))
    raise WeightsError(f"no weights named or found at {name_or_path!s}")


def read_card(weights_path: Path) -> ModelCard:
    path = card_path(weights_path)
    if not path.exists():
        raise WeightsError(f"{weights_path}: its card {path.name} is missing beside it")
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise WeightsError(f"{path}: not a valid model card ({error})") from None
    except OSError as error:
        raise WeightsError(f"{path}: cannot read the model card ({error.strerror or error})") from None
    return ModelCard.from_dict(values, str(path))


def load_weights(name_or_path: str | os.PathLike | None = None, embedder_options: dict | None = None) -> tuple[nn.Module, ModelCard]:
    """Rebuild the network from its card and fill it from safetensors. Returns (model in eval mode, card).

    Nothing is allocated on the card's word: the card is checked against colorem.limits, the network is
    first built on the meta device (shapes, no memory) and compared with the shapes the safetensors
    header declares; only when they match are the real network built and the tensors read."""
    path = resolve_weights(name_or_path)
    card = read_card(path)
    with torch.device("meta"), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # an external embedder's own weights "copied" into meta tensors: a no-op
        shapes = build_model(card.architecture, card.architecture_options, embedder_options=embedder_options)
    skip = external_prefixes(shapes)
    check_shapes(_header_shapes(path), _shapes(shapes.state_dict()), str(path), skip=skip)
    model = build_model(card.architecture, card.architecture_options, embedder_options=embedder_options)
    load_state(model, read_state(path), str(path))
    return model.eval(), card


def read_state(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The tensors of a safetensors file (never a pickle), or a WeightsError saying why they cannot be read."""
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as error:
        raise WeightsError(f"{path}: not a readable safetensors file ({error})") from None


def check_shapes(found: Mapping[str, tuple], expected: Mapping[str, tuple], source: str, *,
                 what: str = "the card's architecture", skip: tuple[str, ...] = (), fresh: tuple[str, ...] = (),
                 extra: bool = False) -> None:
    """Refuse weights that do not fit a network, with a WeightsError naming the first keys at fault; `found`
    and `expected` map tensor names to shapes. Keys starting with `skip` may be missing (an external
    embedder's); keys starting with `fresh` may be missing or of another shape (new layers, which keep their
    initial values); with `extra`, weights the network has no place for are ignored."""
    missing = [key for key in expected if key not in found and not key.startswith(skip + fresh)]
    unexpected = [] if extra else [key for key in found if key not in expected]
    if missing or unexpected or not set(found) & set(expected):
        raise WeightsError(f"{source}: weights do not match {what} (missing {missing[:3]}, unexpected {unexpected[:3]})")
    for key, shape in found.items():
        if key in expected and tuple(shape) != tuple(expected[key]) and not key.startswith(fresh):
            raise WeightsError(f"{source}: weights do not match {what}: {key} has shape {tuple(shape)}, "
                               f"the architecture wants {tuple(expected[key])}")


def load_state(model: nn.Module, state: Mapping[str, torch.Tensor], source: str, *, start: str = "") -> None:
    """The one way weights enter a network: fill `model` from a state dict once the shapes fit, every tensor cast
    to the network's dtype. What may differ comes from the model's contract (colorem.models.registry):

    start=""            exported weights, a checkpoint, a resumed snapshot: every weight but an external
                        embedder's (external_prefixes) must be there, in its shape, and nothing else;
    start="weights"     --init-from another run's weights: its head and the layers the contract calls new may be
                        missing or of another shape (they keep their initial values), its extra weights are ignored;
    start="pretrained"  a family's pretrained file, already mapped by filter_pretrained: it fills the layers the
                        contract calls pretrained, every one of them; the rest keep their initial values.
    """
    expected = model.state_dict()
    roles = {name: model.parameter_role(name) for name, _ in model.named_parameters()}
    skip, fresh, extra, what = tuple(getattr(model, "external_prefixes", ())), (), False, "the card's architecture"
    if start == "weights":
        skip = ("embedder.",)
        fresh = ("output.", "bins", *(name for name, role in roles.items() if role == "new"))
        extra, what = True, "the model"
    elif start == "pretrained":
        modules = {name.rsplit(".", 1)[0] + "." for name, role in roles.items() if role == "pretrained"}
        fresh = tuple(key for key in expected if not key.startswith(tuple(modules)))
        extra, what = True, "the architecture's pretrained encoder"
    elif start:
        raise ValueError(f"unknown start {start!r}")
    check_shapes(_shapes(state), _shapes(expected), source, what=what, skip=skip, fresh=fresh, extra=extra)
    model.load_state_dict({key: value.to(expected[key].dtype) for key, value in state.items()
                           if key in expected and value.shape == expected[key].shape}, strict=False)


def load_pretrained(model: nn.Module, architecture: str) -> dict[str, str] | None:
    """Initialise `model` from its family's pretrained weights (models.PretrainedCfg), read with
    weights_only=True and mapped by the model's filter_pretrained. Returns what a card's provenance records
    (None: the architecture has no pretrained weights)."""
    from colorem.models import model_spec
    from colorem.models.embedders import load_state_dict_file

    config = model_spec(architecture).pretrained
    if config is None:
        return None
    path = config.path()
    load_state(model, model.filter_pretrained(load_state_dict_file(path)), path.name, start="pretrained")
    return pretrained_provenance(architecture)


def pretrained_provenance(architecture: str) -> dict[str, str]:
    """What a card records of the pretrained weights its network started from (nothing when none)."""
    from colorem.models import model_spec

    config = model_spec(architecture).pretrained
    return {} if config is None else {"pretrained_from": config.source, "pretrained_license": config.license}


def _shapes(state: Mapping[str, torch.Tensor]) -> dict[str, tuple[int, ...]]:
    return {key: tuple(tensor.shape) for key, tensor in state.items()}


def _header_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """Tensor name -> shape from a safetensors header, reading no tensor data."""
    try:
        with safe_open(str(path), framework="pt") as weights:
            return {key: tuple(weights.get_slice(key).get_shape()) for key in weights.keys()}
    except (SafetensorError, OSError, ValueError) as error:
        raise WeightsError(f"{path}: not a readable safetensors file ({error})") from None
