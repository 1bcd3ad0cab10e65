"""Colour hints through the API, the CLI and the REST API: hints in a photo's own pixels land where
they should at any size, and bad hints are clear errors (exit 2 / 422). Uses the hand-set hint model
of conftest.hint_model(): gray without hints, a hint's hue around each hint."""

from __future__ import annotations

import copy
import io
import json
import math

import numpy as np
import pytest
import torch
from PIL import Image

import colorem
from colorem import Hint, HintError
from colorem.cli import main
from colorem.color import rgb_to_lab
from colorem.hints import MAX_HINTS, as_hints, parse_color
from tests.conftest import photo


def ab_of(image) -> torch.Tensor:
    """(2, H, W) ab of a PIL image or uint8 array."""
    rgb = torch.from_numpy(np.asarray(image.convert("RGB") if hasattr(image, "convert") else image).copy())
    return rgb_to_lab(rgb.permute(2, 0, 1)[None].float() / 255)[0, 1:]


def hue(ab: torch.Tensor) -> float:
    """Hue angle in degrees of the mean ab of (2, ...) values."""
    a, b = ab.reshape(2, -1).mean(1).tolist()
    return math.degrees(math.atan2(b, a))


def ab_of_color(color: str) -> torch.Tensor:
    """(2,) ab of an sRGB colour such as "#3a6ea5"."""
    rgb = torch.tensor(parse_color(color)).float().div(255)
    return rgb_to_lab(rgb[None, :, None, None])[0, 1:, 0, 0]


def hue_of(color: str) -> float:
    return hue(ab_of_color(color))


def angle(first: float, second: float) -> float:
    return abs((first - second + 180) % 360 - 180)


@pytest.fixture(scope="module")
def colorizer(hint_weights):
    return colorem.load(hint_weights, precision="fp32")


@pytest.fixture
def big_gray(tmp_path):
    path = tmp_path / "big.png"
    photo(2000, 1200).convert("L").save(path)  # about 31 times the render size (64) across
    return path


def test_a_hint_in_a_large_photo_colours_where_it_was_put(colorizer, big_gray):
    plain = ab_of(colorizer.colorize(big_gray))
    hinted = colorizer.colorize(big_gray, hints=[Hint(400, 600, "#b22222")])
    assert hinted.size == (2000, 1200)
    change = (ab_of(hinted) - plain).norm(dim=0)  # (H, W)
    left, right = change[:, :1000].mean(), change[:, 1000:].mean()
    assert left > 3 * right and change[600, 400] > 20
    assert angle(hue(ab_of(hinted)[:, 570:630, 370:430]), hue_of("#b22222")) < 20


def test_hints_as_dicts_tuples_and_hex_agree(colorizer, big_gray):
    as_hint = colorizer.colorize(big_gray, hints=[Hint(1500, 300, "#3a6ea5")])
    as_dict = colorizer.colorize(big_gray, hints=[{"x": 1500, "y": 300, "color": (58, 110, 165)}])
    assert np.array_equal(np.asarray(as_hint), np.asarray(as_dict))
    assert np.array_equal(np.asarray(colorizer.colorize(big_gray, hints=[])), np.asarray(colorizer.colorize(big_gray)))


def test_each_photo_of_a_batch_takes_its_own_hints(colorizer):
    gray = np.asarray(photo(300, 200).convert("L"))
    left, right = colorizer.colorize_batch([gray, gray], hints=[[Hint(30, 100, "#b22222")], [Hint(270, 100, "#b22222")]])
    assert ab_of(left)[:, :, :150].norm(dim=0).mean() > ab_of(left)[:, :, 150:].norm(dim=0).mean()
    assert ab_of(right)[:, :, 150:].norm(dim=0).mean() > ab_of(right)[:, :, :150].norm(dim=0).mean()


