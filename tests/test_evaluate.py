"""Evaluation: every metric against an independent computation, the report files, the CLI end to end,
and the published gray-baseline figures on the shared eval set."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
import torch
from PIL import Image
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from colorem.cli import main
from colorem.color import rgb_to_lab
from colorem.colorize import Colorizer, load
from colorem.evaluate import CONTACT_TILE, GRAY, METRICS, bootstrap, evaluate, find_images, markdown_table, write_report
from colorem.metrics import (ab_error_cdf, auc_ab, colorfulness, compose_rgb, false_colour, mse_ab, psnr_ab,
                             psnr_rgb, share_within, ssim_rgb)

from tests.conftest import photo


def random_rgb(batch=3, height=37, width=50, seed=0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(batch, 3, height, width, generator=generator)


def as_numpy(rgb: torch.Tensor, index: int) -> np.ndarray:
    return rgb[index].permute(1, 2, 0).double().numpy()


# --- metrics against independent computations ------------------------------------------------------

def test_psnr_rgb_matches_scikit_image():
    truth = random_rgb()
    result = (truth + 0.05 * random_rgb(seed=1)).clamp(0, 1)
    ours = psnr_rgb(result, truth)
    assert ours.shape == (3,) and ours.dtype == torch.float64
    for i in range(3):
        expected = peak_signal_noise_ratio(as_numpy(truth, i), as_numpy(result, i), data_range=1.0)
        assert ours[i].item() == pytest.approx(expected, abs=1e-5)
    assert math.isinf(psnr_rgb(truth, truth)[0].item())


def test_ssim_rgb_matches_scikit_image():
    truth = random_rgb(height=41, width=29)
    result = (0.8 * truth + 0.2 * random_rgb(height=41, width=29, seed=2)).clamp(0, 1)
    ours = ssim_rgb(result, truth)
    for i in range(3):
        expected = structural_similarity(as_numpy(truth, i), as_numpy(result, i), channel_axis=-1, data_range=1.0)
        assert ours[i].item() == pytest.approx(expected, abs=1e-5)
    assert ssim_rgb(truth, truth) == pytest.approx(torch.ones(3, dtype=torch.float64))


def test_ab_mse_and_psnr_follow_their_definition():
    ab_true = 40 * torch.randn(2, 2, 9, 11, generator=torch.Generator().manual_seed(3))
    ab = ab_true + 5.0  # every a and b off by exactly 5
    assert mse_ab(ab, ab_true) == pytest.approx(torch.full((2,), 25.0, dtype=torch.float64))
    assert psnr_ab(ab, ab_true) == pytest.approx(torch.full((2,), 10 * math.log10(256 ** 2 / 25), dtype=torch.float64))


def test_colorfulness_hand_checked():
    # Two pixels, pure red (255, 0, 0) and pure blue (0, 0, 255):
    #   rg = R − G = (255, 0): mean 127.5, population sd 127.5
    #   yb = (R + G)/2 − B = (127.5, −255): mean −63.75, population sd 191.25
    #   M = sqrt(127.5² + 191.25²) + 0.3·sqrt(127.5² + 63.75²) = 229.8539 + 0.3·142.5493 = 272.6187
    rgb = torch.tensor([[1.0, 0.0], [0.0, 0.0], [0.0, 1.0]]).view(1, 3, 1, 2)
    assert colorfulness(rgb).item() == pytest.approx(272.6187, abs=1e-3)
    gray = torch.full((2, 3, 8, 8), 0.4)
    assert colorfulness(gray) == pytest.approx(torch.zeros(2, dtype=torch.float64), abs=1e-9)
    # A flat colour has no spread: M = 0.3·sqrt(μ_rg² + μ_yb²); (0.2, 0.6, 1.0) -> rg = −102, yb = −153.
    flat = torch.tensor([0.2, 0.6, 1.0]).view(1, 3, 1, 1).expand(1, 3, 5, 5)
    assert colorfulness(flat).item() == pytest.approx(0.3 * math.hypot(102, 153), rel=1e-5)


def test_auc_of_a_perfect_prediction_is_one():
    lab = rgb_to_lab(random_rgb())
    ab_true = lab[:, 1:]
    assert auc_ab(ab_true, ab_true) == pytest.approx(torch.ones(3, dtype=torch.float64))
    assert share_within(ab_true, ab_true, 10) == pytest.approx(torch.ones(3, dtype=torch.float64))


def test_auc_of_gray_on_a_known_image():
    # Left half neutral (error 0 for gray), right half a = 30, b = 40 (error exactly 50 for gray).
    ab_true = torch.zeros(1, 2, 4, 8)
    ab_true[:, 0, :, 4:], ab_true[:, 1, :, 4:] = 30.0, 40.0
    gray = torch.zeros_like(ab_true)
    # CDF: 0.5 for t < 50, 1 from t = 50 on. Trapezoids: 49·0.5 + (0.5 + 1)/2 + 100·1 = 125.25; / 150.
    assert auc_ab(gray, ab_true).item() == pytest.approx(125.25 / 150, abs=1e-12)
    assert share_within(gray, ab_true, 10).item() == pytest.approx(0.5)
    assert share_within(gray, ab_true, 50).item() == pytest.approx(1.0)


def test_error_cdf_matches_brute_force():
    generator = torch.Generator().manual_seed(4)
    ab_true = 60 * torch.randn(2, 2, 16, 16, generator=generator)
    ab = ab_true.clone()
    ab[:, 0, :4] += torch.arange(4.0)[:, None]  # errors exactly on integer thresholds
    ab[:, :, 8:] = 60 * torch.randn(2, 2, 8, 16, generator=generator)
    error = torch.linalg.vector_norm(ab - ab_true, dim=1).flatten(1).double().numpy()
    expected = (error[:, :, None] <= np.arange(151)[None, None, :]).mean(axis=1)
    assert np.allclose(ab_error_cdf(ab, ab_true).numpy(), expected)
    assert np.allclose(auc_ab(ab, ab_true).numpy(), np.trapezoid(expected, dx=1.0, axis=1) / 150)


def test_false_colour_counts_neutral_pixels_painted_colourful():
    truth = torch.zeros(1, 2, 10, 10)
    truth[:, 0, :, 5:] = 40.0  # the right half is colourful in the original: never a blotch
    truth[:, 1, 0, 0] = 7.9  # still neutral (chroma < 8)
    painted = torch.zeros(1, 2, 10, 10)
    painted[:, 1, :5, :] = 20.0  # the top half painted at chroma 20: 25 neutral pixels of 100
    painted[:, 0, 5, :5] = 19.9  # just below 20: not counted
    assert false_colour(painted, truth).item() == pytest.approx(25.0)
    assert false_colour(torch.zeros_like(truth), truth).item() == 0.0


def test_compose_rgb_with_the_true_ab_gives_back_the_photo():
    rgb = random_rgb(batch=2, height=16, width=16)
    lab = rgb_to_lab(rgb)
    assert (compose_rgb(lab[:, :1], lab[:, 1:]) - rgb).abs().max() < 1e-4


def test_bootstrap_is_seeded_and_brackets_the_mean():
    values = np.random.default_rng(0).normal(10, 2, size=200)
    first, second = bootstrap(values, seed=1), bootstrap(values, seed=1)
    assert first == second
    assert first.mean == pytest.approx(values.mean())
    assert first.low < first.mean < first.high
    assert first.high - first.low == pytest.approx(2 * 1.96 * 2 / math.sqrt(200), rel=0.25)


# --- the runner, the report and the CLI -------------------------------------------------------------

@pytest.fixture()
def photo_folder(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    for seed, (width, height) in enumerate([(48, 40), (48, 40), (33, 57), (48, 40), (64, 64)]):
        photo(width, height, seed).save(folder / f"photo-{seed}.png")
    return folder


def test_report_files_exist_parse_and_hold_the_gray_baseline(tiny_weights, photo_folder, tmp_path):
    colorizer = load(tiny_weights, precision="fp32")
    images = find_images(photo_folder)
    evaluation = evaluate({"tiny": colorizer}, images, render_size=32, batch_size=2, contact_images=3)
    assert evaluation.rows == [GRAY, "tiny"]
    assert evaluation.images == [path.name for path in images]
    for row in evaluation.rows:
        for metric in METRICS:
            assert evaluation.scores[row][metric].shape == (5,)
    # The gray row really is a = b = 0: its ab error is the photos' own chroma, its colourfulness ~0 (the 8-bit
    # file rounds a few gray pixels' channels one level apart: 0.08 here) and ΔCF minus the originals'.
    chroma = [float(mse_ab(torch.zeros(1, 2, *lab.shape[-2:]), lab[:, 1:])) for lab in
              (rgb_to_lab(torch.from_numpy(np.asarray(Image.open(path), np.float32) / 255).permute(2, 0, 1)[None])
               for path in images)]
    assert np.allclose(evaluation.scores[GRAY]["mse_ab"], chroma, rtol=1e-5)
    assert np.allclose(evaluation.scores[GRAY]["colorfulness"], 0, atol=0.15)
    assert np.allclose(evaluation.scores[GRAY]["delta_colorfulness"], -evaluation.original_colorfulness, atol=0.15)
    assert np.all(evaluation.scores[GRAY]["false_colour"] == 0)  # gray paints nothing

    paths = write_report(evaluation, tmp_path / "report")
    summary = json.loads(paths["json"].read_text())
    worst = summary["most_false_colour"]["tiny"]  # the worst photos by false colour, worst first
    values = [entry["false_colour"] for entry in worst]
    assert values == sorted(values, reverse=True) and all(value > 0 for value in values)
    assert max(evaluation.scores["tiny"]["false_colour"]) == (values[0] if values else 0)
    assert summary["rows"] == [GRAY, "tiny"] and summary["images"] == 5
    for row in (GRAY, "tiny"):
        for metric in METRICS:
            interval = summary["metrics"][row][metric]
            assert interval["ci95"][0] <= interval["mean"] <= interval["ci95"][1]
    with open(paths["csv"], newline="") as handle:
        records = list(csv.DictReader(handle))
    assert len(records) == 10 and {record["model"] for record in records} == {GRAY, "tiny"}
    assert float(records[0]["psnr_rgb"]) == pytest.approx(evaluation.scores[GRAY]["psnr_rgb"][0], rel=1e-5)
    table = paths["markdown"].read_text()
    assert table.startswith("| model |") and "\n| gray |" in table and "\n| tiny |" in table
    with Image.open(paths["contact_sheet"]) as sheet:
        assert sheet.mode == "RGB" and sheet.width > 3 * 160 and sheet.height > 3 * 160  # 3 columns, 3 rows


class VividAB(torch.nn.Module):
    """Predicts a = 60, b = -70 everywhere: out of the sRGB gamut at most lightnesses, where a plain clip of
    RGB and the writer's gamut mapping (lose chroma, keep L) part ways."""

    def forward(self, l, temperature=None):
        return torch.tensor([60.0, -70.0]).view(1, 2, 1, 1).expand(l.shape[0], 2, *l.shape[-2:]).clone()


