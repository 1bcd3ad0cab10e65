"""A registry of colorization architectures by name, in the manner of timm's create_model."""

from __future__ import annotations

from typing import Any, Callable

from torch import nn

_MODELS: dict[str, Callable[..., nn.Module]] = {}


def register_model(name: str):
    """Decorator: make a model factory available to create_model under `name`."""

    def decorator(factory: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _MODELS:
            raise ValueError(f"model {name!r} is already registered")
        _MODELS[name] = factory
        return factory

    return decorator


def create_model(name: str, **kwargs) -> nn.Module:
    """Build a registered architecture; kwargs are its arguments (as stored in a weights card)."""
    if name not in _MODELS:
        raise KeyError(f"unknown model {name!r}; registered: {', '.join(list_models())}")
    return _MODELS[name](**kwargs)


def build_model(architecture: str, options: dict[str, Any], *, embedder_options: dict[str, Any] | None = None,
                freeze_embedder: bool = False) -> nn.Module:
    """The one way a network is built, from an architecture name and its options (a card's
    architecture_options, or a training config's): `embedder_options` add to the options' own (a local
    weights file, say); `freeze_embedder` keeps the embedder out of training, so its outputs may be cached."""
    options = dict(options)
    if embedder_options:
        options["embedder_options"] = {**options.get("embedder_options", {}), **embedder_options}
    model = create_model(architecture, **options)
    if freeze_embedder:
        model.embedder.requires_grad_(False)
        model.embedder.frozen = True
    return model


def list_models() -> list[str]:
    return sorted(_MODELS)
