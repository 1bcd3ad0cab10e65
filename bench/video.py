"""Video benchmark: flicker, fidelity and speed of colorize_video on real colour footage turned gray.

    python bench/video.py [--video ../shared/data/video/vtest.avi] [--frames 120] [--repeats 5] [--strip docs/video-strip.jpg]
    python bench/video.py --sweep      # the temporal filter's settings, scored in memory (no encoding)
    python bench/video.py --clips [--strip docs/video-strip-objects.jpg]   # each stabiliser on vtest and
                                       # tests/footage.py's clips (made from shared photos): flicker and PSNR

The first N frames are turned gray (their Lab L, as an 8-bit gray H.264 file at CRF 12), colorized per
frame and stabilized by `colorizer.colorize_video`, decoded again and compared with the original frames:
flicker = mean over consecutive frame pairs of the mean |Δa| + |Δb| over pixels whose L changed by less
than 2; PSNR of RGB (8-bit, data range 255) averaged over frames. Speed is end to end (decode, colorize,
stabilize, encode) in frames/s, side by side with the same frames colorized as separate PNG files by the
folder runner (`colorem colorize DIR`), all in this one run; medians of --repeats.

--clips adds tests/footage.py's clips (made from shared photos) and scores each of STABILISERS in memory,
then through the output encoder. The levers measured and not kept (optical flow on L, one embedding per
shot, confidence-weighted blending, memory without its L gate), with their numbers: docs/video-measurements.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import colorem  # noqa: E402
from colorem.color import rgb_to_lab  # noqa: E402
from colorem.stages import finish_rgb8, gray8_to_l, render_l, upsample_ab  # noqa: E402
from colorem.temporal import StabilizeOptions, TemporalFilter, flicker  # noqa: E402
from tests.footage import Clip, gray_of, shared_photos, standard_clips  # noqa: E402

DEFAULT_VIDEO = REPO.parent / "shared" / "data" / "video" / "vtest.avi"
EVAL_SCENES = REPO.parent / "shared" / "data" / "eval-scenes"
# the stabilisers --clips compares with per-frame colorization (None)
STABILISERS = {
    "per frame": None,
    "L gate alone (before)": StabilizeOptions(memory=0.0, l_noise=0.0),
    "+ colour memory (default)": StabilizeOptions(),
}


def read_frames(path: Path, count: int | None = None, gray: bool = False) -> np.ndarray:
    """The first `count` frames of a video as (N, H, W, 3) RGB or (N, H, W) gray uint8."""
    import av

    frames = []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            frames.append(frame.to_ndarray(format="gray" if gray else "rgb24"))
            if count and len(frames) == count:
                break
    return np.stack(frames)


def write_gray_video(grays: np.ndarray, path: Path, fps: int, crf: int = 12, preset: str = "medium") -> None:
    """Gray (N, H, W) or RGB (N, H, W, 3) uint8 frames into an H.264 file (4:2:0)."""
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.height, stream.width = grays.shape[1:3]
        stream.pix_fmt, stream.options = "yuv420p", {"crf": str(crf), "preset": preset}
        for gray in grays:
            frame = av.VideoFrame.from_ndarray(gray, format="gray" if gray.ndim == 2 else "rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)


def lab_frames(rgb: np.ndarray) -> list[torch.Tensor]:
    return [rgb_to_lab(torch.from_numpy(frame).permute(2, 0, 1)[None].float().div(255.0)) for frame in rgb]


def video_flicker(labs: list[torch.Tensor]) -> float:
    return float(np.mean([flicker(before, after) for before, after in zip(labs, labs[1:])]))


def psnr(rgb: np.ndarray, originals: np.ndarray) -> float:
    errors = [np.mean((a.astype(np.float32) - b.astype(np.float32)) ** 2) for a, b in zip(rgb, originals)]
    return float(np.mean([10 * np.log10(255.0 ** 2 / max(error, 1e-10)) for error in errors]))


def time_video(colorizer, source: Path, target: Path, stabilize: bool) -> float:
    start = time.perf_counter()
    result = colorizer.colorize_video(source, target, stabilize=stabilize)
    return result.frames / (time.perf_counter() - start)


BASELINE_CHILD = """
import sys, time, torch, colorem
colorizer = colorem.load(sys.argv[3] or None)
colorizer.predict_ab(torch.zeros(8, 1, colorizer.render_size, colorizer.render_size))  # warm-up, as in the parent
start = time.perf_counter()
result = colorizer.colorize_video(sys.argv[1], sys.argv[2])
print(result.frames / (time.perf_counter() - start))
"""


def time_baseline(baseline: Path, model: str | None, source: Path, target: Path) -> float:
    """Frames/s of another version's colorize_video (a folder holding its `colorem/`, e.g. from `git archive`),
    stabilized, in a fresh process at the card's render size."""
    env = {**os.environ, "PYTHONPATH": str(baseline)}
    result = subprocess.run([sys.executable, "-c", BASELINE_CHILD, str(source), str(target), model or ""],
                            capture_output=True, text=True, check=True, cwd=baseline, env=env)
    return float(result.stdout.strip().splitlines()[-1])


