"""The Color 'em network: encoder on L, a global embedding fused over the H/8 grid, decoder to ab.

Input L in [0, 100]; output ab in Lab units. Normalization lives here, not in the callers.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from colorem.color import AB_MAX, ab_bins
from colorem.models.hint_spread import HINT_CHANNELS, SPREAD_CHANNELS
from colorem.models.embedders import EMBEDDER_OPTIONS, EMBEDDERS, GlobalEmbedder, create_embedder
from colorem.models.heads import add_spread_hints, zero_init
from colorem.models.registry import ColorNet, Option, register_model

# (in, out, stride) per 3x3 conv of the original encoder; channel counts scale with `width`.
ENCODER = [(1, 64, 2), (64, 128, 1), (128, 128, 2), (128, 256, 1), (256, 256, 2), (256, 512, 1), (512, 512, 1), (512, 256, 1)]
DOWNSCALE = 8
# The architecture options a card or a training config may set: anything else is refused before a network is built.
OPTIONS = {
    "embedder": Option(str, EMBEDDERS),
    "embed_dim": Option(int, (1, 4096)),  # the original's 1000-way softmax; 1,000,000 reached 2.3 GB unchecked
    "head": Option(str, ("regression", "classification")),
    "bin_step": Option(float, (5.0, 50.0)),  # ab grid spacing: 10 gives 222 bins, 5 about 900
    "temperature": Option(float, (0.001, 10.0)),
    "upsample": Option(str, ("nearest", "bilinear")),
    "embedder_options": Option(dict, EMBEDDER_OPTIONS),
    "hints": Option(bool),  # a colour-hint input (colorem.hints)
    "skips": Option(bool),  # encoder-to-decoder skips
}
NEW_LAYERS = ("hint_", "skip_")  # zero-initialized layers added to a trained network


def _channels(channels: int, width: float) -> int:
    return channels if channels <= 2 else max(4, int(round(channels * width)))


def _conv(in_channels: int, out_channels: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1), nn.ReLU(inplace=True))


class FusionColorizer(ColorNet):
    """Encoder–fusion–decoder colorizer.

    head="regression": the original's conv 16->2 + tanh, x128 = ab.
    head="classification": logits over in-gamut ab bins (Zhang et al. 2016), decoded by annealed mean.
    hints=True: a colour-hint input (a/b/mask at the input size, colorem.hints) enters at three places,
    each through its own zero-initialized conv, so a hint model made from an automatic one starts with
    identical output: as points beside the first convolution, and spread over the grid
    (colorem.models.hint_spread.spread_hints) at the fusion layer (H/8, where the picture's content is known) and
    before the last decoder layer (H/2, where edges are sharp).
    skips=True: the encoder's H/4 and H/2 features are added into the decoder at the same grids (U-Net
    style), each through a zero-initialized 1x1 conv, so colour can follow the edges of L; a skip model made
    from one without skips also starts with identical output.
    """

    def __init__(
        self,
        embedder: GlobalEmbedder,
        width: float = 1.0,
        head: str = "regression",
        bin_step: float = 10.0,
        temperature: float = 0.38,
        upsample: str = "nearest",
        hints: bool = False,
        skips: bool = False,
    ):
        super().__init__()
        if head not in ("regression", "classification"):
            raise ValueError(f"head must be 'regression' or 'classification', not {head!r}")
        self.embedder = embedder
        self.head = head
        self.upsample_mode = upsample
        self.temperature = temperature
        self.encoder = nn.Sequential(*[_conv(_channels(i, width), _channels(o, width), s) for i, o, s in ENCODER])
        self.hint_input = None
        if hints:
            first = self.encoder[0][0]
            self.hint_input = nn.Conv2d(HINT_CHANNELS, first.out_channels, 3, stride=first.stride, padding=1)
        c256, c128, c64, c32, c16 = (_channels(c, width) for c in (256, 128, 64, 32, 16))
        self.hint_fusion = nn.Conv2d(SPREAD_CHANNELS, c256, 1) if hints else None
        self.hint_decoder = nn.Conv2d(SPREAD_CHANNELS, c32, 3, padding=1) if hints else None
        # Encoder taps for the skips: the outputs of its second (H/2) and fourth (H/4) convolutions.
        self.skip_quarter = nn.Conv2d(c256, c128, 1) if skips else None
        self.skip_half = nn.Conv2d(c128, c64, 1) if skips else None
        zero_init(self.hint_input, self.hint_fusion, self.hint_decoder, self.skip_quarter, self.skip_half)
        self.fusion = nn.Sequential(nn.Conv2d(c256 + embedder.dim, c256, 1), nn.ReLU(inplace=True))
        if head == "classification":
            self.register_buffer("bins", ab_bins(bin_step), persistent=True)  # (Q, 2)
            out_channels = len(self.bins)
        else:
            out_channels = 2
        self.decoder = nn.ModuleList([_conv(c256, c128), _conv(c128, c64), _conv(c64, c32), _conv(c32, c16)])
        # Replicate padding: zeros beyond the edge faded the outermost cell's colour (2 render pixels, about a
        # fifth less chroma; with a hint nearby, half). The weights are the same; only the border cell changes.
        self.output = nn.Conv2d(c16, out_channels, 3, padding=1, padding_mode="replicate")

    pad_multiple = DOWNSCALE
    logit_stride = 2  # a classification head's logits are at H/2

    @property
    def external_prefixes(self) -> tuple[str, ...]:
        """An external embedder (Inception-ResNet-v2, from its own weights file) is not copied into ours."""
        return ("embedder.",) if getattr(self.embedder, "external", False) else ()

    def parameter_role(self, name: str) -> str:
        return "new" if name.startswith(NEW_LAYERS) else "base"

    def _up(self, x: torch.Tensor) -> torch.Tensor:
        if self.upsample_mode == "nearest":
            return F.interpolate(x, scale_factor=2, mode="nearest")
        return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)

    def forward(
        self,
        l: torch.Tensor,
        embedding: torch.Tensor | None = None,
        *,
        hints: torch.Tensor | None = None,
        raw: bool = False,
        temperature: float | torch.Tensor | None = None,
    ) -> torch.Tensor:
        """l (B, 1, H, W) in [0, 100] -> ab (B, 2, H, W) in Lab units, any H and W.

        `embedding` (B, D) replaces the embedder's output (a cache of a frozen embedder). `hints`
        (B, 3, H, W) are colour hints (colorem.hint_input.hint_map), for a model built with hints=True. With
        raw=True the head's output is returned instead: tanh ab / 128 (B, 2, H, W), or logits over
        the bins at half resolution (B, Q, ceil(H/2), ceil(W/2)).
        """
        height, width = l.shape[-2:]
        if embedding is None:
            embedding = self.embedder(l)
        # Pad to a multiple of 8 so the three stride-2 stages and three x2 upsamplings line up. Unconditional
        # (a no-op pad is a cheap copy of L): an `if` here would be fixed at export time, and an exported
        # graph given another size would then leave a skip model's grids misaligned.
        pad_h, pad_w = (-height) % DOWNSCALE, (-width) % DOWNSCALE
        x = F.pad(l / 50.0 - 1.0, (0, pad_w, 0, pad_h), mode="replicate")
        if hints is not None:
            if self.hint_input is None:
                raise ValueError("this model takes no colour hints (its card does not say hints: true)")
            hints = F.pad(hints, (0, pad_w, 0, pad_h))  # padded once, for all three hint inputs
        features, taps = self._encode(x, hints)  # (B, 256, H/8, W/8); with skips, the H/2 and H/4 features
        if embedding.shape[1]:
            grid = embedding.to(features.dtype)[:, :, None, None].expand(-1, -1, *features.shape[-2:])
            features = torch.cat([features, grid], dim=1)
        x = add_spread_hints(self.hint_fusion, self.fusion(features), hints)
        x = self.decoder[0](x)
        x = self.decoder[1](self._skipped(self.skip_quarter, self._up(x), taps.get(4)))
        x = add_spread_hints(self.hint_decoder, self.decoder[2](self._skipped(self.skip_half, self._up(x), taps.get(2))), hints)
        x = self.decoder[3](x)
        x = self.output(x)  # (B, 2 or Q, H/2, W/2)
        if self.head == "classification" and raw:
            # Logits at their native H/2 resolution: the final x2 upsampling only repeats them, so the
            # loss is computed here, 4x cheaper (the loss resizes its target to match).
            return x[..., : (height + 1) // 2, : (width + 1) // 2]
        if self.head == "classification":
            x = self.decode_logits(x, temperature)  # decoded before the x2 upsampling: same result, 4x cheaper
        x = self._up(x)[..., :height, :width]  # (B, 2, H, W)
        if self.head == "regression":
            x = torch.tanh(x)
            return x if raw else x * AB_MAX
        return x

    def _encode(self, x: torch.Tensor, hints: torch.Tensor | None) -> tuple[torch.Tensor, dict[int, torch.Tensor]]:
        """Scaled, padded L (B, 1, H, W) -> encoder features (B, 256, H/8, W/8) and, for a skip model, the
        features its skips take ({2: H/2, 4: H/4}). A hint model adds its hint input after the first
        convolution (only that convolution's bias when no hints are given, as for all-zero hints)."""
        x = self.encoder[0][0](x)
        if self.hint_input is not None:
            x = x + (self.hint_input.bias.to(x.dtype)[None, :, None, None] if hints is None
                     else self.hint_input(hints.to(x.dtype)))
        x = self.encoder[0][1](x)
        if self.skip_half is None:
            return self.encoder[1:](x), {}
        half = self.encoder[1](x)
        quarter = self.encoder[3](self.encoder[2](half))
        return self.encoder[4:](quarter), {2: half, 4: quarter}

    @staticmethod
    def _skipped(conv: nn.Conv2d | None, x: torch.Tensor, tap: torch.Tensor | None) -> torch.Tensor:
        """x plus the encoder's features of the same grid through `conv` (x itself without skips)."""
        return x if conv is None else x + conv(tap)



def _build(width: float, embedder: str, embed_dim: int | None, embedder_options: dict | None, **kwargs) -> FusionColorizer:
    return FusionColorizer(create_embedder(embedder, dim=embed_dim, **(embedder_options or {})), width=width, **kwargs)


@register_model("color-em-original", options=OPTIONS)
def color_em_original(embedder: str = "learned", embed_dim: int | None = None, embedder_options: dict | None = None, **kwargs):
    """The original Color 'em network (6,541,202 parameters with a 1000-d embedding)."""
    return _build(1.0, embedder, embed_dim, embedder_options, **kwargs)


@register_model("color-em-half", options=OPTIONS)
def color_em_half(embedder: str = "learned", embed_dim: int | None = None, embedder_options: dict | None = None, **kwargs):
    """The original design at half width: about 4x fewer operations."""
    return _build(0.5, embedder, embed_dim, embedder_options, **kwargs)


@register_model("color-em-tiny", options=OPTIONS)
def color_em_tiny(embedder: str = "learned", embed_dim: int | None = 16, embedder_options: dict | None = None, **kwargs):
    """An eighth of the width: for tests and smoke runs."""
    options = {"width": 4, "input_size": 32, **(embedder_options or {})} if embedder == "learned" else embedder_options
    return _build(0.125, embedder, embed_dim, options, **kwargs)
