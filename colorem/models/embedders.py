"""Global image embedders behind one small interface: L image in, one vector per image out.

The fusion layer repeats the vector over the encoder's grid, so the decoder knows what the photo
shows. `inception_resnet_v2` is the original's frozen ImageNet classifier (timm, local weights only),
`learned` a small CNN trained with the colorizer, `none` no global context at all.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from colorem.color import gray_to_rgb
from colorem.errors import MissingDependencyError, WeightsError, install_hint

EMBEDDERS = ("none", "learned", "inception_resnet_v2")
EMBEDDER_OPTIONS: dict = {  # (type, range or None) of each embedder option a card may hold
    "width": (int, (1, 512)),  # learned embedder: channels of its first convolution
    "input_size": (int, (16, 1024)),  # learned embedder: the side of its fixed-size copy of L
    "weights": (str, None),  # inception_resnet_v2: a local weights file
    "from_timm_cache": (bool, None),
}


class GlobalEmbedder(nn.Module):
    """Interface: forward(l (B, 1, H, W), L in [0, 100]) -> (B, dim).

    `external` (of the class): its weights come from their own file and are never copied into ours.
    `frozen` (of the instance): it is not trained, so its output for a photo never changes and may be cached."""

    dim: int = 0
    external: bool = False
    frozen: bool = False


class NoEmbedder(GlobalEmbedder):
    dim = 0

    def forward(self, l: torch.Tensor) -> torch.Tensor:
        return l.new_zeros(l.shape[0], 0)


class LearnedEmbedder(GlobalEmbedder):
    """Strided convs over a fixed-size copy of L, global average pool, a linear layer: trained jointly."""

    def __init__(self, dim: int = 256, input_size: int = 128, width: int = 32):
        super().__init__()
        self.dim = dim
        self.input_size = input_size  # fixed, so a photo's embedding does not depend on its render size
        channels = [1, width, width * 2, width * 4, width * 8]
        layers: list[nn.Module] = []
        for in_channels, out_channels in zip(channels[:-1], channels[1:]):
            layers += [nn.Conv2d(in_channels, out_channels, 3, stride=2, padding=1), nn.ReLU(inplace=True)]
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(channels[-1], dim)

    def forward(self, l: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(l / 50.0 - 1.0, size=(self.input_size, self.input_size), mode="bilinear",
                          align_corners=False, antialias=True)
        x = self.features(x).mean(dim=(2, 3))  # (B, C)
        return self.head(x)


class InceptionResNetV2Embedder(GlobalEmbedder):
    """The original's embedding: Inception-ResNet-v2's 1000-way softmax on the gray image, frozen.

    Weights come from a local file (safetensors, or a PyTorch state dict as timm publishes it, loaded
    with weights_only=True) or from timm's own cache when `from_timm_cache=True`. Nothing is downloaded.
    """

    dim = 1000
    external = True
    frozen = True

    def __init__(self, weights: str | os.PathLike | None = None, from_timm_cache: bool = False):
        super().__init__()
        try:
            import timm
        except ImportError as error:
            raise MissingDependencyError(
                f"the inception_resnet_v2 embedder needs timm: {install_hint('timm')} "
                "(timm needs torchvision; see the README)"
            ) from error
        self.net = timm.create_model("inception_resnet_v2", pretrained=from_timm_cache, num_classes=1000)
        if weights is not None:
            self.net.load_state_dict(load_state_dict_file(weights))
        elif not from_timm_cache:
            raise WeightsError(
                "inception_resnet_v2 needs local weights: pass weights=PATH (a .safetensors or .pth state "
                "dict) or from_timm_cache=True to use timm's cache; nothing is downloaded"
            )
        config = self.net.pretrained_cfg
        self.input_size = int(config.get("input_size", (3, 299, 299))[-1])
        self.register_buffer("mean", torch.tensor(config.get("mean", (0.5, 0.5, 0.5))).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(config.get("std", (0.5, 0.5, 0.5))).view(1, 3, 1, 1), persistent=False)
        self.net.eval().requires_grad_(False)

    def train(self, mode: bool = True):
        super().train(mode)
        self.net.eval()  # frozen: batch norm statistics never move
        return self

    @torch.no_grad()
    def forward(self, l: torch.Tensor) -> torch.Tensor:
        rgb = gray_to_rgb(l.float())  # the gray image replicated to 3 channels
        rgb = F.interpolate(rgb, size=(self.input_size, self.input_size), mode="bilinear", align_corners=False)
        logits = self.net((rgb - self.mean) / self.std)
        return logits.float().softmax(dim=1)


def load_state_dict_file(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Load a state dict without ever unpickling arbitrary objects."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"weights file not found: {path}")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # weights_only refuses any pickled object that is not plain tensors
        raise WeightsError(f"refusing to load {path}: not a plain tensor state dict ({error})") from None
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    return state


def create_embedder(name: str, dim: int | None = None, **kwargs) -> GlobalEmbedder:
    """Build an embedder by name; `dim` sets the learned embedder's size."""
    if name == "none":
        return NoEmbedder()
    if name == "learned":
        return LearnedEmbedder(dim=dim or 256, **kwargs)
    if name == "inception_resnet_v2":
        return InceptionResNetV2Embedder(**kwargs)
    raise KeyError(f"unknown embedder {name!r}; choose one of {', '.join(EMBEDDERS)}")
