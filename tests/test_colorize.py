"""colorize keeps the input's size and lightness, for every kind of input, and fails clearly."""

import io

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

import colorem
from colorem.color import rgb_to_lab
from colorem.colorize import Colorizer
from colorem.errors import ImageReadError, WeightsError
from colorem.imageio import read_image
from tests.conftest import photo


class ConstantAB(nn.Module):
    """Predicts the same moderate colour everywhere, so the pipeline's own effect on L and ab shows."""

    def __init__(self, a: float = 12.0, b: float = 25.0):
        super().__init__()
        self.register_buffer("ab", torch.tensor([a, b]).view(1, 2, 1, 1))
        self.calls = 0

    def forward(self, l, temperature=None):
        self.calls += 1
        return self.ab.expand(l.shape[0], 2, *l.shape[-2:]).clone()


def lab_of(image) -> np.ndarray:
    rgb = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
    return rgb_to_lab(torch.from_numpy(rgb).permute(2, 0, 1)[None])[0].numpy()


def input_l(image) -> np.ndarray:
    return rgb_to_lab(torch.from_numpy(read_image(image).rgb).permute(2, 0, 1)[None])[0, 0].numpy()


def sixteen_bit(width, height):
    values = (np.asarray(photo(width, height).convert("L"), dtype=np.uint16) * 257).astype(np.uint16)
    return Image.fromarray(values)


def exif_rotated(width, height):
    exif = Image.Exif()
    exif[0x0112] = 8
    buffer = io.BytesIO()
    photo(width, height).convert("L").save(buffer, format="JPEG", quality=95, exif=exif.tobytes())
    return buffer.getvalue()


def palette_transparent(width, height):
    image = photo(width, height).convert("P", palette=Image.Palette.ADAPTIVE, colors=64)
    image.info["transparency"] = 0
    return image


INPUTS = {
    "gray": lambda w, h: photo(w, h).convert("L"),
    "colour photo": lambda w, h: photo(w, h),
    "rgba": lambda w, h: photo(w, h).convert("RGBA"),
    "16-bit": sixteen_bit,
    "palette": palette_transparent,
    "exif-rotated jpeg": exif_rotated,
    "numpy": lambda w, h: np.asarray(photo(w, h).convert("L")),
}


@pytest.fixture(scope="module")
def constant():
    return Colorizer.from_model(ConstantAB(), render_size=32, precision="fp32")


@pytest.mark.parametrize("kind", sorted(INPUTS))
def test_keeps_size_and_lightness(constant, kind):
    source = INPUTS[kind](75, 41)
    result = constant.colorize(source)
    expected_size = (41, 75) if kind == "exif-rotated jpeg" else (75, 41)
    image = Image.fromarray(result) if isinstance(result, np.ndarray) else result
    assert image.size == expected_size
    lab = lab_of(image)
    assert np.abs(lab[0] - input_l(source)).mean() < 0.5  # L is the input's, up to 8-bit rounding
    assert np.abs(lab[1].mean() - 12.0) < 2.5 and np.abs(lab[2].mean() - 25.0) < 2.5


def test_alpha_is_carried_through(constant):
    source = photo(20, 10).convert("RGBA")
    source.putalpha(Image.linear_gradient("L").resize((20, 10)))
    result = constant.colorize(source)
    assert result.mode == "RGBA"
    assert np.array_equal(np.asarray(result.getchannel("A")), np.asarray(source.getchannel("A")))


def test_saturation_scales_colour(constant):
    gray = constant.colorize(photo(32, 32).convert("L"), saturation=0.0)
    assert np.abs(lab_of(gray)[1:]).max() < 1.5
    vivid = constant.colorize(photo(32, 32).convert("L"), saturation=2.0)
    assert lab_of(vivid)[2].mean() > 40