def test_near_hints_the_networks_own_colours_replace_the_cards_decoding():
    from colorem.color import AB_MAX
    from colorem.hint_input import hint_reach
    from colorem.models import create_model
    from colorem.stages import decode_ab

    torch.manual_seed(0)
    colorizer = colorem.Colorizer.from_model(create_model("color-em-tiny", head="classification", hints=True).eval(),
                                             render_size=64, precision="fp32")
    colorizer.vibrance, colorizer.cast_removal = 2.0, 0.25  # as a card may say, calibrated for automatic colour
    l, hints = torch.rand(2, 1, 64, 64) * 100, torch.zeros(2, 3, 64, 64)
    hints[0, :, 10, 20] = torch.tensor([0.3, -0.2, 1.0])  # the first photo has one hint, the second none
    ab = colorizer.predict_ab(l, hints=hints, follow=False)
    with torch.inference_mode():
        network = colorizer.model(l, hints=hints).float()
    own, decoded = network.clamp(-AB_MAX, AB_MAX), decode_ab(network, 2.0, 0.25)
    assert network[1].abs().mean() > 1 and (own - decoded).abs().mean() > 1  # a random network: colours to decode
    assert torch.allclose(ab[0, :, 10, 20], own[0, :, 10, 20], atol=1e-4)  # at the hint, the network's own colour
    assert torch.allclose(ab[1], decoded[1], atol=1e-4)  # no hints: as the card says, as if given none at all
    assert torch.allclose(colorizer.predict_ab(l[1:]), ab[1:], atol=1e-4)
    near = hint_reach(l, hints)  # in between, a mix by nearness to the hint
    assert near[1].max() == 0 and near[0, 0, 10, 20] == 1 and 0 < near[0].min() < near[0].median() < 1
    assert torch.allclose(ab, decoded + near * (own - decoded), atol=1e-4)


def test_hint_reach_fades_with_distance_and_with_difference_in_lightness():
    from colorem.hint_input import hint_reach

    l, hints = torch.full((1, 1, 64, 64), 50.0), torch.zeros(1, 3, 64, 64)
    hints[0, 2, 32, 32] = 1.0
    l[0, 0, :, 48:] = 80.0  # the right side is much lighter than the hinted point
    near = hint_reach(l, hints)[0, 0]
    assert near[32, 32] == 1 and near[32, 40] > near[32, 44] > near[32, 47] > near[32, 48] * 10
    assert hint_reach(l, torch.zeros(1, 3, 64, 64)).max() == 0


@pytest.mark.parametrize("hints, message", [
    ([Hint(2000, 10, "#fff")], "outside the 2000x1200 photo"),
    ([Hint(10, -1, "#fff")], "outside"),
    ([Hint(10, 10, "bleu")], "neither sRGB hex"),
    ([{"x": 10, "y": 10}], "x, y and color"),
    ([Hint(1, 1, "#fff")] * (MAX_HINTS + 1), f"at most {MAX_HINTS}"),
    ("#fff", "a list of Hint"),
])
def test_bad_hints_are_clear_errors(colorizer, big_gray, hints, message):
    with pytest.raises(HintError, match=message):
        colorizer.colorize(big_gray, hints=hints)


def test_a_model_without_a_hint_input_refuses_hints(tiny_weights):
    colorizer = colorem.load(tiny_weights)
    assert not colorizer.accepts_hints
    with pytest.raises(HintError, match="takes no colour hints"):
        colorizer.colorize(np.zeros((20, 20), np.uint8), hints=[Hint(1, 1, "#3a6ea5")])
    assert colorizer.colorize(np.zeros((20, 20), np.uint8), hints=[]).shape == (20, 20, 3)  # no hints: nothing to refuse


def test_the_onnx_backend_refuses_hints(colorizer):
    onnx = copy.copy(colorizer)
    onnx._onnx = object()  # as if loaded with backend="onnxruntime" (the export itself takes 20 s here)
    assert colorizer.accepts_hints and not onnx.accepts_hints
    with pytest.raises(HintError, match="onnxruntime backend does not take colour hints"):
        onnx.colorize(np.zeros((20, 20), np.uint8), hints=[Hint(1, 1, "#3a6ea5")])


# --- the command line ------------------------------------------------------------------------

def test_cli_hints_land_where_they_should(hint_weights, big_gray, tmp_path):
    plain, hinted, from_file = tmp_path / "plain.png", tmp_path / "hinted.png", tmp_path / "from-file.png"
    assert main(["colorize", str(big_gray), "-o", str(plain), "--model", str(hint_weights)]) == 0
    assert main(["colorize", str(big_gray), "-o", str(hinted), "--model", str(hint_weights),
                 "--hint", "400,600,firebrick", "--hint", "1700,200,#3a6ea5"]) == 0  # firebrick is #b22222
    hints_file = tmp_path / "hints.json"
    hints_file.write_text(json.dumps({"hints": [{"x": 400, "y": 600, "color": "#b22222"},
                                                {"x": 1700, "y": 200, "color": "#3a6ea5"}]}))
    assert main(["colorize", str(big_gray), "-o", str(from_file), "--model", str(hint_weights), "--hints", str(hints_file)]) == 0
    from PIL import Image

    result = ab_of(Image.open(hinted))
    assert angle(hue(result[:, 570:630, 370:430]), hue_of("#b22222")) < 20
    assert angle(hue(result[:, 170:230, 1670:1730]), hue_of("#3a6ea5")) < 20
    assert ab_of(Image.open(plain)).norm(dim=0).max() < 2
    assert np.array_equal(np.asarray(Image.open(hinted)), np.asarray(Image.open(from_file)))