def time_images(colorizer, folder: Path, out: Path, count: int) -> float:
    from colorem.folder import FolderOptions, colorize_files

    items = [(path, Path(path.name)) for path in sorted(folder.glob("*.png"))]
    start = time.perf_counter()
    results = list(colorize_files(colorizer, items, FolderOptions(output=out, overwrite=True)))
    assert all(result.status == "done" for result in results), results
    return count / (time.perf_counter() - start)


def stage_times(colorizer, source: Path, batch: int = 8) -> dict[str, float]:
    """Where the time goes: ms per frame of each stage of colorize_video run alone on one torch thread, one
    after the other, on the frames of `source`: the CPU work each stage costs (the pipeline overlaps decoding
    and finishing + encoding with the network; on a busy core, two torch threads time mostly their waiting)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _stage_times(colorizer, source, batch)
    finally:
        torch.set_num_threads(threads)


def _stage_times(colorizer, source: Path, batch: int) -> dict[str, float]:
    import av

    from colorem.video import VideoOptions, _add_video_stream

    def timed(name, work):
        start = time.perf_counter()
        result = work()
        times[name] = (time.perf_counter() - start) * 1000 / len(grays)
        return result

    def decode():
        with av.open(str(source)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            return [frame.reformat(frame.width, frame.height, "gray").to_ndarray() for frame in container.decode(stream)]

    def encode(rgb):
        with tempfile.TemporaryDirectory() as folder, av.open(str(Path(folder) / "out.mp4"), "w") as container:
            stream = _add_video_stream(container, Path("out.mp4"), rgb.shape[2], rgb.shape[1], 10, Fraction(1, 10),
                                       VideoOptions())
            for index, pixels in enumerate(rgb):
                frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
                frame.pts, frame.time_base = index, Fraction(1, 10)
                container.mux(stream.encode(frame))
            container.mux(stream.encode(None))

    def to_l():  # a batch at a time, as colorize_video does
        l_full = [gray8_to_l(torch.from_numpy(np.stack(grays[start:start + batch])))[:, None]  # (B, 1, H, W)
                  for start in range(0, len(grays), batch)]
        return torch.cat(l_full), torch.cat([render_l(l, colorizer.render_size) for l in l_full])

    times: dict[str, float] = {}
    grays = decode()  # warm-up
    grays = timed("decode (PyAV, to gray)", decode)
    l_full, l_small = timed("L and render_l", to_l)
    colorizer.predict_ab(l_small[:batch])  # warm-up
    ab_small = timed(f"network (predict_ab, batches of {batch})",
                     lambda: torch.cat([colorizer.predict_ab(chunk) for chunk in l_small.split(batch)]))
    ab_small = timed("temporal filter", lambda: TemporalFilter().run(l_small, ab_small))
    rgb = timed("finish (upsample ab, Lab -> sRGB)", lambda: torch.cat(
        [finish_rgb8(l, ab) for l, ab in zip(l_full.split(batch), ab_small.split(batch))]).numpy())
    timed("encode (x264 CRF 18 veryfast)", lambda: encode(rgb))
    return times


def write_strip(path: Path, grays: np.ndarray, colorized: np.ndarray, originals: np.ndarray, columns: int = 4) -> None:
    """A before/after image for the README: rows gray input | colorem (stabilized) | original, at half size."""
    from PIL import Image, ImageDraw

    picks = np.linspace(0, len(grays) - 1, columns).round().astype(int)
    height, width = grays.shape[1] // 2, grays.shape[2] // 2
    label_w = 92
    sheet = Image.new("RGB", (label_w + columns * width, 3 * height), "white")
    draw = ImageDraw.Draw(sheet)
    for row, (name, frames) in enumerate([("gray in", grays), ("colorem", colorized), ("original", originals)]):
        draw.text((8, row * height + height // 2 - 6), name, fill="black")
        for column, index in enumerate(picks):
            frame = Image.fromarray(frames[index]).convert("RGB").resize((width, height), Image.Resampling.LANCZOS)
            sheet.paste(frame, (label_w + column * width, row * height))
    sheet.save(path, quality=85)


def machine() -> str:
    """The CPU as the README quotes it: model name, cores, torch's capability and whether it has AVX-512-BF16."""
    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    name = next((line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if line.startswith("model name")), "CPU")
    bf16 = " with AVX-512-BF16" if "avx512_bf16" in cpuinfo else ""
    return f"{os.cpu_count()}-core {name}{bf16} ({torch.backends.cpu.get_cpu_capability()})"


