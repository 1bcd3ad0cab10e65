"""Colorization metrics as pure, batched torch functions: each takes (B, C, H, W) tensors and returns one
value per image, shape (B,), float64. Averaging over images (and intervals) is colorem.evaluate's business.

Conventions: RGB is sRGB in [0, 1]; L and ab are in Lab units as colorem.color computes them. Pixel-wise
work stays in the input dtype (float32 is ample: kornia's float32 Lab reproduces scikit-image's float64
figures on the eval set to < 1e-3); every sum over pixels is accumulated in float64.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from colorem.color import AB_MAX, join_lab, lab_to_rgb

AUC_MAX_THRESHOLD = 150  # Zhang et al. 2016: CDF of the ab L2 error over thresholds 0..150, step 1
AB_DATA_RANGE = 2 * AB_MAX  # a and b span ±128 Lab units: the data range of PSNR on ab
SSIM_WINDOW = 7  # scikit-image's default window


def compose_rgb(l: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
    """L (B, 1, H, W) joined with predicted ab (B, 2, H, W) -> sRGB (B, 3, H, W), clipped to [0, 1]: the
    quick float join training's validation scores. colorem.evaluate scores what the file writer makes
    instead (colorem.stages.finish_rgb8: out-of-gamut colours lose chroma, not lightness; 8 bits)."""
    return lab_to_rgb(join_lab(l, ab))


def _mean_per_image(x: torch.Tensor) -> torch.Tensor:
    return x.flatten(1).mean(dim=1, dtype=torch.float64)


def _psnr(mse: torch.Tensor, data_range: float) -> torch.Tensor:
    return 10.0 * torch.log10(data_range ** 2 / mse)  # +inf for a perfect prediction, as scikit-image


def psnr_rgb(rgb: torch.Tensor, rgb_true: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """PSNR in dB per image: 10·log10(data_range² / MSE), the MSE over all pixels and the 3 channels.

    rgb, rgb_true: (B, 3, H, W) in [0, 1]: the colorized result and the original.
    Image by image this is skimage.metrics.peak_signal_noise_ratio(rgb_true, rgb, data_range=1).
    """
    return _psnr(_mean_per_image((rgb - rgb_true).square()), data_range)


def mse_ab(ab: torch.Tensor, ab_true: torch.Tensor) -> torch.Tensor:
    """Mean squared error on ab per image in squared Lab units, over all pixels and both channels."""
    return _mean_per_image((ab - ab_true).square())


def psnr_ab(ab: torch.Tensor, ab_true: torch.Tensor, data_range: float = AB_DATA_RANGE) -> torch.Tensor:
    """PSNR in dB on ab per image: 10·log10(data_range² / mse_ab), with a data range of 256 Lab units."""
    return _psnr(mse_ab(ab, ab_true), data_range)


def _window_mean(z: torch.Tensor, window: int) -> torch.Tensor:
    """Mean over every window×window square lying wholly inside the image: (N, 1, H−w+1, W−w+1)."""
    return F.avg_pool2d(F.avg_pool2d(z, (1, window), stride=1), (window, 1), stride=1)


def ssim_rgb(rgb: torch.Tensor, rgb_true: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """Mean SSIM per image (Wang et al. 2004), averaged over the 3 RGB channels.

    Exactly scikit-image's structural_similarity(channel_axis=..., data_range=1) defaults: a uniform 7×7
    window, sample (co)variances (× N/(N−1), N = 49), K1 = 0.01, K2 = 0.03, C_i = (K_i·data_range)²,
    SSIM = (2μxμy + C1)(2σxy + C2) / ((μx² + μy² + C1)(σx² + σy² + C2)), averaged over the positions
    where the window fits inside the image (a border of 3 pixels is left out).
    """
    x, y = rgb.flatten(0, 1)[:, None], rgb_true.flatten(0, 1)[:, None]  # (B·3, 1, H, W)
    # Subtract each channel's mean first: the local variances E[x²] − μ² then lose nothing to cancellation
    # in float32, and SSIM is unchanged (only differences enter the variances; the means are restored below).
    shift = x.mean(dim=(2, 3), keepdim=True)
    shift_true = y.mean(dim=(2, 3), keepdim=True)
    x, y = x - shift, y - shift_true
    n = SSIM_WINDOW * SSIM_WINDOW
    sample = n / (n - 1)
    mu_x, mu_y = _window_mean(x, SSIM_WINDOW), _window_mean(y, SSIM_WINDOW)
    var_x = sample * (_window_mean(x * x, SSIM_WINDOW) - mu_x * mu_x)
    var_y = sample * (_window_mean(y * y, SSIM_WINDOW) - mu_y * mu_y)
    cov_xy = sample * (_window_mean(x * y, SSIM_WINDOW) - mu_x * mu_y)
    mu_x, mu_y = mu_x + shift, mu_y + shift_true
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    ssim_map = (2 * mu_x * mu_y + c1) * (2 * cov_xy + c2) / ((mu_x * mu_x + mu_y * mu_y + c1) * (var_x + var_y + c2))
    return _mean_per_image(ssim_map.view(rgb.shape[0], -1))


def colorfulness(rgb: torch.Tensor) -> torch.Tensor:
    """Colourfulness per image (Hasler & Süsstrunk 2003) on RGB scaled to 0..255:

        rg = R − G,   yb = (R + G)/2 − B,
        M = sqrt(σ_rg² + σ_yb²) + 0.3·sqrt(μ_rg² + μ_yb²)

    with μ and σ the mean and the population standard deviation over the image's pixels.
    rgb: (B, 3, H, W) in [0, 1]. ΔCF of a result is colorfulness(result) − colorfulness(original).
    """
    rgb = rgb * 255.0
    red, green, blue = rgb[:, 0].flatten(1), rgb[:, 1].flatten(1), rgb[:, 2].flatten(1)
    rg = red - green
    yb = 0.5 * (red + green) - blue
    spread = torch.sqrt(rg.var(dim=1, unbiased=False).double() + yb.var(dim=1, unbiased=False).double())
    offset = torch.sqrt(_mean_per_image(rg).square() + _mean_per_image(yb).square())
    return spread + 0.3 * offset


def ab_error(ab: torch.Tensor, ab_true: torch.Tensor) -> torch.Tensor:
    """Per-pixel Euclidean distance in the ab plane, (B, 2, H, W) -> (B, H·W), in Lab units."""
    difference = ab - ab_true
    return (difference[:, 0].square() + difference[:, 1].square()).sqrt().flatten(1)


def ab_error_cdf(ab: torch.Tensor, ab_true: torch.Tensor, max_threshold: int = AUC_MAX_THRESHOLD) -> torch.Tensor:
    """Share of pixels whose ab L2 error is ≤ t, for t = 0, 1, ..., max_threshold: (B, max_threshold + 1)."""
    error = ab_error(ab, ab_true)
    batch, pixels = error.shape
    # For integer t, error ≤ t exactly when ceil(error) ≤ t, so the CDF is the running sum of a
    # histogram of ceil(error) (slot T+1 collects everything beyond the last threshold).
    slots = max_threshold + 2
    index = error.ceil().clamp_(max=max_threshold + 1).long()
    index += torch.arange(batch, device=error.device)[:, None] * slots
    counts = torch.bincount(index.flatten(), minlength=batch * slots).view(batch, slots)
    return counts[:, : max_threshold + 1].cumsum(dim=1).double() / pixels


def auc_from_cdf(cdf: torch.Tensor) -> torch.Tensor:
    """Trapezoid area under a CDF sampled at 0, 1, ..., T, divided by T: (B, T + 1) -> (B,) in [0, 1]."""
    return torch.trapezoid(cdf, dx=1.0, dim=1) / (cdf.shape[1] - 1)


def auc_ab(ab: torch.Tensor, ab_true: torch.Tensor, max_threshold: int = AUC_MAX_THRESHOLD) -> torch.Tensor:
    """AuC per image (Zhang et al. 2016): the area under the CDF of the per-pixel ab L2 error over the
    thresholds 0, 1, ..., 150 (trapezoid rule), divided by 150 so that a perfect prediction scores 1."""
    return auc_from_cdf(ab_error_cdf(ab, ab_true, max_threshold))


def share_within(ab: torch.Tensor, ab_true: torch.Tensor, threshold: float) -> torch.Tensor:
    """Share of pixels per image whose ab L2 error is ≤ threshold (Lab units), in [0, 1]."""
    return _mean_per_image(ab_error(ab, ab_true) <= threshold)


NEUTRAL_CHROMA = 8.0  # false colour: pixels this close to gray in the original...
PAINTED_CHROMA = 20.0  # ...painted at least this colourful


def false_colour(ab: torch.Tensor, ab_true: torch.Tensor) -> torch.Tensor:
    """Blotches: the percentage of an image's pixels that are neutral in the original (chroma < 8) but
    painted with chroma ≥ 20, (B, 2, H, W) each -> (B,) in [0, 100]."""
    neutral = ab_true.float().norm(dim=1) < NEUTRAL_CHROMA
    painted = ab.float().norm(dim=1) >= PAINTED_CHROMA
    return 100.0 * _mean_per_image(neutral & painted)


METRICS = ("psnr_rgb", "ssim_rgb", "psnr_ab", "mse_ab", "auc_ab", "within_10", "within_25",
           "colorfulness", "delta_colorfulness", "false_colour")


def score_batch(ab: torch.Tensor, rgb: torch.Tensor, lab_true: torch.Tensor, rgb_true: torch.Tensor,
                colorfulness_true: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """Every metric in METRICS for a batch of results, as {name: (B,) float64}.

    ab: (B, 2, H, W) the predicted ab at full size; rgb: (B, 3, H, W) the result in [0, 1]; lab_true:
    (B, 3, H, W) Lab of the originals; rgb_true: the originals; colorfulness_true: colorfulness(rgb_true)
    when already known (it is the same for every model).
    """
    if colorfulness_true is None:
        colorfulness_true = colorfulness(rgb_true)
    ab_true = lab_true[:, 1:]
    ab = ab.to(lab_true.dtype)
    cdf = ab_error_cdf(ab, ab_true)
    colorfulness_result = colorfulness(rgb)
    return {
        "psnr_rgb": psnr_rgb(rgb, rgb_true),
        "ssim_rgb": ssim_rgb(rgb, rgb_true),
        "psnr_ab": psnr_ab(ab, ab_true),
        "mse_ab": mse_ab(ab, ab_true),
        "auc_ab": auc_from_cdf(cdf),
        "within_10": cdf[:, 10],  # thresholds are 0, 1, 2, ...: column t is the share with error ≤ t
        "within_25": cdf[:, 25],
        "colorfulness": colorfulness_result,
        "delta_colorfulness": colorfulness_result - colorfulness_true,
        "false_colour": false_colour(ab, ab_true),
    }
