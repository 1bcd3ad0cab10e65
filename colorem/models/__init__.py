"""Colorization networks and global embedders, created by registered name."""

from colorem.models import fusion as _fusion  # noqa: F401  (registers the architectures)
from colorem.models.embedders import EMBEDDERS, GlobalEmbedder, create_embedder
from colorem.models.fusion import FusionColorizer
from colorem.models.registry import build_model, create_model, list_models, register_model

__all__ = ["EMBEDDERS", "GlobalEmbedder", "create_embedder", "FusionColorizer", "build_model", "create_model", "list_models", "register_model"]
