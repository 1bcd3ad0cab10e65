"""Colorization networks and global embedders, created by registered name."""

from colorem.models import efficientnet as _efficientnet  # noqa: F401  (registers the architectures)
from colorem.models import fusion as _fusion  # noqa: F401
from colorem.models.embedders import EMBEDDERS, GlobalEmbedder, create_embedder
from colorem.models.fusion import FusionColorizer
from colorem.models.efficientnet import EfficientNetColorizer
from colorem.models.registry import ColorNet, ModelSpec, Option, PretrainedCfg, build_model, create_model, list_models, model_spec, register_model

__all__ = ["EMBEDDERS", "GlobalEmbedder", "create_embedder", "EfficientNetColorizer", "FusionColorizer", "ColorNet", "ModelSpec", "Option",
           "PretrainedCfg", "build_model", "create_model", "list_models", "model_spec", "register_model"]