@pytest.mark.parametrize("arguments, message", [
    (["--hint", "400,600"], "expected X,Y,COLOR"),
    (["--hint", "left,600,#b22222"], "must be numbers"),
    (["--hint", "400,600,#zz2222"], "neither sRGB hex"),
    (["--hint", "400,600,rgb(1,2)"], "neither sRGB hex"),
    (["--hint", "400,600,#ff00"], "neither sRGB hex"),  # issue 33: #rgba and rgb() were taken through Pillow
    (["--hint", "400,600,rgb(1,2,3)"], "neither sRGB hex"),
    (["--hints", '[{"x": 1, "y": 1, "color": "red", "extra": 1}]'], "x, y and color only, not 'extra'"),
    (["--hint", "4000,600,#b22222"], "outside the 2000x1200 photo"),
    (["--hint", "-1,5,#b22222"], "hint at (-1.0, 5.0) lies outside"),  # issue 33: argparse's "expected one argument"
    (["--hints", "missing.json"], "cannot read the hints file"),
    (["--hints", "{bad json"], "not valid JSON"),
    (["--hints", "[" * 100_000 + "]" * 100_000], "nested too deeply"),  # once a RecursionError traceback
])
def test_cli_bad_hints_exit_2_with_one_line(hint_weights, big_gray, tmp_path, capsys, arguments, message):
    if arguments[0] == "--hints" and arguments[1][0] in "{[":
        (tmp_path / "bad.json").write_text(arguments[1])
        arguments = ["--hints", str(tmp_path / "bad.json")]
    elif arguments[0] == "--hints":
        arguments = ["--hints", str(tmp_path / arguments[1])]
    target = tmp_path / "out.png"
    assert main(["colorize", str(big_gray), "-o", str(target), "--model", str(hint_weights), *arguments]) == 2
    error = capsys.readouterr().err.strip()
    assert message in error and len(error.splitlines()) == 1 and "Traceback" not in error
    assert not target.exists()


def test_cli_hints_need_one_photo_and_a_hint_model(hint_weights, tiny_weights, big_gray, tmp_path, capsys):
    other = tmp_path / "other.png"  # another photo: the same one named twice is one photo
    other.write_bytes(big_gray.read_bytes())
    assert main(["colorize", str(big_gray), str(other), "-o", str(tmp_path / "out"), "--model", str(hint_weights),
                 "--hint", "1,1,#b22222"]) == 2
    assert "exactly one input photo" in capsys.readouterr().err
    assert main(["colorize", str(big_gray), "-o", str(tmp_path / "o.png"), "--model", str(tiny_weights),
                 "--hint", "1,1,#b22222"]) == 2
    assert "takes no colour hints" in capsys.readouterr().err


# --- the REST API ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def client(colorizer):
    pytest.importorskip("fastapi")
    pytest.importorskip("httpx")
    from fastapi.testclient import TestClient

    from colorem.serve import Settings, create_app

    with TestClient(create_app(Settings(colorizer=colorizer, warmup=False))) as client:
        yield client


def post(client, hints=None, size=(300, 200)):
    import io

    from PIL import Image

    buffer = io.BytesIO()
    photo(*size).convert("L").save(buffer, format="PNG")
    fields = {} if hints is None else {"hints": hints if isinstance(hints, str) else json.dumps(hints)}
    response = client.post("/api/colorize", files={"file": ("photo.png", buffer.getvalue(), "image/png")}, data=fields)
    image = Image.open(io.BytesIO(response.content)) if response.status_code == 200 else None
    return response, image


def test_rest_hints_field(client):
    assert client.get("/api/config").json()["accepts_hints"] is True
    response, image = post(client, [{"x": 50, "y": 100, "color": "#b22222"}])
    assert response.status_code == 200 and image.size == (300, 200)
    result = ab_of(image)
    assert angle(hue(result[:, 90:110, 40:60]), hue_of("#b22222")) < 20
    assert result[:, :, :150].norm(dim=0).mean() > 3 * result[:, :, 150:].norm(dim=0).mean()
    wrapped, same = post(client, {"hints": [{"x": 50, "y": 100, "color": "#b22222"}]})
    assert np.array_equal(np.asarray(same), np.asarray(image))


