"""The command line: folders with a broken file, reruns that skip what exists, clear messages."""

import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import colorem
from colorem.cli import main
from colorem.weights import packaged_weights
from tests.conftest import REPO, SAMPLES, photo


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


def test_a_rerun_skips_what_exists_and_overwrite_replaces_it(folder, tmp_path, tiny_weights, capsys):
    out = tmp_path / "out"
    args = ["colorize", str(folder / "a.jpg"), str(folder / "b.png"), "-o", str(out), "--model", str(tiny_weights)]
    assert main(args) == 0
    first = (out / "a.jpg").stat().st_mtime_ns
    capsys.readouterr()
    assert main(args) == 0  # an existing output is not a failure: it is left as it is
    assert "colorized 0, skipped 2 (outputs exist; --overwrite replaces them), failed 0" in capsys.readouterr().err
    assert (out / "a.jpg").stat().st_mtime_ns == first
    assert main(args + ["--skip-existing"]) == 0  # the old flag names the default
    assert main(args + ["--overwrite"]) == 0
    assert "colorized 2, skipped 0, failed 0" in capsys.readouterr().err
    assert (out / "a.jpg").stat().st_mtime_ns != first


def test_the_progress_bar_counts_only_photos_it_colorizes(folder, tmp_path, tiny_weights, capsys):
    out = tmp_path / "out"
    photo(25, 25, seed=3).save(folder / "d.png")
    files = [str(folder / name) for name in ("a.jpg", "b.png", "sub/c.webp", "d.png")]
    assert main(["colorize", *files[:2], "-o", str(out), "--model", str(tiny_weights)]) == 0
    capsys.readouterr()
    assert main(["colorize", *files, "-o", str(out), "--model", str(tiny_weights)]) == 0
    error = capsys.readouterr().err
    # Two skipped files "done" in no time once showed as thousands of img/s; the bar is the two real photos.
    assert {total for _, total in re.findall(r"(\d+)/(\d+) \[", error)} == {"2"}, error
    assert re.findall(r"(\d+)/(\d+) \[", error)[-1] == ("2", "2")
    assert "colorized 2, skipped 2" in error


def test_the_readme_quick_start_runs_twice(tmp_path):
    """The README's first command (its colorem part), run twice in a fresh folder: both exit 0."""
    readme = (REPO / "README.md").read_text()
    quick_start = re.search(r"## Quick start\s+```bash\n(.*?)\n", readme).group(1)
    command = next(part.strip() for part in quick_start.split("&&") if part.strip().startswith("colorem "))
    (tmp_path / "testing_images").symlink_to(SAMPLES)
    runs = [subprocess.run([sys.executable, "-m", "colorem", *shlex.split(command)[1:]], cwd=tmp_path,
                           capture_output=True, text=True, timeout=300) for _ in range(2)]
    assert [run.returncode for run in runs] == [0, 0], runs[-1].stderr
    count = len(list(SAMPLES.glob("*.jpg")))
    assert f"colorized {count}, skipped 0, failed 0" in runs[0].stderr
    assert f"colorized 0, skipped {count} (outputs exist; --overwrite replaces them), failed 0" in runs[1].stderr


def run_cli(args: list[str], capsys) -> tuple[int, str]:
    """main() as the shell sees it: argparse's SystemExit becomes the exit code."""
    try:
        code = main(args)
    except SystemExit as exit:
        code = exit.code
    return code, capsys.readouterr().err


