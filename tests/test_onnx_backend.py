"""ONNX export and the ONNX Runtime backend agree with PyTorch on real photos."""

import numpy as np
import pytest
import torch

pytest.importorskip("onnxruntime")

import colorem  # noqa: E402
from colorem.colorize import Colorizer  # noqa: E402
from colorem.runtime import choose_backend  # noqa: E402
from colorem.models import create_model  # noqa: E402
from colorem.onnx_backend import export_onnx  # noqa: E402
from colorem.weights import ModelCard, save_weights  # noqa: E402
from tests.conftest import SAMPLES, photo  # noqa: E402

PHOTOS = sorted(SAMPLES.glob("*.jpg"))[:4]


@pytest.mark.parametrize("head, skips", [("regression", False), ("classification", False), ("classification", True)])
def test_onnx_matches_torch_on_real_photos(head, skips):
    torch.manual_seed(0)
    model = create_model("color-em-tiny", head=head, skips=skips)
    for conv in (model.skip_quarter, model.skip_half) if skips else ():
        torch.nn.init.normal_(conv.weight, std=0.1)  # zero-initialized: give the skips something to carry
    eager = Colorizer.from_model(model, render_size=96, precision="fp32", backend="torch")
    onnx = Colorizer.from_model(model, render_size=96, precision="fp32", backend="onnxruntime", onnx_model=export_onnx(model))
    assert onnx.backend == "onnxruntime"
    prepared = [eager.prepare(path, 96) for path in PHOTOS]
    l_small = torch.cat([item.l_small for item in prepared])
    for temperature in (None, 0.2):
        difference = (onnx.predict_ab(l_small, temperature) - eager.predict_ab(l_small, temperature)).abs().max()
        assert difference <= 0.5, f"max |delta ab| = {difference}"
    # dynamic height/width/batch: a different size and batch run through the same graph, padded to a
    # multiple of 8 as in eager mode (the export once fixed the pad at the traced size's: none)
    odd = torch.rand(3, 1, 41, 67) * 100
    assert (onnx.predict_ab(odd) - eager.predict_ab(odd)).abs().max() <= 0.01


def test_the_shipped_models_graph_pads_sizes_that_are_not_a_multiple_of_its_pad_as_eager_mode_does():
    """A trained network is sensitive to its borders: the export once fixed the padding at the traced
    size's (none), so a 189x253 input differed from eager mode near its edges (by 5.7 ab units on v4). v5 pads
    to a multiple of 32, so 189x253 is padded too."""
    model = colorem.load(backend="torch").model
    assert 189 % model.pad_multiple and 253 % model.pad_multiple
    eager = Colorizer.from_model(model, render_size=256, precision="fp32", backend="torch")
    onnx = Colorizer.from_model(model, render_size=256, precision="fp32", backend="onnxruntime", onnx_model=export_onnx(model))
    l = torch.rand(1, 1, 189, 253, generator=torch.Generator().manual_seed(0)) * 100
    assert (onnx.predict_ab(l) - eager.predict_ab(l)).abs().max() <= 0.01


def test_exported_file_beside_weights_is_used_automatically(tmp_path):
    model = create_model("color-em-tiny")
    weights = save_weights(model, ModelCard(architecture="color-em-tiny", render_size=64), tmp_path / "m.safetensors")
    assert colorem.load(weights, precision="fp32").backend == "torch"  # nothing exported yet
    export_onnx(model, weights.with_suffix(".onnx"))
    colorizer = colorem.load(weights, precision="fp32")
    assert colorizer.backend == "onnxruntime"
    result = colorizer.colorize(PHOTOS[0])
    reference = colorem.load(weights, precision="fp32", backend="torch").colorize(PHOTOS[0])
    assert np.abs(np.asarray(result, np.int16) - np.asarray(reference, np.int16)).max() <= 2


def test_a_stale_onnx_beside_replaced_weights_is_never_run_in_their_place(tmp_path, caplog):
    weights = tmp_path / "m.safetensors"
    old, new = create_model("color-em-tiny"), create_model("color-em-tiny")
    save_weights(old, ModelCard(architecture="color-em-tiny", render_size=64), weights)
    export_onnx(old, weights.with_suffix(".onnx"))
    save_weights(new, ModelCard(architecture="color-em-tiny", render_size=64), weights)  # re-exported weights
    colorizer = colorem.load(weights, precision="fp32")
    assert colorizer.backend == "torch"  # the old graph would give the old model's colours
    assert f"{weights.with_suffix('.onnx')} was not exported from these weights; not used" in caplog.text
    reference = colorem.load(weights, precision="fp32", backend="torch").colorize(PHOTOS[0])
    assert np.array_equal(np.asarray(colorizer.colorize(PHOTOS[0])), np.asarray(reference))
    export_onnx(new, weights.with_suffix(".onnx"))  # rebuilt: used again
    assert colorem.load(weights, precision="fp32").backend == "onnxruntime"