@pytest.mark.parametrize("hints, message", [
    ("[{", "not valid JSON"),
    ('[{"x": 1, "y": 1, "color": "rouge"}]', "neither sRGB hex"),
    ('{"x": 1}', "must be a list of"),
    ('[{"x": 1, "y": 1, "color": "#ff00"}]', "neither sRGB hex"),  # issue 33: once taken as #rgba
    ('[{"x": 1, "y": 1, "color": "rgb(1,2,3)"}]', "neither sRGB hex"),
    ('[{"x": 1, "y": 1, "color": "red", "extra": 1}]', "x, y and color only, not 'extra'"),
    ("[" * 20_000 + "]" * 20_000, "nested too deeply"),  # 40 KB; once a 500 (RecursionError)
    ([{"x": 500, "y": 1, "color": "#b22222"}], "outside the 300x200 photo"),
    ([{"x": 1, "y": 1, "color": "#b22222"}] * (MAX_HINTS + 1), f"at most {MAX_HINTS}"),
])
def test_rest_bad_hints_are_422_naming_the_field(client, hints, message):
    response, _ = post(client, hints)
    assert response.status_code == 422
    body = response.json()
    assert body["error"].startswith("Invalid options: hints") and message in body["error"]
    assert body["detail"][0]["field"] == "hints"


def test_rest_takes_the_most_hints_in_long_form_and_a_hints_file(client):
    """256 hints written out at length (colour names, fractional pixels: over 16 KiB of JSON) are options like
    any others, and the page's exported file may be sent as a file part (curl -F hints=@hints.json)."""
    many = [{"x": 10.123456789 + index % 16 * 17.5, "y": 7.987654321 + index // 16 * 11.5, "color": "lightgoldenrodyellow"}
            for index in range(MAX_HINTS)]
    assert len(json.dumps(many)) > 16 * 1024
    response, image = post(client, many)
    assert response.status_code == 200, response.text
    one = {"hints": [{"x": 50, "y": 100, "color": "#b22222"}]}
    _, as_field = post(client, one)
    buffer = io.BytesIO()
    photo(300, 200).convert("L").save(buffer, format="PNG")
    as_file = client.post("/api/colorize", files={"file": ("photo.png", buffer.getvalue(), "image/png"),
                                                  "hints": ("photo-hints.json", json.dumps(one), "application/json")})
    assert as_file.status_code == 200, as_file.text
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(as_file.content))), np.asarray(as_field))
    too_many = client.post("/api/colorize", files={"file": ("photo.png", buffer.getvalue(), "image/png"),
                                                   "hints": ("h.json", json.dumps(many * 2), "application/json")})
    assert too_many.status_code == 422 and too_many.json()["detail"][0]["field"] == "hints"


def test_rest_hints_to_a_model_without_a_hint_input(tiny_weights):
    from fastapi.testclient import TestClient

    from colorem.serve import Settings, create_app

    with TestClient(create_app(Settings(colorizer=colorem.load(tiny_weights), warmup=False))) as client:
        assert client.get("/api/config").json()["accepts_hints"] is False
        response, _ = post(client, [{"x": 5, "y": 5, "color": "#b22222"}])
        assert response.status_code == 422 and "takes no colour hints" in response.json()["error"]
        assert post(client, [])[0].status_code == 200


# --- evaluation with simulated hints ---------------------------------------------------------

@pytest.fixture
def colour_folder(tmp_path):
    folder = tmp_path / "eval"
    folder.mkdir()
    colours = [(178, 34, 34), (58, 110, 165), (60, 140, 60), (200, 160, 40)]
    for seed, ((width, height), colour) in enumerate(zip([(96, 64), (80, 80), (96, 64), (50, 70)], colours)):
        shade = np.linspace(0.7, 1.1, width)[None, :, None]  # one colour per photo, lightness varying
        pixels = np.clip(np.array(colour) * shade * np.ones((height, 1, 1)), 0, 255).astype(np.uint8)
        Image.fromarray(pixels, "RGB").save(folder / f"photo-{seed}.png")
    return folder