NO_CUDA = pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
BAD_OPTIONS = [
    ("colorize", ["--saturation", "-1"]), ("colorize", ["--saturation", "nan"]), ("colorize", ["--render-size", "7"]),
    ("colorize", ["--render-size", "0"]), ("colorize", ["--render-size", "abc"]), ("colorize", ["--batch-size", "0"]),
    ("colorize", ["--workers", "-1"]), ("colorize", ["--quality", "500"]), ("colorize", ["--quality", "0"]),
    ("colorize", ["--format", "gif"]), ("colorize", ["--device", "gpu"]),
    pytest.param("colorize", ["--device", "cuda"], marks=NO_CUDA), pytest.param("colorize", ["--precision", "fp16"], marks=NO_CUDA),
    ("colorize", ["--backend", "onnxruntime", "--precision", "bf16"]),
    ("evaluate", ["--render-size", "7"]), ("evaluate", ["--batch-size", "0"]), ("evaluate", ["--limit", "0"]),
    ("evaluate", ["--contact-images", "-1"]), ("evaluate", ["--seed", "-5"]), pytest.param("evaluate", ["--device", "cuda"], marks=NO_CUDA),
    ("serve", ["--port", "70000"]), ("serve", ["--concurrency", "0"]), ("serve", ["--max-waiting", "-1"]),
    ("serve", ["--torch-threads", "0"]), ("serve", ["--max-render-size", "8"]), ("serve", ["--max-upload-mb", "0"]),
    ("serve", ["--max-upload-mb", "nan"]), ("serve", ["--max-upload-mb", "inf"]), ("serve", ["--max-pixels", "0"]),
    pytest.param("serve", ["--precision", "fp16"], marks=NO_CUDA),
    ("export", ["--render-size", "7"]),
]


@pytest.mark.parametrize("command, option", BAD_OPTIONS, ids=lambda value: " ".join(value) if isinstance(value, list) else value)
def test_a_bad_option_value_is_one_line_and_exit_2(command, option, folder, tmp_path, tiny_weights, capsys):
    pytest.importorskip("uvicorn") if command == "serve" else None
    needs = {"colorize": [str(folder / "a.jpg"), "-o", str(tmp_path / "out")],
             "evaluate": ["--images", str(folder), "--out", str(tmp_path / "report")],
             "serve": ["--port", "0"] if "--port" not in option else [],
             "export": [str(tiny_weights), "-o", str(tmp_path / "x.safetensors")]}[command]
    model = ["--model", str(tiny_weights)] if command != "export" else []
    code, error = run_cli([command, *needs, *model, *option], capsys)
    assert code == 2, error
    assert error.count("\n") == 1 and "Traceback" not in error, error
    assert option[-1] in error  # it names the value at fault
    assert not (tmp_path / "out").exists() and not (tmp_path / "report").exists()


def test_several_inputs_to_one_file_name_are_refused(folder, tmp_path, tiny_weights, capsys):
    target = tmp_path / "single.png"
    code, error = run_cli(["colorize", str(folder / "a.jpg"), str(folder / "b.png"), "-o", str(target),
                           "--model", str(tiny_weights)], capsys)
    assert code == 2 and error.count("\n") == 1
    assert "single.png names one file, but 2 photos were given" in error
    assert not target.exists()


def test_single_file_to_named_output(folder, tmp_path, tiny_weights):
    target = tmp_path / "result.png"
    assert main(["colorize", str(folder / "a.jpg"), "-o", str(target), "--model", str(tiny_weights)]) == 0
    assert Image.open(target).size == (40, 30)


def test_one_file_goes_through_colorizer_colorize_not_the_folder_runner(folder, tmp_path, tiny_weights, monkeypatch, capsys):
    """As rembg's CLI calls remove(): one photo is Colorizer.colorize, then the file; the result is the API's."""
    from colorem import folder as cli_colorize  # the folder runner, which the CLI hands the run over to
    from colorem.colorize import Colorizer

    calls, colorize = [], Colorizer.colorize
    monkeypatch.setattr(Colorizer, "colorize", lambda self, image, *args, **kwargs: calls.append(image) or colorize(self, image, *args, **kwargs))
    monkeypatch.setattr(cli_colorize, "colorize_files", lambda *args, **kwargs: pytest.fail("one photo went through the folder runner"))
    target = tmp_path / "one.png"
    assert main(["colorize", str(folder / "a.jpg"), "-o", str(target), "--model", str(tiny_weights)]) == 0
    assert main(["colorize", str(folder / "b.png"), "-o", str(tmp_path / "out"), "--model", str(tiny_weights)]) == 0
    assert calls == [folder / "a.jpg", folder / "b.png"]
    expected = colorize(colorem.load(tiny_weights), folder / "a.jpg")
    assert np.array_equal(np.asarray(Image.open(target)), np.asarray(expected))  # PNG: the very pixels
    assert Image.open(tmp_path / "out" / "b.png").mode == "RGBA"  # named as the folder runner names it
    capsys.readouterr()
    assert main(["colorize", str(folder / "missing.jpg"), "-o", str(tmp_path / "out"), "--model", str(tiny_weights)]) == 1
    assert "failed: " in (error := capsys.readouterr().err) and "no such file" in error and "colorized 0, skipped 0, failed 1" in error