def load(args) -> colorem.Colorizer:
    """The model to measure, at --render-size when given (the card's otherwise)."""
    colorizer = colorem.load(args.model)
    if args.render_size:
        colorizer.card = dataclasses.replace(colorizer.card, render_size=args.render_size)
    return colorizer


def table(args) -> None:
    from PIL import Image

    colorizer = load(args)
    load_before = os.getloadavg()[0]
    originals = read_frames(args.video, args.frames)
    grays = np.stack([gray_of(frame) for frame in originals])
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        source = folder / "gray.mp4"
        write_gray_video(grays, source, fps=args.fps)
        (folder / "frames").mkdir()
        for index, gray in enumerate(grays):
            Image.fromarray(gray).save(folder / "frames" / f"{index:04d}.png", compress_level=1)
        speeds = {"per frame": [], "stabilized": [], "images": [], "baseline": []}
        colorizer.predict_ab(render_l(gray8_to_l(torch.from_numpy(grays[:8]))[:, None], colorizer.render_size))  # warm-up
        for _ in range(args.repeats):  # interleaved, so that load on the machine hits every row alike
            speeds["per frame"].append(time_video(colorizer, source, folder / "per-frame.mp4", stabilize=False))
            speeds["stabilized"].append(time_video(colorizer, source, folder / "stabilized.mp4", stabilize=True))
            speeds["images"].append(time_images(colorizer, folder / "frames", folder / "out", len(grays)))
            if args.baseline:
                speeds["baseline"].append(time_baseline(args.baseline, args.model, source, folder / "baseline.mp4"))
        rows = [("original colour frames", originals, None)]
        for name, file in [("per-frame colorization", "per-frame.mp4"), ("stabilized (default)", "stabilized.mp4")]:
            rows.append((name, read_frames(folder / file), file))
        stages = stage_times(colorizer, source)
    if args.strip:
        write_strip(args.strip, grays, rows[2][1], originals)
    print(f"{args.video.name}, first {len(originals)} frames {originals.shape[2]}x{originals.shape[1]}; "
          f"model {colorizer.card.name}, render {colorizer.render_size}, {colorizer.precision}, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads; {machine()}; load average "
          f"{load_before:.2f} at the start, {os.getloadavg()[0]:.2f} at the end (other work on the machine slows the rates)")
    print("\n| video | flicker | × original | PSNR vs original (dB) |\n|---|---|---|---|")
    base = None
    for name, frames, file in rows:
        value = video_flicker(lab_frames(frames))
        base = base or value
        quality = "—" if file is None else f"{psnr(frames, originals):.2f}"
        print(f"| {name} | {value:.3f} | {value / base:.2f}× | {quality} |")
    images = statistics.median(speeds["images"])
    print(f"\n| stage, run alone on the same frames, one torch thread | ms/frame | frames/s |\n|---|---|---|")
    for name, value in stages.items():
        print(f"| {name} | {value:.1f} | {1000 / value:.1f} |")
    print(f"| all stages one after the other | {sum(stages.values()):.1f} | {1000 / sum(stages.values()):.1f} |")
    print(f"\n| end to end ({args.repeats} runs) | frames/s (median) | runs | vs separate images |\n|---|---|---|---|")
    for name, key in [("video, per frame", "per frame"), ("video, stabilized", "stabilized"),
                      ("same frames as separate PNG files (folder runner)", "images"),
                      (f"video, stabilized, by {args.baseline} (--baseline)", "baseline")]:
        values = speeds[key]
        if not values:
            continue
        print(f"| {name} | {statistics.median(values):.2f} | {', '.join(f'{v:.2f}' for v in values)} | "
              f"{statistics.median(values) / images:.2f}× |")


