"""Colour hints: the hint input of the network, hints in photo pixels mapped to the render grid,
hints simulated from true colours for training and evaluation."""

import pytest
import torch

from colorem.color import AB_MAX, rgb_to_lab
import colorem.hint_input
from colorem.hint_input import follow_hints, hint_map
from colorem.hints import MAX_HINTS, Hint, HintError, parse_color
from colorem.models.hint_spread import SPREAD_CHANNELS, SPREAD_SIGMAS, spread_hints
from colorem.train.hint_simulation import HintSimulation, simulate_hints
from colorem.models import create_model


def test_a_hint_model_made_from_an_automatic_one_starts_identical():
    torch.manual_seed(0)
    automatic = create_model("color-em-tiny", head="classification").eval()
    hinted = create_model("color-em-tiny", head="classification", hints=True).eval()
    missing = hinted.load_state_dict(automatic.state_dict(), strict=False).missing_keys
    assert missing == [f"hint_{place}.{kind}" for place in ("input", "fusion", "decoder")  # the only new weights,
                       for kind in ("weight", "bias")]  # zero-initialized
    l = torch.rand(2, 1, 37, 45) * 100
    hints = simulate_hints(torch.randn(2, 2, 37, 45) * 30, torch.Generator().manual_seed(0), counts=[5, 0])
    with torch.no_grad():
        expected = automatic(l)
        assert torch.equal(hinted(l), expected)
        assert torch.equal(hinted(l, hints=hints), expected)
        hinted.hint_decoder.weight.normal_()  # once trained, hints change the colours where they are given
        changed = hinted(l, hints=hints)
        assert torch.equal(hinted(l), expected)
    assert not torch.equal(changed[0], expected[0]) and torch.equal(changed[1], expected[1])


def test_a_model_without_a_hint_input_refuses_hints():
    model = create_model("color-em-tiny")
    with pytest.raises(ValueError, match="takes no colour hints"):
        model(torch.rand(1, 1, 32, 32) * 100, hints=torch.zeros(1, 3, 32, 32))


def test_gradients_reach_every_hint_input():
    torch.manual_seed(0)
    model = create_model("color-em-tiny", head="classification", hints=True)
    hints = simulate_hints(torch.randn(2, 2, 32, 32) * 30, torch.Generator().manual_seed(1), counts=[20, 20])
    model(torch.rand(2, 1, 32, 32) * 100, hints=hints, raw=True).square().mean().backward()
    for conv in (model.hint_input, model.hint_fusion, model.hint_decoder):
        assert conv.weight.grad.abs().sum() > 0


def test_a_spread_hint_keeps_its_colour_and_fades_with_distance():
    hints = torch.zeros(1, 3, 64, 64)
    hints[0, :, 20, 10] = torch.tensor([0.5, -0.25, 1.0])  # one pixel: a = 0.5 AB_MAX, b = -0.25 AB_MAX
    spread = spread_hints(hints, (32, 32))  # (1, 9, 32, 32): per width a * confidence, b * confidence, confidence
    assert spread.shape == (1, SPREAD_CHANNELS, 32, 32)
    for width in range(len(SPREAD_SIGMAS)):
        a, b, confidence = spread[0, 3 * width:3 * width + 3]
        assert confidence[10, 5] == pytest.approx(1.0, abs=0.02)  # full confidence on the hint
        assert confidence[10, 5] > confidence[10, 9] > confidence[10, 20] >= 0  # falling with distance
        near = confidence > 1e-3
        assert torch.allclose(a[near] / confidence[near], torch.tensor(0.5), atol=1e-4)  # the hint's own colour
        assert torch.allclose(b[near] / confidence[near], torch.tensor(-0.25), atol=1e-4)
    wide = spread[0, -1]
    assert wide[10, 20] > spread[0, 2, 10, 20]  # the widest spread reaches farther than the narrowest


def test_two_spread_hints_mix_by_distance():
    hints = torch.zeros(1, 3, 32, 32)
    hints[0, :, 16, 4] = torch.tensor([0.5, 0.0, 1.0])
    hints[0, :, 16, 28] = torch.tensor([-0.5, 0.0, 1.0])
    a, _, confidence = spread_hints(hints, (32, 32))[0, 3:6]  # the middle width
    mean = a / confidence.clamp_min(1e-6)
    assert mean[16, 6] > 0.4 and mean[16, 26] < -0.4 and abs(float(mean[16, 16])) < 1e-4


def test_the_colours_follow_a_hint_where_it_was_given_and_fade_away_from_it():
    ab = torch.zeros(1, 2, 64, 64)  # the network said gray everywhere
    l = torch.full((1, 1, 64, 64), 50.0)
    l[:, :, 40:] = 90.0  # the lower rows are much lighter
    hints = torch.zeros(1, 3, 64, 64)
    hints[0, :, 10, 10] = torch.tensor([0.3, -0.2, 1.0])
    followed = follow_hints(ab, l, hints)[0]
    hint_ab = torch.tensor([0.3 * AB_MAX, -0.2 * AB_MAX])
    assert torch.allclose(followed[:, 10, 10], hint_ab)  # the hint's own colour where it was given
    near, far = followed[:, 10, 20].norm(), followed[:, 10, 60].norm()
    assert hint_ab.norm() > near > far > 0  # fading with distance, same hue
    assert torch.allclose(followed[:, 10, 20] / near, hint_ab / hint_ab.norm(), atol=1e-5)
    assert followed[:, 45, 10].norm() < 0.01 * followed[:, 35, 10].norm()  # not across a change of lightness
    assert torch.equal(follow_hints(ab, l, torch.zeros(1, 3, 64, 64)), ab)  # no hints: as it was