def test_evaluate_scores_exactly_what_colorize_writes(photo_folder):
    colorizer = Colorizer.from_model(VividAB(), render_size=32, precision="fp32")
    images = find_images(photo_folder)
    evaluation = evaluate({"vivid": colorizer}, images, render_size=32, batch_size=1, contact_images=0)
    clipped = []
    for name, psnr, ssim in zip(evaluation.images, evaluation.scores["vivid"]["psnr_rgb"], evaluation.scores["vivid"]["ssim_rgb"]):
        truth = torch.from_numpy(np.asarray(Image.open(photo_folder / name), np.float32) / 255).permute(2, 0, 1)[None]
        written = np.asarray(colorizer.colorize(photo_folder / name, render_size=32), np.float32) / 255  # what a user gets
        written = torch.from_numpy(written).permute(2, 0, 1)[None]
        assert psnr == psnr_rgb(written, truth).item()  # the very pixels: any one off would show
        assert ssim == pytest.approx(ssim_rgb(written, truth).item(), abs=1e-6)  # float32 windows, summed in another order
        lab = rgb_to_lab(truth)
        clipped.append(psnr_rgb(compose_rgb(lab[:, :1], torch.tensor([60.0, -70.0]).view(1, 2, 1, 1).expand_as(lab[:, 1:])), truth).item())
    assert np.abs(np.array(clipped) - evaluation.scores["vivid"]["psnr_rgb"]).min() > 0.1  # the clip scored other pixels


