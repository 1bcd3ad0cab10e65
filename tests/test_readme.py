"""The README says what colorem does: its Python runs as written, its install commands work from a checkout,
and its account of the default model's failures matches the model card and the model."""

from __future__ import annotations

import re
import shutil
import tomllib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.conftest import REPO, SAMPLES

README = (REPO / "README.md").read_text(encoding="utf-8")


def python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, re.S)


@pytest.fixture
def readme_namespace(tmp_path, monkeypatch):
    """Every Python block of the README run in order, in a folder holding the photos they name."""
    monkeypatch.chdir(tmp_path)
    shutil.copy(SAMPLES / "coffee.jpg", "old-photo.jpg")
    shutil.copy(SAMPLES / "rocket.jpg", "a.jpg")
    Image.open(SAMPLES / "wall-clock.jpg").save("b.png")
    shutil.copy(SAMPLES / "dogs-at-door.jpg", "family.jpg")
    from colorem.weights import ModelCard, save_weights
    from tests.conftest import hint_model  # a small hand-set hint model stands in for one you trained

    card = ModelCard(architecture="color-em-tiny", render_size=64, name="tiny-hints",
                     architecture_options={"head": "classification", "hints": True})
    save_weights(hint_model(), card, "hints.safetensors")
    from tests.footage import pan_and_zoom
    from tests.test_video import write_clip  # a short clip for the video block (needs PyAV)

    write_clip(Path("film.mp4"), pan_and_zoom(Image.open(SAMPLES / "rocket.jpg").resize((96, 64)), 4), audio=False)
    namespace: dict = {"__name__": "readme"}
    blocks = python_blocks(README)
    assert blocks, "the README has no Python blocks"
    for block in blocks:
        exec(compile(block, "README.md", "exec"), namespace)  # noqa: S102  (our own README)
    return namespace


def test_the_readme_python_runs_as_written(readme_namespace):
    assert Image.open("old-photo-colour.png").size == Image.open("old-photo.jpg").size


def test_what_comes_back_is_the_kind_that_went_in(readme_namespace):
    """The README's rule: path, bytes or PIL image in -> PIL image out; numpy in -> numpy out."""
    size = Image.open("old-photo.jpg").size
    result, vivid, array = readme_namespace["result"], readme_namespace["vivid"], readme_namespace["array"]
    assert isinstance(result, Image.Image) and isinstance(vivid, Image.Image) and result.size == vivid.size == size
    assert isinstance(array, np.ndarray) and array.dtype == np.uint8 and array.shape == (size[1], size[0], 3)
    assert [type(item) for item in readme_namespace["results"]] == [type(result)] * 2
    assert "numpy array in: a numpy array out" in README


def install_specs() -> list[tuple[str, str]]:
    """(file, package spec with extras) of every `pip install` in the docs and in colorem's messages."""
    files = [REPO / name for name in ("README.md", "SECURITY.md", "MODEL_CARD.md")] + sorted((REPO / "colorem").rglob("*.py"))
    specs = []
    for path in files:
        if path.exists():
            for command in re.findall(r"pip install ([^\n`]*)", path.read_text(encoding="utf-8")):
                specs += [(path.name, spec.strip("'\"")) for spec in command.split() if "[" in spec]
    return specs


def test_install_commands_work_from_a_checkout():
    """colorem is on no public index: extras install as ".[extra]" from the checkout, and each extra exists."""
    extras = set(tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"])
    specs = install_specs()
    assert specs  # the README installs extras
    for where, spec in specs:
        name, wanted = spec.split("[", 1)
        assert name == ".", f"{where}: pip install {spec} needs a package index; install from the checkout"
        assert wanted.startswith("{") or set(wanted.rstrip("]").split(",")) <= extras, f"{where}: {spec}"


def model_card_row(label: str) -> dict[str, str]:
    """A row of the model card's eval-set metrics table (the one with SSIM and ≤10), as {column title: value}."""
    lines = [line for line in (REPO / "MODEL_CARD.md").read_text(encoding="utf-8").splitlines() if line.startswith("| ")]
    start = next(number for number, line in enumerate(lines) if line.startswith("| model |") and "≤10" in line)
    titles = [cell.strip() for cell in lines[start].strip("|").split("|")]
    row = next(line for line in lines[start:] if line.startswith(label))
    return dict(zip(titles, (cell.strip().strip("*").split(" ")[0] for cell in row.strip("|").split("|"))))


def test_the_readme_says_where_the_default_model_stands_against_the_gray_baseline():
    gray, model = model_card_row("| gray baseline |"), model_card_row("| **default** | 256 |")
    for measure, column in (("SSIM", "SSIM"), ("the share of pixels within 10 ab units of the original", "≤10")):
        words = r"\s+".join(re.escape(word) for word in measure.split())
        claim = re.search(words + r" it (ties|is above|is below) the gray baseline \((\S+) vs (\S+)\)", README)
        assert claim, f"the README must say plainly how the model's {column} compares with the gray baseline"
        relation, mine, theirs = claim.groups()
        assert (mine, theirs) == (model[column], gray[column])
        expected = "ties" if mine == theirs else "is above" if float(mine) > float(theirs) else "is below"
        assert relation == expected, (column, relation, mine, theirs)
    # The blotched samples it names are bundled.
    for name in re.findall(r"`([\w-]+\.jpg)`", README.split("What you will see", 1)[1].split("\n\n", 1)[0]):
        assert (SAMPLES / name).exists(), name
