"""colorize_video keeps frame count, size, rate, timestamps and audio; colours stay put; bad files fail clearly."""

from __future__ import annotations

import dataclasses
import signal
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import colorem
from colorem.cli import main
from colorem.color import rgb_to_lab
from colorem.errors import VideoError
from colorem.temporal import StabilizeOptions, TemporalFilter, flicker
from colorem.video import _Timestamps
from tests.conftest import REPO, SAMPLES
from tests.footage import gray_of, pan_and_zoom, shake, standard_clips
from tests.test_cli import run_cli

av = pytest.importorskip("av")

SIZE = (96, 64)  # (width, height)
FPS = 10
PAN_FRAMES, CUT_FRAMES = 30, 10


def still_with_grain(photo: Image.Image, frames: int, seed: int = 0) -> list[np.ndarray]:
    """A still shot with film grain: nothing moves, every frame differs a little (a flicker test)."""
    base = np.asarray(photo.convert("L").resize(SIZE, Image.Resampling.BILINEAR), dtype=np.int16)
    rng = np.random.default_rng(seed)
    return [np.clip(base + rng.integers(-3, 4, base.shape), 0, 255).astype(np.uint8) for _ in range(frames)]


def write_clip(path: Path, grays: list[np.ndarray], audio: bool = True, codec: str = "libx264") -> Path:
    """Gray frames at FPS (and a 440 Hz tone as long as the video) into a file; the container from the name."""
    with av.open(str(path), "w") as container:
        video = container.add_stream(codec, rate=FPS)
        video.width, video.height, video.pix_fmt = *SIZE, "yuv420p"
        sound = None
        if audio:
            sound = container.add_stream("aac", rate=16000)
            sound.layout = "mono"
        for gray in grays:
            for packet in video.encode(av.VideoFrame.from_ndarray(gray, format="gray")):
                container.mux(packet)
        for packet in video.encode(None):
            container.mux(packet)
        if sound is not None:
            samples = (0.3 * np.sin(2 * np.pi * 440 * np.arange(16000 * len(grays) // FPS) / 16000)).astype(np.float32)
            for start in range(0, len(samples), 1024):
                frame = av.AudioFrame.from_ndarray(samples[None, start:start + 1024], format="fltp", layout="mono")
                frame.sample_rate, frame.pts = 16000, start
                for packet in sound.encode(frame):
                    container.mux(packet)
            for packet in sound.encode(None):
                container.mux(packet)
    return path


def decode(path: Path) -> tuple[list[np.ndarray], list[int], dict]:
    """RGB frames, their timestamps, and facts about the streams."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        facts = {"rate": stream.average_rate, "size": (stream.width, stream.height),
                 "audio": [s.codec_context.name for s in container.streams.audio]}
        frames = [(frame.to_ndarray(format="rgb24"), frame.pts) for frame in container.decode(stream)]
    return [f for f, _ in frames], [pts for _, pts in frames], facts


def lab_of(rgb: np.ndarray) -> np.ndarray:
    return rgb_to_lab(torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255)[0].numpy()


def video_flicker(frames: list[np.ndarray]) -> float:
    labs = [torch.from_numpy(lab_of(f))[None] for f in frames]
    return float(np.mean([flicker(a, b) for a, b in zip(labs, labs[1:])]))


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    """30 frames panning and zooming over one photo, then a cut to another for 10 frames, with audio."""
    meadow = Image.open(SAMPLES / "mountain-meadow.jpg")
    cat = Image.open(SAMPLES / "chelsea-cat.jpg")
    frames = pan_and_zoom(meadow, PAN_FRAMES) + pan_and_zoom(cat, CUT_FRAMES)
    return write_clip(tmp_path_factory.mktemp("clip") / "pan-and-cut.mp4", frames)


@pytest.fixture(scope="module")
def tiny(tiny_weights):
    return colorem.load(tiny_weights, precision="fp32")


def test_round_trip_keeps_frames_size_rate_timestamps_audio_and_lightness(clip, tiny, tmp_path):
    target = tmp_path / "out" / "colour.mp4"
    result = tiny.colorize_video(clip, target)
    frames_in, pts_in, facts_in = decode(clip)
    frames_out, pts_out, facts_out = decode(target)
    assert result.frames == len(frames_out) == PAN_FRAMES + CUT_FRAMES
    assert facts_out["size"] == SIZE and facts_out["rate"] == FPS == result.fps
    assert pts_out == pts_in  # the same timestamps, in the same time base
    assert facts_out["audio"] == ["aac"] and result.audio  # the audio stream is copied
    l_in, l_out = (np.stack([lab_of(f)[0] for f in frames]) for frames in (frames_in, frames_out))
    assert np.abs(l_out - l_in).mean() < 2.0, np.abs(l_out - l_in).mean()  # the input's L, up to 4:2:0 encoding
    assert sorted(p.name for p in target.parent.iterdir()) == ["colour.mp4"]  # no temporary file left


def test_the_cut_is_found_and_the_pan_is_not_one(clip, tiny, tmp_path):
    assert tiny.colorize_video(clip, tmp_path / "colour.mkv").cuts == 1


def test_flicker_drops_with_stabilization(tmp_path):
    """A still, grainy shot: per-frame colours jump with the grain; the stabilized ones stay put."""
    source = write_clip(tmp_path / "still.mp4", still_with_grain(Image.open(SAMPLES / "dogs-at-door.jpg"), 16), audio=False)
    colorizer = colorem.load(precision="fp32")  # the default model: real predictions, not random ones
    # crf 0: x264 without quantization, so the flicker measured is the colorizer's, not the codec's. At the default
    # crf 18 the codec's own chroma noise is of the same size as what the filter removes on this clip (default v2
    # at step 1,000: 0.111 per frame, 0.131 stabilized; at crf 0: 0.079 and 0.034; v2 at step 500: 0.070, 0.031).
    per_frame = video_flicker(decode(colorizer.colorize_video(source, tmp_path / "a.mp4", stabilize=False,
                                                              render_size=96, crf=0).target)[0])
    stable = video_flicker(decode(colorizer.colorize_video(source, tmp_path / "b.mp4", render_size=96, crf=0).target)[0])
    assert stable < 0.6 * per_frame, (per_frame, stable)


@pytest.mark.parametrize("cast_removal", [None, 0.5], ids=["packaged card", "card with cast_removal 0.5"])
def test_video_frames_are_the_photo_colorization_of_the_same_frames(cast_removal, tmp_path):
    """Video uses the photo path with the same default model and card settings (render size, vibrance,
    temperature, cast removal), so a new default model improves video too: the first frame, which the
    stabiliser passes through as predicted, is that frame colorized as a photo, up to the encoder's 4:2:0
    chroma; later frames are within the stabiliser's effect of their photos, and exactly their photos without it."""
    colour = shake(Image.open(SAMPLES / "dogs-at-door.jpg"), 6, size=SIZE, pixels=2.0)
    source = write_clip(tmp_path / "shake.mp4", [gray_of(frame) for frame in colour], audio=False)
    with av.open(str(source)) as container:  # the gray frames exactly as colorize_video decodes them
        grays = [frame.to_ndarray(format="gray") for frame in container.decode(video=0)]
    colorizer = colorem.load(precision="fp32")
    if cast_removal is not None:  # a decoding setting of the card, applied in predict_ab: video must get it too
        colorizer = colorem.Colorizer(colorizer.model, dataclasses.replace(colorizer.card, cast_removal=cast_removal),
                                      precision="fp32")
    photos = [lab_of(np.array(colorizer.colorize(gray)))[1:] for gray in grays]  # (2, H, W) ab of each frame as a photo
    stable, per_frame = (decode(colorizer.colorize_video(source, tmp_path / f"{name}.mp4", crf=0,
                                                         stabilize=stabilize).target)[0]
                         for name, stabilize in [("stable", True), ("per-frame", False)])
    def apart(frames, index):  # mean |Δa| + |Δb| / 2 over 2x2 blocks: the encoder keeps chroma at half size (4:2:0)
        return np.abs(blocks(lab_of(frames[index])[1:]) - blocks(photos[index])).mean()

    codec = max(apart(per_frame, index) for index in range(len(grays)))
    other_setting = apart([np.array(colorizer.colorize(grays[0], render_size=colorizer.render_size // 2))], 0)
    # default v4: 0.37 to 0.38 per frame, 2.54 at half the render size; stabilized: 0.37 on the first frame, then
    # 0.47 to 0.66
    assert codec < 0.6 and codec < 0.25 * other_setting, (codec, other_setting)  # another setting would show
    assert apart(stable, 0) <= apart(per_frame, 0) + 0.02
    assert max(apart(stable, index) for index in range(1, len(grays))) < codec + 2.0


def test_video_takes_its_colours_from_predict_ab(clip, tiny, tmp_path, monkeypatch):
    """Every card setting that decides a photo's colours (vibrance, and any decoding setting the card gains) is
    applied in Colorizer.predict_ab; video calls it for every frame rather than the network, so it follows them."""
    calls = []

    def red(l_small, *args, **kwargs):  # whatever the model says, a = 40, b = 0
        calls.append(len(l_small))
        return torch.tensor([40.0, 0.0])[None, :, None, None].expand(len(l_small), 2, *l_small.shape[-2:]).clone()

    monkeypatch.setattr(tiny, "predict_ab", red)
    frames = decode(tiny.colorize_video(clip, tmp_path / "red.mp4", stabilize=False).target)[0]
    ab = np.stack([lab_of(frame)[1:] for frame in frames])  # (N, 2, H, W)
    assert sum(calls) == len(frames) == PAN_FRAMES + CUT_FRAMES and max(calls) > 1  # frames in batches
    assert ab[:, 0].mean() > 25 and abs(ab[:, 1].mean()) < 5, ab.mean(axis=(0, 2, 3))  # less where sRGB holds less


def blocks(ab: np.ndarray) -> np.ndarray:
    """(2, H, W) -> (2, H/2, W/2): means of 2x2 blocks."""
    return ab.reshape(2, ab.shape[1] // 2, 2, ab.shape[2] // 2, 2).mean(axis=(2, 4))


def test_avi_with_b_frames_gets_its_timestamps_back_in_order(tiny, tmp_path):
    """AVI labels H.264 frames with timestamps in decode order; the output must not inherit that."""
    source = write_clip(tmp_path / "b-frames.avi", pan_and_zoom(Image.open(SAMPLES / "coffee.jpg"), 20), audio=False)
    target = tmp_path / "colour.mp4"
    assert tiny.colorize_video(source, target).frames == 20
    _, pts, _ = decode(target)
    assert len(pts) == 20 and pts == sorted(pts) and len(set(pts)) == 20


def test_timestamps_are_sorted_within_the_window_and_filled_in():
    stamps = _Timestamps(step=1)
    for pts in [1, 4, 3, 5, 2, 8, 7, 9, 6]:  # vtest.avi's first frames
        stamps.push(pts)
    assert [stamps.pop() for _ in range(9)] == [1, 2, 3, 4, 5, 6, 7, 8, 9]
    stamps = _Timestamps(step=3)
    for pts in [0, None, 6, 6]:  # a missing and a repeated timestamp continue at the frame rate
        stamps.push(pts)
    assert [stamps.pop() for _ in range(4)] == [0, 3, 6, 9]


def test_filter_keeps_still_pixels_and_follows_moving_ones():
    temporal = TemporalFilter(StabilizeOptions(strength=0.9, l_tolerance=4.0))
    l = torch.full((1, 1, 16, 16), 50.0)
    first = temporal.step(l, torch.zeros(1, 2, 16, 16))
    assert torch.equal(first, torch.zeros(1, 2, 16, 16))  # the first frame is its own prediction
    moved = l.clone()
    moved[..., :, 14:] = 90.0  # the two right columns changed: something moved in
    second = temporal.step(moved, torch.full((1, 2, 16, 16), 10.0))
    assert torch.allclose(second[..., :, :12], torch.full_like(second[..., :, :12], 1.0))  # still: 90% of the past
    assert torch.allclose(second[..., :, 15:], torch.full_like(second[..., :, 15:], 10.0))  # moving: its own colour
    cut = torch.full((1, 1, 16, 16), 5.0)  # another shot: a dark frame
    assert torch.equal(temporal.step(cut, torch.full((1, 2, 16, 16), -20.0)), torch.full((1, 2, 16, 16), -20.0))
    assert temporal.cuts == 1


def test_a_slow_cross_dissolve_starts_a_new_shot_once_it_has_drifted_as_far_as_a_cut():
    """A dissolve from one shot to another in steps too small for the frame-to-frame cut detector (no cut is
    counted): once the L histogram is as far from the frame the memory began with as a cut's, the remembered
    colours are dropped, and the last frames follow their own prediction instead of lagging behind the old
    shot's (bench fade clip: -0.15 dB against per-frame colorization without this, -0.05 with it)."""
    generator = torch.Generator().manual_seed(1)
    before = torch.rand(1, 1, 32, 32, generator=generator) * 80 + 10  # a busy shot
    after = torch.rand(1, 1, 32, 32, generator=generator) * 40 + 5  # a darker one
    temporal = TemporalFilter()
    out = [temporal.step(torch.lerp(before, after, weight), torch.full((1, 2, 32, 32), 30.0 * weight))
           for weight in torch.linspace(0, 1, 25).tolist()]
    assert temporal.cuts == 0
    # a filter that never starts afresh lags up to 8.9 units behind on the last frame (the old behaviour)
    assert (out[-1] - 30.0).abs().max() < 3.0, (out[-1] - 30.0).abs().max()


def test_a_batch_through_the_filter_is_the_frames_one_by_one():
    """colorize_video filters a batch of frames at once (TemporalFilter.run); the result, the cuts and what is
    carried into the next batch are those of step() frame by frame, across batch edges and a cut."""
    generator = torch.Generator().manual_seed(0)
    scene = torch.rand(1, 1, 24, 24, generator=generator) * 60 + 20
    l = [scene + torch.rand(1, 1, 24, 24, generator=generator) * 3 for _ in range(10)]  # a still shot with grain
    l[4][..., 8:16, 8:16] += 30  # something moves through
    l += [torch.rand(1, 1, 24, 24, generator=generator) * 2 + 5 for _ in range(7)]  # a cut to a dark shot
    ab = [torch.randn(1, 2, 24, 24, generator=generator) * 5 for _ in l]
    one_by_one = TemporalFilter()
    expected = torch.cat([one_by_one.step(frame, colour) for frame, colour in zip(l, ab)])
    batched = TemporalFilter()
    got = torch.cat([batched.run(torch.cat(l[start:start + 5]), torch.cat(ab[start:start + 5]))
                     for start in range(0, len(l), 5)])  # batches of 5, 5, 5 and 2
    assert torch.equal(got, expected) and batched.cuts == one_by_one.cuts == 1


def test_flicker_metric_counts_only_still_pixels():
    lab = torch.zeros(1, 3, 4, 4)
    lab[:, 0] = 50
    jitter = lab.clone()
    jitter[:, 1] = 1.0  # a moves by 1 everywhere, L stays: flicker 1
    assert flicker(lab, lab) == 0.0 and flicker(lab, jitter) == pytest.approx(1.0)
    moved = jitter.clone()
    moved[:, 0, :2] = 80  # half the pixels changed L: not counted
    moved[:, 1, :2] = 40
    assert flicker(lab, moved) == pytest.approx(1.0)


def _truncated(tmp_path, clip, suffix, keep):
    data = clip.read_bytes() if suffix == ".mp4" else _mkv(tmp_path, clip).read_bytes()
    path = tmp_path / f"truncated{suffix}"
    path.write_bytes(data[: int(len(data) * keep)] if isinstance(keep, float) else data[:keep(data)])
    return path


def _mkv(tmp_path, clip) -> Path:
    frames, _, _ = decode(clip)
    return write_clip(tmp_path / "whole.mkv", [np.asarray(Image.fromarray(f).convert("L")) for f in frames])


BAD = {
    "random bytes named .mp4": (lambda tmp, clip: _write(tmp / "random.mp4", np.random.default_rng(0).bytes(4000)),
                                "not a readable video"),
    "empty file": (lambda tmp, clip: _write(tmp / "empty.mp4", b""), "empty"),
    "missing file": (lambda tmp, clip: tmp / "missing.mp4", "no such file"),
    "mp4 cut in half (no index)": (lambda tmp, clip: _truncated(tmp, clip, ".mp4", 0.5), "corrupt or truncated"),
    "mkv cut in half": (lambda tmp, clip: _truncated(tmp, clip, ".mkv", 0.5), "truncated"),
    "mkv header only (zero frames)": (lambda tmp, clip: _truncated(tmp, clip, ".mkv", lambda d: d.find(bytes.fromhex("1F43B675"))),
                                      "truncated"),
    "audio only": (lambda tmp, clip: _audio_only(tmp), "no video stream"),
    "unsupported codec": (lambda tmp, clip: _write(tmp / "odd.mkv", _mkv(tmp, clip).read_bytes().replace(
        b"V_MPEG4/ISO/AVC", b"V_QQQQQ/ISO/QQQ")), "unsupported video codec"),
}


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _audio_only(tmp_path) -> Path:
    with av.open(str(tmp_path / "sound.mp4"), "w") as container:
        sound = container.add_stream("aac", rate=16000)
        sound.layout = "mono"
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        frame.sample_rate, frame.pts = 16000, 0
        for packet in list(sound.encode(frame)) + list(sound.encode(None)):
            container.mux(packet)
    return tmp_path / "sound.mp4"


@pytest.mark.parametrize("kind", sorted(BAD))
def test_bad_videos_fail_clearly_and_leave_nothing(kind, clip, tiny, tmp_path):
    make, message = BAD[kind]
    source = make(tmp_path, clip)
    out = tmp_path / "out"
    with pytest.raises(VideoError, match=message) as error:
        tiny.colorize_video(source, out / "colour.mp4")
    assert str(source) in str(error.value) and "\n" not in str(error.value)
    assert not out.exists() or list(out.iterdir()) == []  # nothing half-written


def test_huge_frames_are_refused_before_decoding(clip, tiny_weights, tmp_path):
    small_limit = colorem.load(tiny_weights, max_pixels=SIZE[0] * SIZE[1] - 1)
    with pytest.raises(VideoError, match="over the limit"):
        small_limit.colorize_video(clip, tmp_path / "colour.mp4")


@pytest.mark.parametrize("kind", ["photo", "scan-bomb", "png"])
def test_a_still_image_is_refused_before_ffmpeg_decodes_it(kind, tiny, tmp_path):
    """Issue 33 item 2, for `colorem video`: FFmpeg opens a photo as a one-frame video, past the image checks, so
    a progressive JPEG with 5,000 empty scans cost seconds of CPU there; a still image is now one line, undecoded."""
    from tests.hostile import jpeg_scan_bomb

    source = tmp_path / ("still.png" if kind == "png" else "still.mp4")  # the name does not matter, the content does
    if kind == "scan-bomb":
        source.write_bytes(jpeg_scan_bomb(2000, 2000))
    else:
        Image.open(SAMPLES / "coffee.jpg").save(source, format="PNG" if kind == "png" else "JPEG")
    started = time.process_time()
    with pytest.raises(VideoError, match="a still image, not a video; colorize it with `colorem colorize`"):
        tiny.colorize_video(source, tmp_path / "colour.mp4")
    assert time.process_time() - started < 1.0 and not (tmp_path / "colour.mp4").exists()


def test_an_unwritable_target_is_a_clear_error(clip, tiny, tmp_path):
    (tmp_path / "a-file").write_text("not a folder")
    with pytest.raises(VideoError, match="cannot write"):
        tiny.colorize_video(clip, tmp_path / "a-file" / "colour.mp4")


def test_bad_options_are_refused(clip, tiny, tmp_path):
    with pytest.raises(ValueError, match="render_size"):
        tiny.colorize_video(clip, tmp_path / "x.mp4", render_size=5)
    with pytest.raises(ValueError, match="strength"):
        StabilizeOptions(strength=1.0)


def test_cli_a_bad_video_fails_alone(clip, tiny_weights, tmp_path, capsys):
    broken = _write(tmp_path / "broken.mp4", clip.read_bytes()[: len(clip.read_bytes()) // 3])
    out = tmp_path / "out"
    code = main(["video", str(broken), str(clip), "-o", str(out), "--model", str(tiny_weights), "--per-frame"])
    assert code == 1
    err = capsys.readouterr().err
    assert "colorized 1, skipped 0, failed 1" in err
    broken_lines = [line for line in err.splitlines() if "broken.mp4" in line]  # its error alone: no empty progress bar
    assert len(broken_lines) == 1 and broken_lines[0].startswith("failed: ")
    assert sorted(p.name for p in out.iterdir()) == ["pan-and-cut.mp4"]
    capsys.readouterr()
    assert main(["video", str(clip), "-o", str(out), "--model", str(tiny_weights)]) == 0  # a rerun resumes
    assert "colorized 0, skipped 1 (outputs exist; --overwrite replaces them), failed 0" in capsys.readouterr().err
    assert main(["video", str(clip), "-o", str(out), "--model", str(tiny_weights), "--skip-existing"]) == 0
    single = tmp_path / "one.mov"
    assert main(["video", str(clip), "-o", str(single), "--model", str(tiny_weights)]) == 0
    assert decode(single)[2]["size"] == SIZE


def test_webm_is_vp9_and_refuses_audio_it_cannot_hold(clip, tiny, tmp_path):
    silent = write_clip(tmp_path / "silent.mp4", pan_and_zoom(Image.open(SAMPLES / "rocket.jpg"), 12), audio=False)
    result = tiny.colorize_video(silent, tmp_path / "colour.webm", stabilize=False)
    assert result.frames == 12 and result.fps == Fraction(FPS) and result.cuts == 0
    with av.open(str(result.target)) as container:
        assert container.streams.video[0].codec_context.name == "vp9"
    with pytest.raises(VideoError, match="cannot copy its aac audio into .webm.*--no-audio"):
        tiny.colorize_video(clip, tmp_path / "with-sound.webm")
    assert sorted(p.name for p in tmp_path.iterdir() if "webm" in p.name) == ["colour.webm"]
    silent = tiny.colorize_video(clip, tmp_path / "without-sound.webm", audio=False)  # --no-audio
    frames, _, facts = decode(silent.target)
    assert not silent.audio and facts["audio"] == [] and len(frames) == silent.frames > 0


@pytest.mark.parametrize("option, message", [
    (["--strength", "2"], "--strength"), (["--strength", "nan"], "--strength"), (["--crf", "52"], "--crf"),
    (["--preset", "bogus"], "--preset"), (["--render-size", "7"], "--render-size"), (["--batch-size", "0"], "--batch-size"),
    (["--temperature", "nan"], "temperature"), (["-o", "TWO.mp4"], "names one file, but 2 videos"),
    (["-o", "frames.gif"], "not .gif"), (["-o", "SAME"], "would write over the input"), (["-o", "FILE"], "is a file"),
])
def test_cli_video_usage_errors_are_one_line_and_exit_2_before_any_work(clip, tiny_weights, tmp_path, capsys,
                                                                          option, message):
    (tmp_path / "FILE").write_text("not a folder")
    inputs = [str(clip), str(clip.with_name("copy.mp4"))] if "TWO.mp4" in option else [str(clip)]
    clip.with_name("copy.mp4").write_bytes(clip.read_bytes())
    output = {"TWO.mp4": tmp_path / "two.mp4", "frames.gif": tmp_path / "frames.gif", "SAME": clip,
              "FILE": tmp_path / "FILE"}.get(option[-1], tmp_path / "out")
    option = [] if option[0] == "-o" else option
    code, error = run_cli(["video", *inputs, "-o", str(output), "--model", str(tiny_weights), *option], capsys)
    assert code == 2 and message in error and error.count("\n") == 1 and "Traceback" not in error, error
    assert sorted(path.name for path in tmp_path.iterdir()) == ["FILE"]


def test_cli_video_stopped_by_sigterm_leaves_no_partial_file(shared_data, tiny_weights, tmp_path):
    out = tmp_path / "out"  # vtest.avi: 795 frames, so it is still running when the signal comes
    process = subprocess.Popen([sys.executable, "-m", "colorem", "video", str(shared_data / "video" / "vtest.avi"),
                                "-o", str(out), "--model", str(tiny_weights), "--render-size", "32"],
                               cwd=REPO, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not (out.exists() and any(out.iterdir())) and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.05)  # until the temporary output exists
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 128 + signal.SIGTERM, process.stderr.read()
    assert "terminated" in process.stderr.read()
    assert list(out.iterdir()) == []  # the .part file was removed on the way out


def test_colour_memory_averages_a_still_pixel_and_follows_a_fade():
    """A pixel still for n frames shows the mean of its n predictions (grain in L still counts as still); a
    fade, whose L drifts by less than the grain allowance per frame, still lets the colour follow it."""
    temporal = TemporalFilter(StabilizeOptions(strength=0.5, memory=0.97, l_noise=1.0))
    l = torch.full((1, 1, 8, 8), 50.0)
    predictions = [torch.randn(1, 2, 8, 8, generator=torch.Generator().manual_seed(i)) * 3 for i in range(20)]
    for index, ab in enumerate(predictions):
        stable = temporal.step(l + 0.5 * (index % 2), ab)  # grain: L up and down by 0.5
    assert torch.allclose(stable, torch.cat(predictions).mean(0, keepdim=True), atol=1e-4)
    fading = TemporalFilter(StabilizeOptions(strength=0.5, memory=0.97, l_noise=1.0))
    for index in range(40):  # L from 20 to 51 by 0.8 a frame, its colour from a = 0 to 39
        stable = fading.step(torch.full((1, 1, 8, 8), 20.0 + 0.8 * index), torch.full((1, 2, 8, 8), float(index)))
    assert stable[0, 0, 0, 0] > 37.0  # 38.5 (a memory of the mean alone would show about 17: the colour lagging)


def test_the_bench_footage_has_one_cut_where_it_cuts():
    """tests/footage.py's clips (bench/video.py --clips measures on them), from the sample photos: the
    cut detector resets once in the clip with a cut and never in a pan, zoom, shake or over moving objects (a
    short cross-dissolve may reset it: its L histogram moves by up to 0.41 a frame here, 0.16 in the bench's)."""
    photos = {name: Image.open(SAMPLES / f"{file}.jpg") for name, file in
              [("street", "wall-clock"), ("scene", "mountain-meadow"), ("people", "dogs-at-door")]}
    photos["objects"] = [Image.open(SAMPLES / f"{file}.jpg") for file in ("chelsea-cat", "rocket", "coffee")]
    for clip in standard_clips(photos, frames=16, size=SIZE):
        assert len(clip.frames) == 16 and clip.frames[0].shape == (SIZE[1], SIZE[0], 3), clip.name
        temporal = TemporalFilter()
        for frame in clip.frames:
            l_small = torch.from_numpy(gray_of(frame)).float()[None, None] / 2.55
            temporal.step(l_small, torch.zeros(1, 2, *l_small.shape[-2:]))
        if not clip.name.startswith("fade"):
            assert temporal.cuts == (1 if clip.name.startswith("cut") else 0), (clip.name, temporal.cuts)