def sweep(args) -> None:
    """Filter settings scored on the decoded gray frames in memory: the model runs once, each setting
    re-filters its predictions. Flicker from Lab of (full-res L, upsampled ab) without gamut mapping
    (fast; the table above measures the real output); PSNR of the finished RGB on every 4th frame."""
    from PIL import Image

    colorizer = load(args)
    originals = read_frames(args.video, args.frames)
    if args.pan:  # a camera pan: a window 5/6 of the frame wide sliding 1 px per frame, scaled back up
        crop_w, crop_h = originals.shape[2] * 5 // 6, originals.shape[1] * 5 // 6
        originals = np.stack([np.asarray(Image.fromarray(frame[:crop_h, i:i + crop_w]).resize(
            (originals.shape[2], originals.shape[1]), Image.Resampling.BICUBIC)) for i, frame in enumerate(originals)])
    grays = np.stack([gray_of(frame) for frame in originals])
    l_full = gray8_to_l(torch.from_numpy(grays))[:, None]  # (N, 1, H, W), as colorize_video makes it
    l_small = render_l(l_full, colorizer.render_size)
    ab_small = torch.cat([colorizer.predict_ab(chunk) for chunk in l_small.split(8)])
    height, width = l_full.shape[-2:]

    def full(ab: torch.Tensor, i: int) -> torch.Tensor:
        return upsample_ab(ab[i:i + 1], (height, width))

    def score(ab: torch.Tensor) -> tuple[float, float, float]:
        labs = [torch.cat([l_full[i:i + 1], full(ab, i)], dim=1) for i in range(len(ab))]
        picked = list(range(0, len(ab), 4))
        rgb = finish_rgb8(l_full[picked], ab[picked]).numpy()
        # smear: how far the filtered ab is from this frame's own prediction where L moved (|ΔL| >= 2)
        lags = []
        for i in range(1, len(ab)):
            moving = (l_full[i] - l_full[i - 1]).abs() >= 2.0  # (1, H, W)
            lags.append((full(ab, i) - full(ab_small, i)).abs().sum(dim=1)[moving].mean().item())
        return video_flicker(labs), psnr(rgb, originals[picked]), float(np.mean(lags))

    print("| setting | flicker (approx.) | PSNR every 4th frame | |Δab| from per-frame where L moved |\n|---|---|---|---|")
    print("| original | %.3f | | |" % video_flicker(lab_frames(originals)))
    flicker_0, psnr_0, _ = score(ab_small)
    print(f"| per frame | {flicker_0:.3f} | {psnr_0:.2f} | 0 |")
    for strength in (0.8, 0.9, 0.95):
        for tolerance in (2.0, 4.0, 8.0, 16.0):
            temporal = TemporalFilter(StabilizeOptions(strength=strength, l_tolerance=tolerance))
            ab = torch.cat([temporal.step(l, a) for l, a in zip(l_small.split(1), ab_small.split(1))])
            value, quality, lag = score(ab)
            print(f"| strength {strength}, L tolerance {tolerance} | {value:.3f} | {quality:.2f} | {lag:.2f} |")
    for strength in (0.8, 0.9):  # no gate: a plain running mean, to see what the L gate buys
        running, out = None, []
        for a in ab_small.split(1):
            running = a if running is None else torch.lerp(a, running, strength)
            out.append(running)
        value, quality, lag = score(torch.cat(out))
        print(f"| strength {strength}, no L gate | {value:.3f} | {quality:.2f} | {lag:.2f} |")


