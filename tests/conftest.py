"""Shared fixtures: a tiny random model on disk, the shared data folder, photos made on the fly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

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
