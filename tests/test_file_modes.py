"""Every file colorem writes (photos, contact sheets, weights, cards, checkpoints) gets the mode a plain
open() gives under the user's umask, though each is written to a temporary name and renamed."""

from __future__ import annotations

import os
import stat

import pytest

from colorem.cli import main
from colorem.models import create_model
from colorem.train.checkpoint import save_checkpoint
from colorem.weights import ModelCard, save_weights
from tests.conftest import photo


@pytest.fixture(params=[0o022, 0o077], ids=["umask-022", "umask-077"])
def umask(request):
    previous = os.umask(request.param)
    yield request.param
    os.umask(previous)


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_colorized_photos_and_the_contact_sheet(umask, tiny_weights, tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    photo(40, 30).save(photos / "a.jpg")
    photo(24, 24, seed=1).save(photos / "b.png")
    assert main(["colorize", str(photos), "-o", str(tmp_path / "out"), "--model", str(tiny_weights)]) == 0
    assert main(["evaluate", "--model", str(tiny_weights), "--images", str(photos), "--out", str(tmp_path / "report"),
                 "--contact-images", "2"]) == 0
    written = [tmp_path / "out" / "a.jpg", tmp_path / "out" / "b.png", tmp_path / "report" / "contact_sheet.png"]
    assert {path.name: oct(mode(path)) for path in written} == {path.name: oct(0o666 & ~umask) for path in written}


def test_exported_weights_and_checkpoints(umask, tmp_path):
    weights = save_weights(create_model("color-em-tiny"), ModelCard(architecture="color-em-tiny"), tmp_path / "w.safetensors")
    checkpoint = save_checkpoint(tmp_path / "run", {"step": 1, "model": {}})
    written = [weights, weights.with_suffix(".json"), checkpoint, checkpoint.with_name(checkpoint.name + ".sha256")]
    assert {path.name: oct(mode(path)) for path in written} == {path.name: oct(0o666 & ~umask) for path in written}
    assert not list(tmp_path.rglob("*.part"))