class CastAB(nn.Module):
    """A photo-wide cast (+20 on b) over a left/right split in a: what cast removal should take away and keep."""

    def forward(self, l, temperature=None):
        ab = torch.zeros(l.shape[0], 2, *l.shape[-2:])
        ab[:, 0, :, : l.shape[-1] // 2], ab[:, 0, :, l.shape[-1] // 2:] = -15.0, 15.0
        ab[:, 1] = 20.0
        return ab


@pytest.mark.parametrize("share", [0.0, 0.5, 1.0])
def test_the_cards_cast_removal_takes_that_share_of_the_photos_mean_colour_away(share):
    colorizer = Colorizer.from_model(CastAB(), render_size=32, precision="fp32")
    colorizer.cast_removal, colorizer.vibrance = share, 2.0  # as read from a card; the vibrance scales what is left
    ab = colorizer.predict_ab(torch.full((1, 1, 32, 32), 50.0))
    assert torch.allclose(ab[:, 1], torch.full_like(ab[:, 1], 2.0 * 20.0 * (1 - share)))  # the cast goes
    assert torch.allclose(ab[0, 0, :, :16], torch.tensor(-30.0)) and torch.allclose(ab[0, 0, :, 16:], torch.tensor(30.0))


def test_batch_uses_one_forward_pass():
    model = ConstantAB()
    colorizer = Colorizer.from_model(model, render_size=32, precision="fp32")
    results = colorizer.colorize_batch([photo(30, 20), photo(64, 48), photo(7, 99)])
    assert [r.size for r in results] == [(30, 20), (64, 48), (7, 99)]
    assert model.calls == 1


def test_tiny_one_by_one_and_panorama(tiny_weights):
    colorizer = colorem.load(tiny_weights)
    assert colorizer.colorize(np.zeros((1, 1), np.uint8)).shape == (1, 1, 3)
    assert colorizer.colorize(photo(600, 6)).size == (600, 6)


def test_bad_options_and_inputs(constant, tmp_path):
    with pytest.raises(ValueError, match="render_size"):
        constant.colorize(photo(), render_size=5)
    with pytest.raises(ValueError, match="saturation"):
        constant.colorize(photo(), saturation=float("nan"))
    (tmp_path / "x.jpg").write_bytes(b"not an image")
    with pytest.raises(ImageReadError, match="x.jpg"):
        constant.colorize(tmp_path / "x.jpg")


def test_load_real_weights_and_precisions(tiny_weights):
    fp32 = colorem.load(tiny_weights, precision="fp32")
    bf16 = colorem.load(tiny_weights, precision="bf16")
    assert fp32.card.name == "tiny-random" and fp32.render_size == 64
    a = np.asarray(fp32.colorize(photo()), dtype=np.float32)
    b = np.asarray(bf16.colorize(photo()), dtype=np.float32)
    assert a.shape == b.shape and np.abs(a - b).mean() < 3.0


def test_load_missing_weights_is_clear(tmp_path):
    with pytest.raises(WeightsError, match="no weights"):
        colorem.load(tmp_path / "nothing.safetensors")


def test_shipped_default_model_colorizes_the_samples_with_real_chroma():
    """The packaged weights load offline and give non-trivial colour: a missing or broken file fails CI."""
    from colorem.weights import packaged_weights
    from tests.conftest import SAMPLES

    assert packaged_weights().exists(), "colorem/pretrained/default.safetensors is missing"
    colorizer = colorem.load()
    assert colorizer.card.name == "default" and colorizer.render_size == 256
    assert colorizer.card.architecture == "effnet-lite2-unet" and colorizer.accepts_hints  # v10, a hint model
    chromas = []
    for source in sorted(SAMPLES.glob("*.jpg")):
        result = colorizer.colorize(source)
        assert result.size == Image.open(source).size
        lab = lab_of(result)
        chromas.append(np.hypot(lab[1], lab[2]).mean())
    # the shipped model (v10) measured 13.0 (0.0 to 29.9 per photo); gray output is ~0
    assert np.mean(chromas) > 5.0, f"mean chroma {np.mean(chromas):.2f}: the default model produced (nearly) gray output"
    assert np.abs(lab[0] - input_l(source)).mean() < 0.6


@pytest.mark.parametrize("options, field", [
    ({"temperature": float("nan")}, "temperature"), ({"temperature": float("inf")}, "temperature"),
    ({"temperature": 0.0}, "temperature"), ({"saturation": float("inf")}, "saturation"),
    ({"render_size": float("nan")}, "render_size"), ({"render_size": True}, "render_size"),
    ({"render_size": 0}, "render_size"), ({"render_size": np.bool_(True)}, "render_size"),
    ({"saturation": np.float32("nan")}, "saturation"),
])
def test_non_finite_and_out_of_range_options_are_refused(constant, options, field):
    from colorem.errors import OptionError

    with pytest.raises(OptionError, match=field):  # an OptionError is a ValueError too
        constant.colorize(photo(), **options)


def test_nan_weights_fail_their_photo_clearly_never_an_index_error(tiny_weights):
    from colorem.errors import ModelOutputError

    colorizer = colorem.load(tiny_weights)
    with torch.no_grad():
        for parameter in colorizer.model.parameters():
            parameter.fill_(float("nan"))
    with pytest.raises(ModelOutputError, match="not finite"):
        colorizer.colorize(photo())


def test_one_non_finite_prediction_spoils_only_its_own_photo():
    class InfiniteFirst(ConstantAB):
        def forward(self, l, temperature=None):
            ab = super().forward(l)
            ab[0] = float("inf")  # clamping alone would turn this into the most vivid colour there is
            return ab

    from colorem.errors import ModelOutputError

    colorizer = Colorizer.from_model(InfiniteFirst(), render_size=32, precision="fp32")
    ab = colorizer.predict_ab(torch.full((2, 1, 32, 32), 50.0))
    good = colorizer.prepare(photo(20, 10), 32)
    with pytest.raises(ModelOutputError):
        colorizer.finish(good, ab[:1], 1.0)
    assert colorizer.finish(good, ab[1:], 1.0).size == (20, 10)


@pytest.mark.parametrize("size", [(1, 1), (7, 5), (997, 1000), (4001, 17), (300, 64)])
def test_tiled_colour_math_gives_the_full_size_result(size, monkeypatch):
    """finish() upsamples ab and converts to sRGB a slice at a time; the bytes are those of one full-size
    F.interpolate + lab_to_srgb8, at most one level off in a few values per million (see _BilinearRows)."""
    import torch.nn.functional as F

    from colorem import stages as colorize_module
    from colorem.color import AB_MAX, join_lab, lab_to_srgb8

    monkeypatch.setattr(colorize_module, "CHUNK_PIXELS", 50_000)  # many slices even for small photos
    colorizer = Colorizer.from_model(ConstantAB(), render_size=33, precision="fp32")
    prepared = colorizer.prepare(photo(*size), 33)
    ab_small = torch.randn(1, 2, 33, 33, generator=torch.Generator().manual_seed(size[0])) * 40
    tiled = np.asarray(colorizer.finish(prepared, ab_small, 1.3), dtype=np.int16)
    height, width = size[1], size[0]
    ab_full = F.interpolate(ab_small * 1.3, size=(height, width), mode="bilinear", align_corners=False)
    reference = lab_to_srgb8(join_lab(prepared.l_rows(0, height), ab_full.clamp(-AB_MAX, AB_MAX)))[0].numpy()
    difference = np.abs(tiled - reference)
    assert difference.max() <= 1 and (difference > 0).mean() < 1e-4


def test_memory_per_pixel_of_a_large_photo(tmp_path):
    """A 12 MP gray photo file -> JPEG file costs its 8-bit pixels, the output image and ~1 MP slices of
    float work: 18.5 bytes a pixel above the warmed-up process, measured (39.5 before the colour math streamed)."""
    import os
    import subprocess
    import sys

    if not os.path.exists("/proc/self/clear_refs"):
        pytest.skip("needs Linux's /proc to measure a process's own peak memory")
    source = tmp_path / "big.bmp"
    Image.fromarray(np.asarray(photo(400, 300).convert("L").resize((4000, 3000)))).save(source)  # fast to decode
    # The child's own peak (VmHWM, reset after warming up): ru_maxrss would carry pytest's peak over the exec.
    child = (
        "import sys\nfrom PIL import Image\nfrom colorem.colorize import Colorizer\n"
        "from colorem.models import create_model\nfrom colorem.imageio import write_image\n"
        "def kib(field):\n"
        "    return next(int(line.split()[1]) for line in open('/proc/self/status') if line.startswith(field))\n"
        "colorizer = Colorizer.from_model(create_model('color-em-tiny'), render_size=64, precision='fp32')\n"
        "write_image(colorizer.colorize(Image.new('L', (512, 512), 90)), sys.argv[2])  # warm: pools, tables\n"
        "open('/proc/self/clear_refs', 'w').write('5')  # the peak starts again from here\n"
        "before = kib('VmRSS')\n"
        "write_image(colorizer.colorize(sys.argv[1]), sys.argv[2])\n"
        "print((kib('VmHWM') - before) * 1024)\n")
    result = subprocess.run([sys.executable, "-c", child, str(source), str(tmp_path / "out.jpg")],
                            capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr
    growth_per_pixel = int(result.stdout.split()[-1]) / (4000 * 3000)
    print(f"peak growth {growth_per_pixel:.1f} bytes per pixel")
    assert growth_per_pixel < 24


def test_numpy_numbers_are_numbers_like_python_ones(constant):
    """Sizes and positions often come from numpy (np.nonzero, array shapes): they are taken as plain numbers."""
    gray = np.asarray(photo(40, 30).convert("L"))
    ys, xs = np.nonzero(gray >= 0)
    plain = np.asarray(constant.colorize(gray, render_size=48, saturation=1.5))
    assert np.array_equal(np.asarray(constant.colorize(gray, render_size=np.int64(48), saturation=np.float32(1.5))), plain)
    from colorem.hints import Hint, as_hints

    hint = as_hints([{"x": xs[-1], "y": ys[-1], "color": np.array([178, 34, 34])}])[0]
    assert (hint.x, hint.y, hint.rgb()) == (39, 29, (178, 34, 34))
    assert Hint(np.float32(2.5), np.int16(3), (np.uint8(1), 2, 3)).to_dict() == {"x": 2.5, "y": 3, "color": "#010203"}


def test_float_arrays_outside_0_to_1_are_refused_not_whitened(constant):
    pixels = np.asarray(photo(20, 10)).astype(np.float32)  # 0..255 floats: clipped, they would come back white
    with pytest.raises(ImageReadError, match=r"values in \[0, 1\].*divide 0..255 values by 255"):
        constant.colorize(pixels)
    assert constant.colorize(pixels / 255.0).shape == (10, 20, 3)
    assert constant.colorize(np.clip(pixels / 255.0 + 1e-4, 0, None)).shape == (10, 20, 3)  # rounding is clipped


def test_an_open_binary_file_is_a_photo_too(constant, tmp_path):
    path = tmp_path / "photo.png"
    photo(30, 20).save(path)
    with open(path, "rb") as handle:
        assert constant.colorize(handle).size == (30, 20)
    assert constant.colorize(io.BytesIO(path.read_bytes())).size == (30, 20)
    with open(path, encoding="latin-1") as handle, pytest.raises(ImageReadError, match="text mode; open it with 'rb'"):
        constant.colorize(handle)


def test_colorize_batch_misuse_is_a_clear_error(constant):
    from colorem.hints import HintError

    with pytest.raises(TypeError, match="colorize_batch takes a list of photos; colorize\\(\\) takes one"):
        constant.colorize_batch("photo.jpg")
    hint = {"x": 1, "y": 1, "color": "firebrick"}
    with pytest.raises(HintError, match=r"one list per photo \(\[\] or None for none\): 1 given for 2"):
        constant.colorize_batch([photo(), photo()], hints=[[hint]])
    sizes = [image.size for image in constant.colorize_batch((p for p in [photo(30, 20), photo(20, 30)]))]
    assert sizes == [(30, 20), (20, 30)]  # any iterable of photos, a generator too
    assert len(constant.colorize_batch(np.zeros((2, 8, 8), np.uint8)[..., None].repeat(3, -1))) == 2  # (N, H, W, 3)