def test_following_hints_adds_only_what_the_network_left_out_and_mixes_hints_by_weight():
    ab = torch.zeros(1, 2, 32, 48)
    ab[:, 0] = 20.0  # the network's a: 20 everywhere
    l = torch.full((1, 1, 32, 48), 50.0)
    hints = torch.zeros(1, 3, 32, 48)
    hints[0, :, 16, 4] = torch.tensor([20.0 / AB_MAX, 0.0, 1.0])  # agrees with the network: nothing to add
    hints[0, :, 16, 43] = torch.tensor([-20.0 / AB_MAX, 0.0, 1.0])
    followed = follow_hints(ab, l, hints)[0]
    assert followed[0, 16, 4] == pytest.approx(20.0, abs=0.5) and followed[0, 16, 43] == pytest.approx(-20.0, abs=1e-3)
    assert 20.0 > followed[0, 16, 24] > -20.0  # between them, a mix
    assert torch.allclose(followed[1], torch.zeros(32, 48))


def test_following_many_hints_in_parts_gives_the_same_colours(monkeypatch):
    torch.manual_seed(0)
    ab, l = torch.randn(2, 2, 24, 24) * 20, torch.rand(2, 1, 24, 24) * 100
    hints = simulate_hints(torch.randn(2, 2, 24, 24) * 30, torch.Generator().manual_seed(0), counts=[12, 3])
    whole = follow_hints(ab, l, hints)
    monkeypatch.setattr(colorem.hint_input, "_FOLLOW_CHUNK", 24 * 24 * 5)  # five points at a time
    assert torch.allclose(follow_hints(ab, l, hints), whole, atol=1e-4)


@pytest.mark.parametrize("color, rgb", [("#3a6ea5", (58, 110, 165)), ("3A6EA5", (58, 110, 165)),
                                        ("#36a", (51, 102, 170)), ((1, 2, 3), (1, 2, 3)),
                                        ("SteelBlue", (70, 130, 180)), ("red", (255, 0, 0))])
def test_colours_parse(color, rgb):
    assert parse_color(color) == rgb


@pytest.mark.parametrize("color", ["#12345", "bleu", "", "#gg0000", (256, 0, 0), (1, 2), (1.5, 2, 3), None,
                                   "#ff00", "#ff0000ff", "rgb(1,2,3)", "hsl(0,50%,50%)", "hsv(0,50%,50%)"])
def test_bad_colours_are_clear_errors(color):
    with pytest.raises(HintError, match="colour"):
        parse_color(color)


def test_hints_map_from_photo_pixels_to_the_render_grid():
    # A 1000x500 photo at render size 100: x scales by 1/10, y by 1/5.
    channels = hint_map([Hint(995, 2, "#b22222"), Hint(0, 499.9, (0, 0, 255))], (1000, 500), 100)
    assert channels.shape == (1, 3, 100, 100)
    assert channels[0, 2].sum() == 2 and channels[0, 2, 0, 99] == 1 and channels[0, 2, 99, 0] == 1
    red = rgb_to_lab(torch.tensor([178, 34, 34]).float().div(255)[None, :, None, None])[0, 1:, 0, 0]
    assert torch.allclose(channels[0, :2, 0, 99] * AB_MAX, red, atol=1e-4)  # only ab; L comes from the photo


@pytest.mark.parametrize("hint", [Hint(1000, 10, "#fff"), Hint(-1, 10, "#fff"), Hint(10, 500, "#fff"),
                                  Hint(float("nan"), 10, "#fff"), Hint("10", 10, "#fff")])
def test_hints_outside_the_photo_are_clear_errors(hint):
    with pytest.raises(HintError, match="hint"):
        hint_map([hint], (1000, 500), 64)


def test_too_many_hints_are_a_clear_error():
    with pytest.raises(HintError, match=f"at most {MAX_HINTS}"):
        hint_map([Hint(1, 1, "#fff")] * (MAX_HINTS + 1), (10, 10), 16)


def test_simulated_hints_reveal_the_true_patch_colour():
    ab = torch.zeros(3, 2, 40, 40)
    ab[:, 0] = 25.0
    ab[:, 1] = -10.0
    hints = simulate_hints(ab, torch.Generator().manual_seed(0), counts=[0, 1, 7], patch_size=3)
    mask = hints[:, 2]
    assert mask[0].sum() == 0 and 1 <= mask[1].sum() <= 9 and mask[2].sum() > mask[1].sum()
    revealed = hints[:, :2].permute(1, 0, 2, 3)[:, mask > 0] * AB_MAX
    assert torch.allclose(revealed, torch.tensor([[25.0], [-10.0]]).expand_as(revealed))
    assert torch.equal(hints[:, :2][(mask == 0)[:, None].expand(-1, 2, -1, -1)], torch.zeros(int((mask == 0).sum()) * 2))


def test_training_hints_leave_many_photos_without_any():
    simulation = HintSimulation()
    hints = simulate_hints(torch.zeros(400, 2, 16, 16), torch.Generator().manual_seed(0), simulation)
    points = hints[:, 2].flatten(1).sum(1)
    share_none = float((points == 0).float().mean())
    assert abs(share_none - simulation.none_share) < 0.08
    assert points.max() <= simulation.max_points * max(simulation.patch_sizes) ** 2