def clips(args) -> None:
    """Each stabiliser on vtest and on the generated clips, run as colorize_video runs it but in memory, then
    through the same encoder (and before it, to tell the codec's chroma noise from the filter's): flicker of
    the colorized frames against the original colour frames', and PSNR against the originals beside
    per-frame colorization's. The model runs once per clip. --strip: the objects clip, stabilized."""
    colorizer = load(args)
    video = list(read_frames(args.video, args.frames))
    footage = [Clip(args.video.name, args.fps, video, "people walking, still camera")]
    footage += standard_clips(shared_photos(EVAL_SCENES), args.clip_frames)
    names = list(STABILISERS)
    rows, costs = [], {name: [] for name in names}
    with tempfile.TemporaryDirectory() as folder:
        for clip in footage:
            strip = args.strip if clip.name.startswith("objects") else None
            rows.append(score_clip(colorizer, clip, Path(folder), costs, strip))
            print(f"  {clip.name}: {len(clip.frames)} frames {clip.frames[0].shape[1]}x{clip.frames[0].shape[0]}, "
                  f"{clip.what}", file=sys.stderr)
    print(f"model {colorizer.card.name}, render {colorizer.render_size}; {args.frames} frames of {args.video.name}, "
          f"{args.clip_frames} of each generated clip; gray input through H.264 CRF 12; cells: flicker × the "
          "original's as written (x264 CRF 18; before encoding) / PSNR dB as written (vs per frame)\n")
    print("| clip | original flicker | " + " | ".join(names) + " |\n|---|---|" + "---|" * len(names))
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print("| filter cost, ms/frame at render size | | " + " | ".join(f"{np.mean(costs[n]):.2f}" for n in names) + " |")


def score_clip(colorizer, clip: Clip, folder: Path, costs: dict, strip: Path | None) -> list[str]:
    """One table row: the clip's name, its original flicker, then each stabiliser's cell."""
    originals = np.stack(clip.frames)
    # the gray input as a user has it (H.264 at CRF 12), decoded as colorize_video decodes it
    write_gray_video(np.stack([gray_of(frame) for frame in originals]), folder / "gray.mp4", clip.fps)
    grays = read_frames(folder / "gray.mp4", gray=True)
    l_full = gray8_to_l(torch.from_numpy(grays))[:, None]  # (N, 1, H, W)
    l_small = render_l(l_full, colorizer.render_size)
    ab_small = torch.cat([colorizer.predict_ab(chunk) for chunk in l_small.split(8)])  # (N, 2, R, R)
    base = video_flicker(lab_frames(originals))
    row, per_frame_psnr = [clip.name, f"{base:.3f}"], None
    for name, options in STABILISERS.items():
        start = time.perf_counter()
        if options is None:
            ab = ab_small
        else:
            temporal = TemporalFilter(options)
            ab = torch.cat([temporal.step(l, a) for l, a in zip(l_small.split(1), ab_small.split(1))])
        costs[name].append((time.perf_counter() - start) / len(ab) * 1000)
        rgb = finish_rgb8(l_full, ab).numpy()
        # and as colorize_video writes it: x264 at its default CRF 18, preset veryfast, 4:2:0
        write_gray_video(rgb, folder / "colour.mp4", clip.fps, crf=18, preset="veryfast")
        encoded = read_frames(folder / "colour.mp4")
        value, quality = video_flicker(lab_frames(encoded)), psnr(encoded, originals)
        in_memory = video_flicker(lab_frames(rgb))
        delta = "" if per_frame_psnr is None else f" ({quality - per_frame_psnr:+.2f})"
        per_frame_psnr = quality if per_frame_psnr is None else per_frame_psnr
        row.append(f"{value / base:.2f}× ({in_memory / base:.2f}×) / {quality:.2f}{delta}")
        if strip and options == StabilizeOptions():
            write_strip(strip, grays, encoded, originals)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--video", type=Path, default=DEFAULT_VIDEO)
    parser.add_argument("--model", default=None, help="weights (default: the packaged default model)")
    parser.add_argument("--render-size", type=int, default=None, help="the network's square (default: the model card's)")
    parser.add_argument("--frames", type=int, default=120)
    parser.add_argument("--fps", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--strip", type=Path, default=None, help="also write a before/after strip of frames (JPEG)")
    parser.add_argument("--baseline", type=Path, default=None,
                        help="also time another version's colorize_video: a folder holding its colorem/ (git archive)")
    parser.add_argument("--sweep", action="store_true", help="score temporal-filter settings instead")
    parser.add_argument("--pan", action="store_true", help="--sweep on a simulated camera pan over the footage")
    parser.add_argument("--clips", action="store_true",
                        help="score each stabiliser on vtest and tests/footage.py's clips")
    parser.add_argument("--clip-frames", type=int, default=48, help="frames of each generated clip (--clips)")
    args = parser.parse_args()
    clips(args) if args.clips else sweep(args) if args.sweep else table(args)


if __name__ == "__main__":
    main()