def test_gray_baseline_is_there_without_models(photo_folder):
    evaluation = evaluate({}, find_images(photo_folder, limit=2))
    assert evaluation.rows == [GRAY]
    assert markdown_table(evaluation).count("\n| gray |") == 1


def test_cli_end_to_end(tiny_weights, photo_folder, tmp_path, capsys):
    (photo_folder / "broken.jpg").write_bytes(b"not a jpeg")
    out = tmp_path / "out"
    code = main(["evaluate", "--model", str(tiny_weights), "--model", str(tiny_weights), "--images", str(photo_folder),
                 "--out", str(out), "--render-size", "32", "--batch-size", "4", "--precision", "fp32"])
    captured = capsys.readouterr()
    assert code == 1  # the unreadable photo is reported and skipped; the rest are scored
    assert "| gray |" in captured.out and "| tiny |" in captured.out and "| tiny-2 |" in captured.out
    assert "broken.jpg" in captured.err
    summary = json.loads((out / "results.json").read_text())
    assert summary["rows"] == [GRAY, "tiny", "tiny-2"] and summary["images"] == 5
    # The same weights twice give the same scores.
    assert summary["metrics"]["tiny"] == summary["metrics"]["tiny-2"]
    assert {path.name for path in out.iterdir()} == {"results.md", "results.json", "per_image.csv", "contact_sheet.png"}

    (photo_folder / "broken.jpg").unlink()
    heights: list[int] = []
    assert main(["evaluate", "--model", str(tiny_weights), "--images", str(photo_folder), "--out", str(out),
                 "--limit", "2"]) == 0
    assert json.loads((out / "results.json").read_text())["images"] == 2
    # --contact-images sets the sheet's rows: a title strip plus one tile per photo
    for rows in (1, 3):
        assert main(["evaluate", "--model", str(tiny_weights), "--images", str(photo_folder), "--out", str(out),
                     "--contact-images", str(rows)]) == 0
        heights.append(Image.open(out / "contact_sheet.png").height)
    assert heights[1] - heights[0] == 2 * (CONTACT_TILE + 4)  # tiles and their gaps
    assert main(["evaluate", "--model", str(tmp_path / "missing.safetensors"), "--images", str(photo_folder),
                 "--out", str(out)]) == 2


