"""Colour math agrees with scikit-image and round-trips."""

import numpy as np
import pytest
import torch
from skimage import color as skcolor

from colorem.color import ab_bins, gray_to_l, gray_to_rgb, join_lab, lab_to_rgb, rgb_to_l, rgb_to_lab, split_lab

EDGE_PIXELS = np.array(
    [[0, 0, 0], [1, 1, 1], [1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0], [0, 1, 1], [1, 0, 1],
     [0.5, 0.5, 0.5], [1e-4, 0, 0], [0.04045, 0.04045, 0.04045], [0.0031308, 0.5, 0.999]]
)


def _to_torch(pixels: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(pixels.astype(np.float32)).T[None, :, :, None]  # (1, 3, N, 1)


def _from_torch(tensor: torch.Tensor) -> np.ndarray:
    return tensor[0, :, :, 0].T.double().numpy()


@pytest.fixture
def pixels():
    rng = np.random.default_rng(0)
    return np.concatenate([rng.random((2000, 3)), EDGE_PIXELS])


def test_rgb_to_lab_matches_scikit_image(pixels):
    expected = skcolor.rgb2lab(pixels[:, None, :])[:, 0, :]
    assert np.abs(_from_torch(rgb_to_lab(_to_torch(pixels))) - expected).max() < 1e-3


def test_lab_to_rgb_matches_scikit_image(pixels):
    lab = skcolor.rgb2lab(pixels[:, None, :])[:, 0, :]
    expected = skcolor.lab2rgb(lab[:, None, :])[:, 0, :]
    assert np.abs(_from_torch(lab_to_rgb(_to_torch(lab))) - expected).max() < 1e-3


def test_round_trip_and_lightness_shortcut(pixels):
    rgb = _to_torch(pixels)
    lab = rgb_to_lab(rgb)
    assert torch.allclose(lab_to_rgb(lab), rgb, atol=1e-4)
    assert torch.allclose(rgb_to_l(rgb), lab[:, :1], atol=1e-3)


def test_batched_shapes_and_split_join():
    rgb = torch.rand(3, 3, 7, 5)
    l, ab = split_lab(rgb_to_lab(rgb))
    assert l.shape == (3, 1, 7, 5) and ab.shape == (3, 2, 7, 5)
    assert torch.equal(join_lab(l, ab), rgb_to_lab(rgb))


def test_gray_to_rgb_is_neutral():
    rgb = gray_to_rgb(torch.linspace(0, 100, 11).view(1, 1, 11, 1))
    assert torch.allclose(rgb[:, 0], rgb[:, 1], atol=1e-4) and torch.allclose(rgb[:, 1], rgb[:, 2], atol=1e-4)


def test_ab_bins_are_in_gamut_and_include_gray():
    bins = ab_bins()
    assert bins.shape[1] == 2 and 150 < len(bins) < 320
    assert (bins == 0).all(dim=1).any()
    assert bins.abs().max() <= 110


def test_out_of_gamut_colours_keep_their_lightness():
    from colorem.color import lab_to_rgb_keep_l

    lab = torch.tensor([[2.0, 60.0, -70.0], [97.0, -80.0, 90.0], [50.0, 10.0, 10.0]]).T[None, :, :, None]
    rgb = lab_to_rgb_keep_l(lab)
    assert rgb.min() >= 0 and rgb.max() <= 1
    assert torch.allclose(rgb_to_lab(rgb)[:, 0], lab[:, 0], atol=0.05)  # plain clipping is off by several units
    assert torch.allclose(rgb_to_lab(rgb)[0, :, 2], lab[0, :, 2], atol=1e-3)  # in-gamut pixels untouched


def test_a_batch_is_fitted_to_the_gamut_as_its_photos_one_by_one():
    from colorem.color import _fit_chroma, lab_to_linear_rgb, lab_to_linear_rgb_keep_l

    generator = torch.Generator().manual_seed(2)
    lab = torch.cat([torch.rand(3, 1, 30, 40, generator=generator) * 100,
                     torch.randn(3, 2, 30, 40, generator=generator) * 50], dim=1)  # about half out of gamut
    batch = lab_to_linear_rgb_keep_l(lab)
    alone = torch.cat([lab_to_linear_rgb_keep_l(photo) for photo in lab.split(1)])
    plain = torch.stack([lab_to_linear_rgb_keep_l(photo) for photo in lab])  # (3, H, W), no batch dimension
    assert batch.shape == lab.shape and batch.min() >= 0 and batch.max() <= 1
    assert torch.allclose(batch, alone, atol=1e-6) and torch.allclose(batch, plain, atol=1e-6)
    # each out-of-gamut pixel got its own fit, in place: the first such pixel of the last photo, by hand
    linear = lab_to_linear_rgb(lab[2:])
    row, column = ((linear < -1e-3) | (linear > 1 + 1e-3)).any(dim=1)[0].nonzero()[0]
    fitted = _fit_chroma(lab[2, :, row, column][None])[0].clamp(0, 1)
    assert torch.allclose(batch[2, :, row, column], fitted, atol=1e-6)
    assert not torch.allclose(linear[0, :, row, column].clamp(0, 1), fitted, atol=1e-3)  # not a plain clip


def test_out_of_gamut_colours_keep_the_most_chroma_that_fits():
    from colorem.color import GAMUT_TOLERANCE, _largest_fitting_scale, _scale_chroma, lab_to_linear_rgb

    generator = torch.Generator().manual_seed(0)
    pixels = torch.stack([torch.rand(20_000, generator=generator) * 100,
                          (torch.rand(20_000, generator=generator) * 2 - 1) * 128,
                          (torch.rand(20_000, generator=generator) * 2 - 1) * 128], dim=1)
    rgb = lab_to_linear_rgb(pixels.T[None, :, :, None])[0, :, :, 0]
    pixels = pixels[((rgb < -GAMUT_TOLERANCE) | (rgb > 1 + GAMUT_TOLERANCE)).any(dim=0)]  # those that do not fit
    scales = _largest_fitting_scale(pixels, steps=9)[:, 0]
    # a dense scan of every 1/512 of the chroma: the kept scale is the last that fits before the first that does not
    grid = torch.arange(513, dtype=torch.float32) / 512
    scanned = lab_to_linear_rgb(_scale_chroma(pixels, grid.expand(len(pixels), -1)))
    fits = ((scanned >= 0) & (scanned <= 1)).all(dim=0)  # (N, 513)
    expected = ((~fits).float().argmax(dim=1) - 1) / 512
    assert len(pixels) > 5_000 and (expected >= 0).all()
    assert (scales - expected).abs().max() <= 1 / 512 and (scales == expected).float().mean() > 0.999


def test_the_gamut_table_keeps_the_chroma_the_search_finds():
    from colorem.color import (GAMUT_TOLERANCE, _fit_chroma, _largest_fitting_scale, _scale_chroma, lab_to_linear_rgb,
                               linear_to_srgb)

    generator = torch.Generator().manual_seed(1)
    pixels = torch.stack([torch.rand(100_000, generator=generator) * 100,
                          (torch.rand(100_000, generator=generator) * 2 - 1) * 128,
                          (torch.rand(100_000, generator=generator) * 2 - 1) * 128], dim=1)
    rgb = lab_to_linear_rgb(pixels.T[None, :, :, None])[0, :, :, 0]
    pixels = pixels[((rgb < -GAMUT_TOLERANCE) | (rgb > 1 + GAMUT_TOLERANCE)).any(dim=0)]
    searched = lab_to_linear_rgb(_scale_chroma(pixels, _largest_fitting_scale(pixels, steps=9)))[:, :, 0].T
    from_table = _fit_chroma(pixels)  # (N, 3) linear RGB
    assert from_table.shape == searched.shape and len(pixels) > 40_000
    assert from_table.min() >= -GAMUT_TOLERANCE and from_table.max() <= 1 + GAMUT_TOLERANCE
    lab_table, lab_searched = (rgb_to_lab(linear_to_srgb(linear.clamp(0, 1)).T[None, :, :, None])[0, :, :, 0]
                               for linear in (from_table, searched))
    assert (lab_table[0] - pixels[:, 0]).abs().max() < 0.02  # the lightness asked for
    chroma = [torch.hypot(*lab[1:]) for lab in (lab_table, lab_searched)]
    # it fits (to GAMUT_TOLERANCE, as colorem counts colours in gamut, above) and keeps no less chroma than the
    # search's 1/512 steps find, to within one step (at yellow's sharp cusp the table is not trusted: searched)
    assert (chroma[0] >= chroma[1] - torch.hypot(*pixels.T[1:]) / 512 - 0.05).all()
    assert (chroma[0] - chroma[1]).abs().median() < 0.1


def test_uint8_writer_matches_the_float_conversion():
    from colorem.color import lab_to_rgb_keep_l, lab_to_srgb8

    generator = torch.Generator().manual_seed(0)
    lab = torch.cat([torch.rand(2, 1, 40, 50, generator=generator) * 100,
                     torch.randn(2, 2, 40, 50, generator=generator) * 40], dim=1)  # many out of gamut
    as_uint8 = lab_to_srgb8(lab).int()  # (B, H, W, 3)
    reference = (lab_to_rgb_keep_l(lab).movedim(1, -1) * 255 + 0.5).floor().int()
    assert as_uint8.shape == (2, 40, 50, 3)
    assert (as_uint8 - reference).abs().max() <= 1


def test_gray_input_gives_the_same_lightness_as_rgb():
    gray = torch.rand(1, 1, 8, 8)
    assert torch.allclose(rgb_to_l(gray), rgb_to_l(gray.expand(-1, 3, -1, -1)), atol=1e-4)


def test_gray_lookup_table_gives_the_exact_lightness_to_a_thousandth():
    gray = torch.cat([torch.arange(256) / 255, torch.linspace(0, 1, 100_001)])[None, None, None]
    assert (gray_to_l(gray) - rgb_to_l(gray)).abs().max() < 1e-3
    assert gray_to_l(torch.tensor([[[[-0.5, 1.5]]]])).tolist() == [[[[0.0, 100.0]]]]  # clamped like rgb_to_l
