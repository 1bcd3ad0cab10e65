"""Robustness: every hostile or unusual file has its documented outcome, in the library and the CLI."""

from __future__ import annotations

import re

import numpy as np
import pytest
from PIL import Image

import colorem
from colorem.cli import main
from colorem.errors import ColoremError, ImageReadError
from colorem.imageio import IMAGE_EXTENSIONS
from tests.hostile import build_cards, build_cases, write_card_case, write_corpus

CASES = build_cases()
CARDS = build_cards()
TALLY: dict[str, int] = {"tried": 0, "colorized": 0, "rejected": 0, "crashes": 0}


@pytest.fixture(scope="module")
def colorizer(tiny_weights):
    return colorem.load(tiny_weights)


@pytest.mark.parametrize("case", CASES, ids=[c.filename for c in CASES])
def test_documented_outcome(case, colorizer, tmp_path):
    path = case.write(tmp_path)
    TALLY["tried"] += 1
    try:
        result = colorizer.colorize(path)
    except ImageReadError as error:
        TALLY["rejected"] += 1
        assert case.outcome == "rejected", f"{case.filename} should colorize but failed: {error}"
        assert re.search(case.expect, error.reason), error.reason
        assert case.filename in str(error)
        return
    except Exception:
        TALLY["crashes"] += 1
        raise
    TALLY["colorized"] += 1
    assert case.outcome == "colorized", f"{case.filename} should be rejected"
    assert result.size == case.expect
    assert np.isfinite(np.asarray(result, dtype=np.float32)).all()
    if case.note == "alpha kept":
        assert result.mode == "RGBA"


def test_cli_on_a_hostile_folder(tmp_path, tiny_weights, capsys):
    corpus = write_corpus(tmp_path / "in")
    out = tmp_path / "out"
    code = main(["colorize", str(tmp_path / "in"), "-o", str(out), "--model", str(tiny_weights), "--format", "png"])
    err = capsys.readouterr().err
    assert code == 1
    produced = sorted(p.name for p in out.iterdir())
    good = sorted(c.filename.rsplit(".", 1)[0] + ".png" for c in corpus if c.outcome == "colorized")
    assert produced == good  # every good file done, nothing else: no partial or temporary files left
    for case in corpus:
        if case.outcome == "rejected" and case.filename.endswith(IMAGE_EXTENSIONS):  # a folder lists only these
            assert re.search(rf"failed: .*{re.escape(case.filename)}: .*({case.expect})", err), case.filename


@pytest.mark.parametrize("name", ["ico-bomb.ico", "targa.tga", "scan-bomb.jpg"])
def test_cli_refuses_an_unlisted_format_or_a_scan_bomb_named_directly(name, tmp_path, tiny_weights, capsys):
    """Issue 33: an .ico (whose PNG inside is 9400x9400) or a .tga named on the command line is refused
    as a format colorem does not read; a JPEG of 5,006 scans as a decoding bomb. Nothing is written."""
    case = next(case for case in CASES if case.filename == name)
    path = case.write(tmp_path)
    code = main(["colorize", str(path), "-o", str(tmp_path / "out.png"), "--model", str(tiny_weights)])
    err = capsys.readouterr().err
    assert code == 1 and not (tmp_path / "out.png").exists()
    assert re.search(rf"failed: .*{re.escape(name)}: .*({case.expect})", err), err


@pytest.mark.parametrize("case", CARDS, ids=[c.name for c in CARDS])
def test_hostile_model_card_is_one_clear_error(case, tiny_weights, tmp_path):
    """Bad cards are refused before the weights are read (these weights are garbage); NaN weights load, and
    each photo then fails with a clear error instead of an index crash in the colour look-up."""
    weights = write_card_case(case, tiny_weights, tmp_path)
    TALLY["tried"] += 1
    try:
        colorem.load(weights, device="cpu").colorize(np.full((8, 8), 100, np.uint8))
    except ColoremError as error:
        TALLY["rejected"] += 1
        assert re.search(case.expect, str(error)), str(error)
        assert "\n" not in str(error)
        return
    except Exception:
        TALLY["crashes"] += 1
        raise
    raise AssertionError(f"{case.name} was accepted")


def test_cli_with_hostile_model_cards(tiny_weights, tmp_path, capsys):
    """Through the command line each bad card is one line on stderr and exit code 2, NaN weights a failed
    photo (exit 1), never a traceback."""
    (tmp_path / "in").mkdir()
    Image.new("L", (16, 12), 90).save(tmp_path / "in" / "a.png")
    for case in CARDS:
        weights = write_card_case(case, tiny_weights, tmp_path / "cards")
        code = main(["colorize", str(tmp_path / "in"), "-o", str(tmp_path / "out" / case.name), "--model", str(weights)])
        err = capsys.readouterr().err
        if case.weights == "nan":
            assert code == 1 and re.search(rf"failed: .*a\.png: .*{case.expect}", err), err
        else:
            lines = err.strip().splitlines()
            assert code == 2 and len(lines) == 1 and lines[0].startswith("colorem: error:"), (case.name, lines)
            assert re.search(case.expect, lines[0]), (case.name, lines)


def test_path_with_parent_components_stays_inside_output(tmp_path, tiny_weights):
    (tmp_path / "in" / "sub").mkdir(parents=True)
    Image.new("L", (8, 8)).save(tmp_path / "in" / "ph oto ü.jpg")
    out = tmp_path / "out"
    assert main(["colorize", str(tmp_path / "in" / "sub" / ".." / "ph oto ü.jpg"), "-o", str(out), "--model", str(tiny_weights)]) == 0
    assert [p.name for p in out.iterdir()] == ["ph oto ü.jpg"]


def summary_line() -> str:
    return (f"hostile inputs: {TALLY['tried']} tried, {TALLY['colorized']} colorized, "
            f"{TALLY['rejected']} rejected with clear errors, {TALLY['crashes']} crashes")
