"""The command line: folders with a broken file, resume with --skip-existing, clear messages."""

import subprocess
import sys

import pytest
from PIL import Image

import colorem
from colorem.cli import main
from colorem.weights import packaged_weights
from tests.conftest import photo


@pytest.fixture
def folder(tmp_path):
    source = tmp_path / "in"
    (source / "sub").mkdir(parents=True)
    photo(40, 30).convert("L").save(source / "a.jpg")
    photo(33, 17).convert("RGBA").save(source / "b.png")
    photo(20, 20).save(source / "sub" / "c.webp")
    (source / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated jpeg")
    (source / "notes.txt").write_text("not an image and not picked up")
    return source


def test_folder_with_a_broken_file(folder, tmp_path, tiny_weights, capsys):
    out = tmp_path / "out"
    code = main(["colorize", str(folder), "-o", str(out), "--model", str(tiny_weights), "-r"])
    assert code == 1  # some failed
    assert "broken.jpg" in capsys.readouterr().err
    assert Image.open(out / "a.jpg").size == (40, 30)
    assert Image.open(out / "b.png").mode == "RGBA"
    assert Image.open(out / "sub" / "c.webp").size == (20, 20)
    assert sorted(p.name for p in out.rglob("*") if p.is_file()) == ["a.jpg", "b.png", "c.webp"]


def test_skip_existing_and_overwrite(folder, tmp_path, tiny_weights, capsys):
    out = tmp_path / "out"
    args = ["colorize", str(folder / "a.jpg"), str(folder / "b.png"), "-o", str(out), "--model", str(tiny_weights)]
    assert main(args) == 0
    assert main(args) == 1  # refuses to replace silently
    assert "exists" in capsys.readouterr().err
    assert main(args + ["--skip-existing"]) == 0
    assert "skipped 2" in capsys.readouterr().err
    assert main(args + ["--overwrite", "--format", "png"]) == 0
    assert (out / "a.png").exists()


def test_single_file_to_named_output(folder, tmp_path, tiny_weights):
    target = tmp_path / "result.png"
    assert main(["colorize", str(folder / "a.jpg"), "-o", str(target), "--model", str(tiny_weights)]) == 0
    assert Image.open(target).size == (40, 30)


def test_glob_and_missing_input(folder, tmp_path, tiny_weights, capsys):
    out = tmp_path / "out"
    assert main(["colorize", str(folder / "*.png"), str(folder / "missing.jpg"), "-o", str(out), "--model", str(tiny_weights)]) == 1
    assert (out / "b.png").exists()
    assert "no such file" in capsys.readouterr().err


@pytest.mark.skipif(packaged_weights().exists(), reason="a default model is installed")
def test_without_default_weights_says_how_to_get_them(folder, tmp_path, capsys):
    assert main(["colorize", str(folder / "a.jpg"), "-o", str(tmp_path / "o")]) == 2
    assert "no trained weights are installed" in capsys.readouterr().err


def test_version_help_and_models(capsys):
    result = subprocess.run([sys.executable, "-m", "colorem", "--version"], capture_output=True, text=True)
    assert result.stdout.strip() == f"colorem {colorem.__version__}"
    with pytest.raises(SystemExit):
        main(["colorize", "--help"])
    assert "--skip-existing" in capsys.readouterr().out
    assert main(["models"]) == 0
    assert "color-em-original" in capsys.readouterr().out


def test_broken_and_looping_links_are_failures_like_a_missing_file(folder, tmp_path, tiny_weights, capsys):
    (tmp_path / "dangling.jpg").symlink_to(tmp_path / "gone.jpg")
    (tmp_path / "loop.jpg").symlink_to(tmp_path / "loop.jpg")
    inputs = [str(folder / "a.jpg"), str(tmp_path / "dangling.jpg"), str(tmp_path / "loop.jpg"), str(tmp_path / "missing.jpg")]
    assert main(["colorize", *inputs, "-o", str(tmp_path / "out"), "--model", str(tiny_weights)]) == 1
    err = capsys.readouterr().err
    assert "dangling.jpg: cannot read image" in err and "broken symbolic link" in err
    assert "loop.jpg: cannot read image" in err and "loops back on itself" in err
    assert "missing.jpg: cannot read image" in err and "no such file" in err
    assert "colorized 1, skipped 0, failed 3" in err


@pytest.mark.parametrize("option", [["--temperature", "nan"], ["--temperature", "inf"], ["--temperature", "-1"],
                                    ["--saturation", "nan"]])
def test_non_finite_options_are_one_line_and_exit_2(folder, tmp_path, tiny_weights, option, capsys):
    code = main(["colorize", str(folder / "a.jpg"), "-o", str(tmp_path / "out"), "--model", str(tiny_weights), *option])
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("colorem: error:") and option[0][2:] in lines[0], lines
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