def test_glob_and_missing_input(folder, tmp_path, tiny_weights, capsys):
    out = tmp_path / "out"
    assert main(["colorize", str(folder / "*.png"), str(folder / "missing.jpg"), "-o", str(out), "--model", str(tiny_weights)]) == 1
    assert (out / "b.png").exists()
    assert "no such file" in capsys.readouterr().err


def test_a_pattern_that_matches_nothing_says_so(folder, tmp_path, tiny_weights, capsys):
    out = tmp_path / "out"
    pattern = str(folder / "nomatch" / "*.png")
    assert main(["colorize", pattern, str(folder / "a.jpg"), "-o", str(out), "--model", str(tiny_weights)]) == 1
    error = capsys.readouterr().err
    assert f"failed: {pattern}: the pattern matched no files" in error
    assert "colorized 1, skipped 0, failed 1" in error and (out / "a.jpg").exists()


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
    code, error = run_cli(["colorize", str(folder / "a.jpg"), "-o", str(tmp_path / "out"), "--model", str(tiny_weights), *option], capsys)
    lines = error.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("colorem") and "error:" in lines[0] and option[0][2:] in lines[0], lines
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_an_output_that_is_its_own_input_is_refused_and_the_originals_kept(folder, tmp_path, tiny_weights, capsys):
    before = {path: path.read_bytes() for path in folder.rglob("*") if path.is_file()}
    for target, extra in [(folder, []), (folder, ["--overwrite"]), (folder / "a.jpg", ["--overwrite"])]:
        inputs = [str(folder / "a.jpg")] if target.suffix else [str(folder), "-r"]
        code, error = run_cli(["colorize", *inputs, "-o", str(target), "--model", str(tiny_weights), *extra], capsys)
        assert code == 2 and "would write over the input" in error and error.count("\n") == 1, error
    assert {path: path.read_bytes() for path in folder.rglob("*") if path.is_file()} == before


def test_an_output_folder_inside_the_input_folder_is_not_read_again(folder, tiny_weights, capsys):
    args = ["colorize", str(folder), "-o", str(folder / "colour"), "-r", "--model", str(tiny_weights)]
    assert main(args) == 1  # broken.jpg
    capsys.readouterr()
    assert main(args) == 1
    assert "colorized 0, skipped 3" in capsys.readouterr().err  # not its own results, a level deeper
    assert not (folder / "colour" / "colour").exists()


@pytest.mark.parametrize("inputs, output, message", [
    ([""], "out", "an input is empty"),  # "$UNSET": never the current folder
    (["a.jpg"], "out.gif", "not .gif"),
    (["a.jpg"], "out.png --format jpg", "names a .png file, but --format is jpg"),
    (["a.jpg"], "FILE", "is a file; give a folder"),
    (["a.jpg", "b.png"], "/proc/colorem/out", "cannot make the output folder"),
])
def test_a_bad_input_or_output_is_one_line_and_exit_2_before_any_work(folder, tmp_path, tiny_weights, capsys,
                                                                       inputs, output, message):
    (tmp_path / "FILE").write_text("a file, not a folder")
    output, *extra = output.split()
    inputs = [str(folder / name) if name else name for name in inputs]
    code, error = run_cli(["colorize", *inputs, "-o", str(tmp_path / output), *extra, "--model", str(tiny_weights)], capsys)
    assert code == 2 and message in error and error.count("\n") == 1, error
    assert sorted(path.name for path in tmp_path.iterdir()) == ["FILE", "in"]