def test_photos_that_cannot_be_scored_are_skipped_and_named_never_poison_the_report(tiny_weights, photo_folder,
                                                                                      tmp_path, capsys):
    photo(6, 40).save(photo_folder / "sliver.png")  # under SSIM's 7x7 window: once a RuntimeError, no report
    photo(48, 40).convert("L").save(photo_folder / "black-and-white.png")  # once made gray's mean PSNR infinite
    photo(48, 40).convert("L").convert("RGB").save(photo_folder / "gray-as-rgb.png")
    out = tmp_path / "out"
    code = main(["evaluate", "--model", str(tiny_weights), "--images", str(photo_folder), "--out", str(out)])
    captured = capsys.readouterr()
    assert code == 1
    assert "sliver.png: 6x40 is smaller than the 7x7" in captured.err
    assert captured.err.count("there is no colour to score") == 2
    summary = json.loads((out / "results.json").read_text())
    assert summary["images"] == 5 and math.isfinite(summary["metrics"][GRAY]["psnr_rgb"]["mean"])


def test_a_bad_report_folder_is_one_line_and_exit_2_before_scoring(tiny_weights, photo_folder, tmp_path, capsys):
    (tmp_path / "afile").write_text("a file")
    assert main(["evaluate", "--model", str(tiny_weights), "--images", str(photo_folder),
                 "--out", str(tmp_path / "afile")]) == 2
    captured = capsys.readouterr()
    assert "is a file; give a folder" in captured.err and captured.err.count("\n") == 1 and not captured.out
    assert main(["evaluate", "--model", str(tiny_weights), "--images", str(photo_folder), "--out", str(photo_folder)]) == 2
    assert "is the --images folder" in capsys.readouterr().err  # its contact sheet would be scored next time
    (tmp_path / "empty").mkdir()
    assert main(["evaluate", "--images", str(tmp_path / "empty"), "--out", str(tmp_path / "r")]) == 2
    assert capsys.readouterr().err == f"colorem: error: no images in {tmp_path / 'empty'}\n"


def test_cli_defaults_to_the_shipped_model_as_colorize_does(photo_folder, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["evaluate", "--images", str(photo_folder), "--out", str(out), "--limit", "2", "--contact-images", "0"]) == 0
    assert json.loads((out / "results.json").read_text())["rows"] == [GRAY, "default"]
    with pytest.raises(SystemExit):
        main(["evaluate", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "(default: the shipped default model)" in help_text and "(default: 256," in help_text


# --- the published sanity figures ----------------------------------------------------------------

@pytest.mark.slow
def test_gray_baseline_figures_on_the_shared_eval_set(shared_data):
    images = find_images(shared_data / "eval")
    assert len(images) == 348
    evaluation = evaluate({}, images, batch_size=58)
    assert evaluation.summary[GRAY]["psnr_rgb"].mean == pytest.approx(22.16, abs=0.05)
    assert evaluation.summary[GRAY]["auc_ab"].mean == pytest.approx(0.885, abs=0.002)
    assert evaluation.original_summary.mean == pytest.approx(42.1, abs=0.2)


def test_when_no_photo_can_be_scored_each_is_listed_with_its_reason(tiny_weights, tmp_path, capsys):
    """Issue 33 item 15: "no photo could be scored (3 skipped)" named neither the photos nor why."""
    folder = tmp_path / "gray"
    folder.mkdir()
    photo(6, 40).save(folder / "sliver.png")
    photo(48, 40).convert("L").save(folder / "black-and-white.png")
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    code = main(["evaluate", "--model", str(tiny_weights), "--images", str(folder), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and "colorem: error: no photo could be scored (3 skipped)" in err
    assert "skipped" in err and "sliver.png: 6x40 is smaller than the 7x7" in err
    assert "black-and-white.png: a black-and-white photo: there is no colour to score" in err and "broken.jpg: the file" in err