def test_evaluate_with_simulated_hints(colorizer, tiny_weights, colour_folder):
    from colorem.evaluate import GRAY, evaluate, find_images

    images = find_images(colour_folder)
    models = {"hinted": colorizer, "automatic": colorem.load(tiny_weights)}
    evaluation = evaluate(models, images, render_size=64, batch_size=3, hints=[0, 1, 10], contact_images=0)
    assert evaluation.rows == [GRAY, "hinted", "automatic", "hinted +1 hint", "hinted +10 hints"]
    auc = {row: evaluation.summary[row]["auc_ab"].mean for row in evaluation.rows}
    # One true colour brings the hand-set model closer to the truth (ten overlap and overshoot: it only adds them up).
    assert auc["hinted +1 hint"] > auc["hinted"] + 0.03 and auc["hinted +10 hints"] != auc["hinted +1 hint"]
    assert auc["hinted"] == auc[GRAY]  # without hints it paints nothing
    def by_photo(result):
        return dict(zip(result.images, result.scores["hinted +10 hints"]["psnr_rgb"].tolist()))

    again = evaluate({"hinted": colorizer}, images, render_size=64, batch_size=1, hints=[10], contact_images=0)
    assert by_photo(again) == pytest.approx(by_photo(evaluation), abs=1e-4)  # the same points whatever the batching
    other_seed = evaluate({"hinted": colorizer}, images, render_size=64, hints=[10], seed=1, contact_images=0)
    assert not np.array_equal(other_seed.scores["hinted +10 hints"]["psnr_rgb"], evaluation.scores["hinted +10 hints"]["psnr_rgb"])


def test_evaluate_cli_hints_rows(hint_weights, tiny_weights, colour_folder, tmp_path, capsys):
    out = tmp_path / "report"
    assert main(["evaluate", "--model", str(hint_weights), "--images", str(colour_folder), "--out", str(out),
                 "--render-size", "64", "--hints", "0,2,5", "--contact-images", "0"]) == 0
    assert "| tiny-hints +5 hints |" in capsys.readouterr().out
    summary = json.loads((out / "results.json").read_text())
    assert summary["rows"] == ["gray", "tiny-hints", "tiny-hints +2 hints", "tiny-hints +5 hints"]
    assert summary["settings"]["hints"]["counts"] == [0, 2, 5]
    for bad in ("ten", "-1"):
        assert main(["evaluate", "--model", str(hint_weights), "--images", str(colour_folder), "--hints", bad]) == 2
        assert "expected numbers of hints" in capsys.readouterr().err
    assert main(["evaluate", "--model", str(tiny_weights), "--images", str(colour_folder), "--hints", "10",
                 "--out", str(out)]) == 2
    assert "need a model with a hint input" in capsys.readouterr().err


def test_the_shipped_model_takes_a_hints_colour_where_it_was_given():
    """The network alone spreads a user's hint timidly (a small green dot on the dogs' door); follow_hints
    gives the hinted point its colour and carries it over the planks around it."""
    from tests.conftest import SAMPLES

    colorizer = colorem.load()
    source = SAMPLES / "dogs-at-door.jpg"
    green = "#3a8a3a"
    plain = ab_of(colorizer.colorize(source))
    hinted = ab_of(colorizer.colorize(source, hints=[Hint(100, 450, green)]))
    spot, planks = (slice(445, 456), slice(95, 106)), (slice(400, 500), slice(20, 200))
    hint_ab = ab_of_color(green)
    assert angle(hue(hinted[:, spot[0], spot[1]]), hue_of(green)) < 15
    assert hinted[:, spot[0], spot[1]].mean((1, 2)).norm() > 0.7 * hint_ab.norm()
    toward = lambda ab: (ab[:, planks[0], planks[1]].mean((1, 2)) @ hint_ab / hint_ab.norm())  # noqa: E731
    assert toward(hinted) > toward(plain) + 10  # the planks around the hint turn green, not a dot alone


def test_cli_checks_hints_before_skipping_an_existing_output(hint_weights, tmp_path, capsys):
    """Issue 33 item 11: with the output already there, a hint outside the photo was "skipped 1", exit 0."""
    source, target = tmp_path / "p.png", tmp_path / "out.png"
    photo(300, 200).convert("L").save(source)
    target.write_bytes(b"an earlier result")
    assert main(["colorize", str(source), "-o", str(target), "--model", str(hint_weights), "--hint", "9999,5,red"]) == 2
    assert "outside the 300x200 photo" in capsys.readouterr().err
    assert target.read_bytes() == b"an earlier result"


