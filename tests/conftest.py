"""Shared fixtures: a tiny random model on disk, the shared data folder, photos made on the fly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from colorem.color import AB_MAX
from colorem.models import create_model
from colorem.weights import ModelCard, save_weights

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
SAMPLES = REPO / "colorem" / "samples"


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory) -> Path:
    """A random color-em-tiny saved as safetensors + card, as `colorem export` would write it."""
    path = tmp_path_factory.mktemp("weights") / "tiny.safetensors"
    card = ModelCard(architecture="color-em-tiny", render_size=64, name="tiny-random")
    return save_weights(create_model("color-em-tiny"), card, path)


def hint_model() -> torch.nn.Module:
    """A color-em-tiny with a hint input whose colours are set by hand, so tests can check where hints land:
    gray everywhere without hints; a hint's hue over a bump about 30 render pixels wide around it.

    Channels 0-3 carry relu(a), relu(-a), relu(b), relu(-b) of the hints through every layer, each 3x3
    conv a blur; L and the embedding are ignored. The classification head's logits are
    k (ab . bin) - c |bin|^2, a Gaussian over the bins centred on the blurred hint ab, so the annealed
    mean keeps the hint's hue.
    """
    model = create_model("color-em-tiny", head="classification", hints=True).eval()
    sharpness, gain = 0.02, 90.0  # c, and the inverse of a point hint's blurred peak (about 1/90)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.zero_()
        spread = torch.outer(torch.tensor([1.0, 2.0, 1.0]), torch.tensor([1.0, 2.0, 1.0]))  # same mass at odd and even pixels
        for channel, (source, sign) in enumerate([(0, 1.0), (0, -1.0), (1, 1.0), (1, -1.0)]):
            model.hint_input.weight[channel, source] = sign * spread
        for conv in [block[0] for block in model.encoder[1:]] + [model.fusion[0]] + [block[0] for block in model.decoder]:
            for channel in range(4):
                conv.weight[channel, channel] = 1.0 / conv.weight[channel, channel].numel()
        bins = model.bins  # (Q, 2)
        signed = torch.stack([bins[:, 0], -bins[:, 0], bins[:, 1], -bins[:, 1]], dim=1)  # (Q, 4)
        model.output.weight[:, :4, 1, 1] = signed * 2 * sharpness * AB_MAX * gain
        model.output.bias[:] = -sharpness * bins.square().sum(1)
    return model


@pytest.fixture(scope="session")
def hint_weights(tmp_path_factory) -> Path:
    """hint_model() saved with its card (architecture_options hints: true), render size 64."""
    path = tmp_path_factory.mktemp("weights") / "tiny-hints.safetensors"
    card = ModelCard(architecture="color-em-tiny", render_size=64, name="tiny-hints",
                     architecture_options={"head": "classification", "hints": True})
    return save_weights(hint_model(), card, path)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not present")
    return SHARED_DATA


def photo(width: int = 96, height: int = 64, seed: int = 0) -> Image.Image:
    """A smooth colour test photo (gradients plus a disc), so lightness has structure."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    red = x / max(width - 1, 1)
    green = y / max(height - 1, 1)
    blue = ((x - width / 2) ** 2 + (y - height / 2) ** 2 < (min(width, height) / 3) ** 2).astype(np.float32)
    rgb = np.stack([red, green, 0.3 + 0.5 * blue], axis=2) + rng.normal(0, 0.02, (height, width, 3))
    return Image.fromarray((np.clip(rgb, 0, 1) * 255).astype(np.uint8), "RGB")


def pytest_terminal_summary(terminalreporter):
    """Print the robustness tally (tests/test_hostile.py) so CI logs show it."""
    import sys

    hostile = sys.modules.get("tests.test_hostile")
    if hostile is not None and hostile.TALLY["tried"]:
        terminalreporter.write_line(hostile.summary_line())