def test_several_folders_keep_their_names_and_a_photo_named_twice_is_done_once(tmp_path, tiny_weights, capsys):
    for year, seed in (("2019", 1), ("2020", 2)):  # cameras repeat their file names
        (tmp_path / "cam" / year).mkdir(parents=True)
        photo(24, 16, seed).save(tmp_path / "cam" / year / "IMG_0001.jpg")
    out = tmp_path / "out"
    first = tmp_path / "cam" / "2019" / "IMG_0001.jpg"
    assert main(["colorize", str(tmp_path / "cam" / "2019"), str(tmp_path / "cam" / "2020"), "-o", str(out),
                 "--model", str(tiny_weights)]) == 0
    assert sorted(str(path.relative_to(out)) for path in out.rglob("*.jpg")) == ["2019/IMG_0001.jpg", "2020/IMG_0001.jpg"]
    capsys.readouterr()
    assert main(["colorize", str(first), str(first.parent / ".." / "2019" / "IMG_0001.jpg"), "-o", str(tmp_path / "one"),
                 "--model", str(tiny_weights)]) == 0
    assert "colorized 1, skipped 0, failed 0" in capsys.readouterr().err


def test_max_pixels_raises_or_lowers_the_size_limit(tmp_path, tiny_weights, capsys):
    Image.new("L", (300, 200), 100).save(tmp_path / "scan.png")  # 60,000 pixels
    args = ["colorize", str(tmp_path / "scan.png"), "-o", str(tmp_path / "out.png"), "--model", str(tiny_weights)]
    assert main([*args, "--max-pixels", "59999"]) == 1
    assert "300x200 = 60,000 pixels is over the limit of 59,999" in capsys.readouterr().err
    assert main([*args, "--max-pixels", "60000"]) == 0



def test_a_temperature_for_a_model_without_one_is_a_usage_error(folder, tmp_path, tiny_weights, capsys):
    code, error = run_cli(["colorize", str(folder / "a.jpg"), "-o", str(tmp_path / "out.png"), "--model", str(tiny_weights),
                           "--temperature", "0.5"], capsys)  # tiny-random regresses ab: once silently ignored
    assert code == 2 and "temperature is for classification models" in error and error.count("\n") == 1, error


def test_a_recursive_glob_keeps_the_folders_below_it_and_follows_a_link_loop_once(tmp_path, tiny_weights, capsys):
    for year, seed in (("2019", 1), ("2020", 2)):
        (tmp_path / "cam" / year).mkdir(parents=True)
        photo(24, 16, seed).save(tmp_path / "cam" / year / "IMG_0001.jpg")
    (tmp_path / "cam" / "2020" / "back").symlink_to("..")  # ** follows it round and round
    out = tmp_path / "out"
    assert main(["colorize", str(tmp_path / "cam" / "**" / "*.jpg"), "-r", "-o", str(out), "--model", str(tiny_weights)]) == 0
    assert "colorized 2, skipped 0, failed 0" in capsys.readouterr().err
    assert sorted(str(path.relative_to(out)) for path in out.rglob("*.jpg")) == ["2019/IMG_0001.jpg", "2020/IMG_0001.jpg"]


@pytest.mark.parametrize("package, extra, argv", [
    ("onnxscript", "onnx", ["export", "{weights}", "-o", "{tmp}/d.onnx"]),
    ("onnxruntime", "onnx", ["colorize", "{photo}", "-o", "{tmp}/c.png", "--model", "{weights}", "--backend", "onnxruntime"]),
    ("braceexpand", "train", ["train", "--data", "{tmp}/shard-{{000..001}}.tar", "--out", "{tmp}/run", "--set", "run.steps=1"]),
], ids=["export-onnx", "colorize-onnxruntime", "train-shards"])
def test_a_missing_extra_is_one_line_naming_it(package, extra, argv, tiny_weights, tmp_path, monkeypatch, capsys):
    """Issue 33 item 4: after a plain install these ended in ModuleNotFoundError tracebacks."""
    monkeypatch.setitem(sys.modules, package, None)  # `import package` now fails as if it were not installed
    photo(40, 30).convert("L").save(tmp_path / "p.jpg")
    values = {"weights": tiny_weights, "tmp": tmp_path, "photo": tmp_path / "p.jpg"}
    code, err = run_cli([part.format(**values) for part in argv], capsys)
    assert code == 2
    assert err.strip() == (f"colorem: error: colorem {argv[0]} needs {package}, which is not installed: "
                           f'pip install ".[{extra}]" in the colorem checkout')