def test_a_hints_file_with_a_utf8_byte_order_mark_is_read(hint_weights, tmp_path, capsys, client):
    """Issue 33 item 13: a hints file saved by a Windows editor (UTF-8 with a BOM) was refused as bad JSON."""
    hints = tmp_path / "hints.json"
    hints.write_bytes(b"\xef\xbb\xbf" + json.dumps([{"x": 50, "y": 100, "color": "#b22222"}]).encode())
    source = tmp_path / "p.png"
    photo(300, 200).convert("L").save(source)
    assert main(["colorize", str(source), "-o", str(tmp_path / "out.png"), "--model", str(hint_weights),
                 "--hints", str(hints)]) == 0, capsys.readouterr().err
    buffer = io.BytesIO()
    photo(300, 200).convert("L").save(buffer, format="PNG")
    response = client.post("/api/colorize", files={"file": ("p.png", buffer.getvalue(), "image/png"),
                                                   "hints": ("hints.json", hints.read_bytes(), "application/json")})
    assert response.status_code == 200, response.text
    assert (tmp_path / "out.png").is_file()


def _edge_fade(image: Image.Image) -> dict[str, float]:
    """Mean chroma of the outer 4-pixel band along each edge, as a share of the 8-pixel band just inside it.
    (Against the band 10-30 pixels in, as this was first written, a colour patch that ends short of the edge
    reads as a fade: with this hint default v10 paints the table of coffee.jpg orange-brown, as it is in the
    original, 20-200 pixels from the top right, and v9 its lower left, 0.44 there, with evenly coloured edges.)"""
    chroma = ab_of(image).norm(dim=0)  # (H, W)
    bands = {"top": (chroma[:4], chroma[4:12]), "bottom": (chroma[-4:], chroma[-12:-4]),
             "left": (chroma[:, :4], chroma[:, 4:12]), "right": (chroma[:, -4:], chroma[:, -12:-4])}
    return {edge: float(outer.mean() / inner.mean()) for edge, (outer, inner) in bands.items()}


def test_hinted_colours_do_not_fade_along_the_edges():
    """Issue 33 item 14: with --hint 130,310,firebrick on coffee.jpg the outer rows had about half the chroma
    of the rows just inside, along every edge (top and right worst)."""
    from tests.conftest import SAMPLES

    colorizer = colorem.load("default", device="cpu", precision="fp32")
    image = colorizer.colorize(SAMPLES / "coffee.jpg", hints=[Hint(130, 310, "firebrick")])
    fade = _edge_fade(image)
    assert min(fade.values()) > 0.8, fade  # v9: 0.91-0.99, v10: 0.87-0.98


# --- one check, wherever hints enter --------------------------------------------------------
# Every entry point hands its hints to colorem.hints.as_hints, once: the API, the CLI and the server refuse a
# bad hint with the same words (the server and the CLI add only where it came from).
BAD_HINTS = [
    [{"x": 10, "y": 10, "color": "bleu"}],
    [{"x": 10, "y": 10, "color": "red", "extra": 1}],
    [{"x": 10, "y": 10, "color": [0, 0, 300]}],
    [{"x": 1, "y": 1, "color": "#b22222"}] * (MAX_HINTS + 1),
]


def the_one_check(hints) -> str:
    with pytest.raises(HintError) as refused:
        as_hints(hints)
    return str(refused.value)


@pytest.mark.parametrize("hints", BAD_HINTS)
def test_the_api_refuses_a_bad_hint_with_the_one_check(colorizer, hints):
    with pytest.raises(HintError) as refused:
        colorizer.colorize(np.zeros((200, 300), np.uint8), hints=hints)
    assert str(refused.value) == the_one_check(hints)


@pytest.mark.parametrize("hints", BAD_HINTS)
def test_the_cli_refuses_a_bad_hint_with_the_one_check(hint_weights, tmp_path, capsys, hints):
    source, hints_file, target = tmp_path / "p.png", tmp_path / "hints.json", tmp_path / "out.png"
    photo(300, 200).convert("L").save(source)
    hints_file.write_text(json.dumps(hints))
    assert main(["colorize", str(source), "-o", str(target), "--model", str(hint_weights), "--hints", str(hints_file)]) == 2
    assert capsys.readouterr().err.strip() == f"colorem: error: {the_one_check(hints)}"
    assert not target.exists()


@pytest.mark.parametrize("hints", BAD_HINTS)
def test_the_server_refuses_a_bad_hint_with_the_one_check(client, hints):
    response, _ = post(client, hints)
    assert response.status_code == 422
    assert response.json()["detail"][0] == {"field": "hints", "message": f"are refused ({the_one_check(hints)})",
                                            "value": json.dumps(hints)[:200]}
