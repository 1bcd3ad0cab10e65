"""A registry of colorization architectures by name, in the manner of timm's create_model."""

from __future__ import annotations

from typing import Callable

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


def list_models() -> list[str]:
    return sorted(_MODELS)