@pytest.mark.skipif(not Path("/sys/kernel").is_dir(), reason="needs Linux's /sys")
def test_an_output_folder_nobody_can_write_is_exit_2_before_reading(tiny_weights, tmp_path, capsys):
    """Issue 33 item 5: as root, os.access called /sys writable; the photo was read, then its .part failed."""
    photo(40, 30).convert("L").save(tmp_path / "x.jpg")
    code, err = run_cli(["colorize", str(tmp_path / "x.jpg"), "-o", "/sys/x.png", "--model", str(tiny_weights)], capsys)
    assert code == 2
    assert err.strip().splitlines() == [err.strip()] and "cannot write in the output folder /sys" in err


def test_export_refuses_to_write_over_its_own_source(tiny_weights, tmp_path, capsys):
    """Issue 33 item 6: weights exported onto themselves were silently replaced (13.7 -> 27.4 MB)."""
    weights = tmp_path / "w.safetensors"
    weights.write_bytes(tiny_weights.read_bytes())
    weights.with_suffix(".json").write_bytes(tiny_weights.with_suffix(".json").read_bytes())
    before = weights.read_bytes()
    code, err = run_cli(["export", str(weights), "-o", str(tmp_path / "." / "w.safetensors"), "--fp16"], capsys)
    assert code == 2 and "would write over the input" in err
    assert weights.read_bytes() == before
    pytest.importorskip("onnxscript")
    # the documented place of a .onnx, beside the weights and their card, writes no card and is not refused
    code, err = run_cli(["export", str(weights), "-o", str(weights.with_suffix(".onnx"))], capsys)
    assert code == 0 and weights.with_suffix(".onnx").is_file() and weights.read_bytes() == before


class NotATensor:
    """A class a pickle can name: torch.load(weights_only=True) refuses it."""


@pytest.mark.parametrize("kind", ["text", "pickle"])
def test_export_of_a_file_that_is_no_checkpoint_says_so_without_torchs_advice(kind, tmp_path, capsys):
    """Issue 33 item 7: torch's refusal advised re-running with weights_only=False, i.e. unpickling."""
    source = tmp_path / ("notes.md" if kind == "text" else "evil.pt")
    if kind == "text":
        source.write_text("# not weights\n")
    else:
        torch.save({"x": NotATensor()}, source)
    code, err = run_cli(["export", str(source), "-o", str(tmp_path / "y.safetensors")], capsys)
    assert code == 2 and f"{source} is not a" in err
    assert "weights_only" not in err and "Weights only" not in err and len(err.strip().splitlines()) == 1


def test_an_output_name_with_an_unknown_extension_is_refused(tiny_weights, tmp_path, capsys):
    """Issue 33 item 8: -o out.xyz silently became a folder out.xyz/."""
    photo(40, 30).convert("L").save(tmp_path / "x.jpg")
    code, err = run_cli(["colorize", str(tmp_path / "x.jpg"), "-o", str(tmp_path / "out.xyz"), "--model", str(tiny_weights)], capsys)
    assert code == 2 and "not .xyz" in err and not (tmp_path / "out.xyz").exists()
    code, err = run_cli(["colorize", str(tmp_path / "x.jpg"), "-o", str(tmp_path / "out.d") + "/", "--model", str(tiny_weights)], capsys)
    assert code == 0 and (tmp_path / "out.d" / "x.jpg").is_file()  # a trailing slash: a folder


def _tiny_clip(path: Path) -> Path:
    av = pytest.importorskip("av")
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        for index in range(3):
            frame = av.VideoFrame.from_ndarray(np.full((32, 32), 40 * index, np.uint8), format="gray")
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


@pytest.mark.parametrize("name, output", [("clip.mp4", "out.mp4"), ("clip-without-extension", "out")])
def test_a_video_given_to_colorize_is_sent_to_colorem_video(name, output, tiny_weights, tmp_path, capsys):
    """Issue 33 item 8: clip.mp4 -o out.mp4 made an empty folder out.mp4/, then failed as "not a recognised
    image format". A video is known by its first bytes, whatever its name."""
    clip = _tiny_clip(tmp_path / name)
    code, err = run_cli(["colorize", str(clip), "-o", str(tmp_path / output), "--model", str(tiny_weights)], capsys)
    assert code == 2 and f"{clip} is a video: colorize it with colorem video {clip} -o " in err
    assert not (tmp_path / output).exists()