def test_backend_choice():
    cpu = torch.device("cpu")
    assert choose_backend("auto", cpu, "bf16", have_onnx=True) == "torch"
    assert choose_backend("auto", cpu, "fp32", have_onnx=True) == "onnxruntime"
    assert choose_backend("auto", cpu, "fp32", have_onnx=False) == "torch"
    with pytest.raises(ValueError):
        choose_backend("tensorrt", cpu, "fp32")


def test_cli_export_onnx_and_int8(tmp_path, tiny_weights):
    from colorem.cli import main

    onnx_path, int8_path = tmp_path / "m.onnx", tmp_path / "m-int8.onnx"
    assert main(["export", str(tiny_weights), "-o", str(onnx_path)]) == 0
    calibration = tmp_path / "calibration"
    calibration.mkdir()
    for path in PHOTOS:
        (calibration / path.name).write_bytes(path.read_bytes())
    assert main(["export", str(tiny_weights), "-o", str(int8_path), "--int8", "--calibration", str(calibration)]) == 0
    fp32 = colorem.load(tiny_weights, precision="fp32", onnx_model=onnx_path)
    int8 = colorem.load(tiny_weights, precision="fp32", onnx_model=int8_path, backend="onnxruntime")
    reference = colorem.load(tiny_weights, precision="fp32", backend="torch")
    assert fp32.backend == int8.backend == "onnxruntime"
    l_small = torch.cat([reference.prepare(path, 64).l_small for path in PHOTOS])
    assert (fp32.predict_ab(l_small) - reference.predict_ab(l_small)).abs().max() <= 0.5
    assert (int8.predict_ab(l_small) - reference.predict_ab(l_small)).abs().mean() <= 3.0  # int8 costs some accuracy
    from colorem.onnx_backend import onnx_fingerprint, weights_fingerprint

    fingerprint = weights_fingerprint(reference.model)  # both graphs say which weights they came from
    assert onnx_fingerprint(onnx_path) == onnx_fingerprint(int8_path) == fingerprint


def test_the_onnxruntime_backend_prints_only_the_summary(tmp_path, tiny_weights):
    """No exporter chatter (torchvision is not installed...) reaches a user who asked for ONNX Runtime."""
    import subprocess
    import sys

    photo(40, 30).save(tmp_path / "a.jpg")
    result = subprocess.run([sys.executable, "-m", "colorem", "colorize", str(tmp_path / "a.jpg"), "-o",
                             str(tmp_path / "out"), "--model", str(tiny_weights), "--backend", "onnxruntime"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == [f"colorized 1, skipped 0, failed 0 -> {tmp_path / 'out'}"]



@pytest.mark.parametrize("output, options, message", [
    ("m.onnx", ["--prior-correction", "1"], "--prior-correction: a .onnx holds the network as it is"),  # once ignored
    ("m.onnx", ["--fp16", "--vibrance", "1.2"], "--fp16, --vibrance: a .onnx holds the network as it is"),
    ("m.safetensors", ["--int8"], "--int8 and --calibration quantize a .onnx output"),
    ("m.txt", [], "write a .safetensors (weights + card) or a .onnx file"),
    ("m.onnx", ["--format", "safetensors"], "as --format safetensors says"),
])
def test_export_options_that_would_be_ignored_are_usage_errors(tmp_path, tiny_weights, capsys, output, options, message):
    from colorem.cli import main

    assert main(["export", str(tiny_weights), "-o", str(tmp_path / output), *options]) == 2
    error = capsys.readouterr().err
    assert message in error and error.count("\n") == 1, error
    assert list(tmp_path.iterdir()) == []



def test_a_onnx_passed_as_model_says_where_it_belongs(tmp_path, tiny_weights, capsys):
    from colorem.cli import main

    export_onnx(colorem.load(tiny_weights).model, tmp_path / "m.onnx")
    photo(20, 10).save(tmp_path / "a.png")
    assert main(["colorize", str(tmp_path / "a.png"), "-o", str(tmp_path / "out.png"), "--model", str(tmp_path / "m.onnx")]) == 2
    assert "a .onnx runs beside the weights it was exported from" in capsys.readouterr().err
