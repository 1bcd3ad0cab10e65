"""Colorize a video file, streaming: decode (PyAV) -> each frame prepared as a photo is (prepare_photo: its L at
full and render size) -> predict_ab -> temporal filter -> finish_rgb8 -> encode, in batches of frames, decoding and the stages after the network on threads
of their own; the audio stream is copied, the frame size, rate and timestamps are kept, and the output is
written to a temporary name and renamed when complete.

A colour video is taken as its luma, as a colour photo is taken as its lightness.
"""

from __future__ import annotations

import contextlib
import heapq
import os
import secrets
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Callable, Generator, Iterator

import numpy as np
import torch

from colorem.errors import VideoError, install_hint
from colorem.imageio import Photo
from colorem.stages import Prepared, finish_rgb8, prepare_photo
from colorem.temporal import StabilizeOptions, TemporalFilter

VIDEO_EXTENSIONS = (".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi")
BATCH_PIXELS = 8 << 20  # frames per forward pass are capped so that a batch holds about 8 MP
REORDER_WINDOW = 8  # frames over which timestamps attached in decode order are put back in order
WRITE_AHEAD = 2  # batches handed to the encoder's thread and not yet written: bounds memory
_ENCODERS = {".webm": ("libvpx-vp9", {"crf": "{crf}", "b": "0", "deadline": "realtime", "cpu-used": "8"})}
_DEFAULT_ENCODER = ("libx264", {"crf": "{crf}", "preset": "{preset}"})
# Containers that refuse most audio codecs (AVI takes AAC into its header, then fails on the first packet).
_AUDIO_CODECS = {".webm": ("opus", "vorbis"), ".avi": ("mp3", "mp2", "ac3", "pcm_s16le", "pcm_u8")}


@dataclass(frozen=True)
class VideoOptions:
    """The photo options (render_size, saturation, temperature) plus how frames are stabilized and encoded."""

    render_size: int | None = None  # None: the model card's
    saturation: float = 1.0
    temperature: float | None = None
    stabilize: bool = True  # False: every frame colorized on its own (flickers; for comparison)
    stabilize_options: StabilizeOptions = field(default_factory=StabilizeOptions)
    batch_size: int = 8  # frames per forward pass
    crf: int = 18  # x264/VP9 constant-rate factor: lower is better quality and larger files
    preset: str = "veryfast"  # x264 speed preset
    audio: bool = True  # copy the first audio stream (False: a silent output)


@dataclass(frozen=True)
class VideoResult:
    source: Path
    target: Path
    frames: int
    size: tuple[int, int]  # (width, height)
    fps: Fraction | None
    audio: bool  # an audio stream was copied
    cuts: int  # scene cuts the temporal filter reset at
    seconds: float


def _av(source: Path):
    try:
        import av
    except ImportError:
        raise VideoError(str(source), f"video needs PyAV: {install_hint('video')}") from None
    return av


def is_video(path: str | os.PathLike) -> bool:
    """Whether a file name looks like a video (by extension; the container decides when it is opened)."""
    return Path(path).suffix.lower() in VIDEO_EXTENSIONS


# ISO media brands of still images (AVIF, HEIF): an "ftyp" box alone does not make a file a video.
_IMAGE_BRANDS = (b"avif", b"avis", b"heic", b"heix", b"mif1", b"msf1")


def sniff_video(path: str | os.PathLike) -> bool:
    """Whether a file's first bytes are those of a video container (MP4/MOV, Matroska/WebM, AVI, FLV), whatever
    its name; False for anything unreadable."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(12)
    except OSError:
        return False
    return ((head[4:8] == b"ftyp" and head[8:12] not in _IMAGE_BRANDS) or head[4:8] in (b"moov", b"mdat", b"wide")
            or head.startswith(b"\x1a\x45\xdf\xa3") or (head[:4] == b"RIFF" and head[8:12] == b"AVI ")
            or head.startswith(b"FLV\x01"))


@torch.inference_mode()
def colorize_video(colorizer, source: str | os.PathLike, target: str | os.PathLike,
                   options: VideoOptions = VideoOptions(),
                   progress: Callable[[int, int | None], None] | None = None) -> VideoResult:
    """Colorize `source` into `target` (its container chosen by the extension: mp4, mov, mkv, webm, avi) with a
    colorem.Colorizer (its check_options, predict_ab and max_pixels: the photo path's model and card settings).
    `progress(n, total)` is called as frames are written: n just written, total as the file declares it
    (None when it does not). Raises VideoError with the reason for anything wrong with the input or
    output; the target is then left untouched."""
    source, target = Path(source), Path(target)
    av = _av(source)
    render_size = colorizer.check_options(options.render_size, options.saturation, options.temperature)
    started = time.perf_counter()
    reader = _open_input(av, source, colorizer.max_pixels)
    temporary = target.parent / f".{target.stem}.{secrets.token_hex(4)}.part{target.suffix}"
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with reader, av.open(str(temporary), "w") as writer:
            job = _Job(av, colorizer, reader, writer, source, target, options, render_size, progress)
            job.run()
        if job.frames == 0:
            raise VideoError(str(source), "no video frames could be decoded")
        os.replace(temporary, target)
    except av.error.FFmpegError as error:
        raise VideoError(str(source), _reason(error)) from None
    except OSError as error:
        raise VideoError(str(source), f"cannot write {target} ({error.strerror or error})") from None
    finally:
        reader.close()
        with contextlib.suppress(OSError):  # an unwritable folder has no temporary file to remove
            temporary.unlink(missing_ok=True)
    return VideoResult(source, target, job.frames, (job.width, job.height), job.fps, job.audio_out is not None,
                       job.filter.cuts if job.filter else 0, time.perf_counter() - started)


def _open_input(av, source: Path, max_pixels: int):
    if not source.exists():
        raise VideoError(str(source), "no such file")
    if not source.is_file():
        raise VideoError(str(source), "not a file")
    if source.stat().st_size == 0:
        raise VideoError(str(source), "the file is empty (0 bytes)")
    try:
        reader = av.open(str(source), "r")
    except av.error.FFmpegError as error:
        raise VideoError(str(source), f"not a readable video ({_reason(error)})") from None
    try:
        if reader.format.name == "image2" or reader.format.name.endswith("_pipe"):
            # a still photo: FFmpeg would decode it as a one-frame video, past the image checks (a JPEG with
            # thousands of progressive scans costs seconds of CPU); photos go through `colorem colorize`
            raise VideoError(str(source), "a still image, not a video; colorize it with `colorem colorize`")
        if not reader.streams.video:
            kinds = sorted({stream.type for stream in reader.streams})
            raise VideoError(str(source), f"no video stream (it holds {', '.join(kinds) or 'nothing'})")
        stream = reader.streams.video[0]
        if stream.codec_context is None:
            raise VideoError(str(source), "unsupported video codec (no decoder for it in this FFmpeg build)")
        width, height = stream.codec_context.width, stream.codec_context.height
        if width < 1 or height < 1:
            raise VideoError(str(source), f"the video has no pixels ({width}x{height})")
        if width * height > max_pixels:
            raise VideoError(str(source), f"{width}x{height} = {width * height:,} pixels per frame is over the limit of {max_pixels:,}")
    except BaseException:
        reader.close()
        raise
    return reader


def _reason(error) -> str:
    message = getattr(error, "strerror", None) or str(error)
    if "Invalid data" in message or "moov atom" in message.lower() or "End of file" in message:
        message = f"the file is corrupt or truncated ({message})"
    return message


class _Job:
    """One video: the input and output containers, the running temporal filter, frames in flight."""

    def __init__(self, av, colorizer, reader, writer, source, target, options, render_size, progress):
        self.av, self.colorizer, self.reader, self.writer = av, colorizer, reader, writer
        self.source, self.options, self.render_size, self.progress = source, options, render_size, progress
        self.video_in = reader.streams.video[0]
        self.video_in.thread_type = "AUTO"
        self.width, self.height = self.video_in.codec_context.width, self.video_in.codec_context.height
        self.fps = self.video_in.average_rate or self.video_in.guessed_rate
        self.time_base = self.video_in.time_base or (1 / Fraction(self.fps) if self.fps else Fraction(1, 25))
        self.video_out = _add_video_stream(writer, target, self.width, self.height, self.fps, self.time_base, options)
        self.audio_in = reader.streams.audio[0] if reader.streams.audio and options.audio else None
        self.audio_out = None
        if self.audio_in is not None:
            codec = self.audio_in.codec_context.name if self.audio_in.codec_context else "unknown"
            allowed = _AUDIO_CODECS.get(target.suffix.lower())
            try:
                if allowed is not None and codec not in allowed:
                    raise ValueError(f"{target.suffix} holds {' or '.join(allowed)} audio only")
                self.audio_out = writer.add_stream_from_template(self.audio_in)
            except (av.error.FFmpegError, ValueError) as error:
                raise VideoError(str(source), f"cannot copy its {codec} audio into {target.suffix} ({error}); "
                                              "write .mkv, which holds any, or leave the sound out (audio=False, "
                                              "--no-audio)") from None
        self.filter = TemporalFilter(options.stabilize_options) if options.stabilize else None
        step = round(1 / (Fraction(self.fps) * self.time_base)) if self.fps else 1
        self.timestamps = _Timestamps(max(1, step))
        self.batch_size = max(1, min(options.batch_size, BATCH_PIXELS // (self.width * self.height)))
        self.frames = 0
        self.declared = self.video_in.frames  # 0 when the container does not say
        self.expected = _expected_frames(self.video_in, reader, self.fps)

    def run(self) -> None:
        """Three stages on their own threads, so that both cores stay busy: decoding a batch ahead (FFmpeg
        releases the GIL), the network on this thread, and the temporal filter, finishing (full-size colour
        math), encoding and muxing, in order, behind it."""
        with ThreadPoolExecutor(1, "colorem-decode") as decoder, ThreadPoolExecutor(1, "colorem-encode") as encoder:
            try:
                self._run(decoder, encoder)
            except BaseException:
                encoder.shutdown(cancel_futures=True)  # stopped or failed: nothing more is written
                raise

    def _run(self, decoder: ThreadPoolExecutor, encoder: ThreadPoolExecutor) -> None:
        writing: deque[Future] = deque()  # batches being finished and encoded: each gives its frame count
        for batch in _ahead(decoder, self._decoded()):
            colours = self._colorize(batch.grays) if batch.grays else None
            writing.append(encoder.submit(self._write, colours, batch.pts, batch.audio))
            while writing and (writing[0].done() or len(writing) > WRITE_AHEAD):  # bounded memory
                self._written(writing.popleft().result())
        writing.append(encoder.submit(self._flush))
        while writing:
            self._written(writing.popleft().result())
        if self.frames and self.frames < self.expected - max(2, self.expected // 50):  # slack: edit lists, rounding
            raise VideoError(str(self.source), f"the file is truncated: {self.frames} frames decode of the "
                                               f"{self.expected} it declares")

    def _decoded(self) -> Iterator[_Batch]:
        """Batches of gray uint8 frames (H, W) with their timestamps, and the audio packets demuxed beside them."""
        streams = [self.video_in] + ([self.audio_in] if self.audio_in is not None else [])
        waiting: deque[np.ndarray] = deque()  # frames whose timestamp is not known yet (REORDER_WINDOW)
        batch, decoded = _Batch(), 0
        try:
            for packet in self.reader.demux(*streams):
                if packet.stream is self.audio_in:
                    if packet.dts is not None:
                        batch.audio.append(packet)
                    continue
                for frame in packet.decode():
                    self.timestamps.push(frame.pts)
                    waiting.append(frame.reformat(self.width, self.height, "gray").to_ndarray())
                    decoded += 1
                    if self.timestamps.waiting > REORDER_WINDOW:
                        batch = yield from self._add(batch, waiting.popleft())
        except self.av.error.FFmpegError as error:
            raise VideoError(str(self.source), f"the video data is corrupt or truncated after {decoded} "
                                               f"frames ({_reason(error)})") from None
        while waiting:
            batch = yield from self._add(batch, waiting.popleft())
        if batch.grays or batch.audio:
            yield batch

    def _add(self, batch: _Batch, gray: np.ndarray) -> Generator[_Batch, None, _Batch]:
        """A frame into the batch, with the next timestamp in order; the batch is yielded once it is full. Returns
        the batch to fill next."""
        batch.add(gray, self.timestamps.pop())
        if len(batch.grays) < self.batch_size:
            return batch
        yield batch
        return _Batch()

    def _colorize(self, grays: list[np.ndarray]) -> tuple[list[Prepared], torch.Tensor, torch.Tensor]:
        """Gray uint8 frames (H, W) -> the frames prepared as photos are (prepare_photo), their L at the render size
        (B, 1, R, R) and predicted ab (B, 2, R, R), through the photo path (predict_ab: the card's settings)."""
        frames = [prepare_photo(Photo(gray, None, f"{self.source}, frame {self.frames + index}"), self.render_size)
                  for index, gray in enumerate(grays)]
        l_small = torch.cat([frame.l_small for frame in frames])  # (B, 1, R, R)
        return frames, l_small, self.colorizer.predict_ab(l_small, self.options.temperature)

    def _write(self, colours: tuple[list[Prepared], torch.Tensor, torch.Tensor] | None, timestamps: list[int],
               audio: list) -> int:
        """On the encoder's thread, in order: mux the audio packets, stabilize, finish and encode the frames;
        returns how many."""
        for packet in audio:
            packet.stream = self.audio_out
            self.writer.mux(packet)
        if colours is None:
            return 0
        frames, l_small, ab_small = colours
        if self.filter is not None:
            ab_small = self.filter.run(l_small, ab_small)
        rgb = finish_rgb8(frames, ab_small, self.options.saturation).numpy()  # (B, H, W, 3)
        for pixels, pts in zip(rgb, timestamps):
            frame = self.av.VideoFrame.from_ndarray(pixels, format="rgb24")
            frame.pts, frame.time_base = pts, self.time_base
            for packet in self.video_out.encode(frame):
                self.writer.mux(packet)
        return len(timestamps)

    def _flush(self) -> int:
        for packet in self.video_out.encode(None):
            self.writer.mux(packet)
        return 0

    def _written(self, frames: int) -> None:
        self.frames += frames
        if frames and self.progress is not None:
            self.progress(frames, self.declared or None)


@dataclass
class _Batch:
    """Decoded frames on their way to one forward pass: gray uint8 (H, W) with timestamps, and audio packets."""

    grays: list[np.ndarray] = field(default_factory=list)
    pts: list[int] = field(default_factory=list)
    audio: list = field(default_factory=list)

    def add(self, gray: np.ndarray, pts: int) -> None:
        self.grays.append(gray)
        self.pts.append(pts)


_END = object()


def _ahead(executor: ThreadPoolExecutor, items: Iterator):
    """The items of `items`, each made on `executor`'s thread while the caller works on the one before."""
    future = executor.submit(next, items, _END)
    while (item := future.result()) is not _END:
        future = executor.submit(next, items, _END)
        yield item


def _expected_frames(stream, container, fps) -> int:
    """Frames the file says it holds: its frame count, else its duration (the video stream's, else the
    container's, which may include a longer audio track: 5% slack) times the frame rate; 0 if unknown."""
    if stream.frames:
        return stream.frames
    seconds, slack = None, 1.0
    if stream.duration and stream.time_base:
        seconds = float(stream.duration * stream.time_base)
    elif "DURATION" in stream.metadata:  # Matroska writes each track's length as a tag
        try:
            hours, minutes, rest = stream.metadata["DURATION"].split(":")
            seconds = int(hours) * 3600 + int(minutes) * 60 + float(rest)
        except ValueError:
            seconds = None
    if seconds is None and container.duration:
        seconds, slack = container.duration / 1_000_000, 0.95
    return int(seconds * float(fps) * slack) if seconds and fps else 0


def _add_video_stream(writer, target: Path, width: int, height: int, fps, time_base, options: VideoOptions):
    codec, template = _ENCODERS.get(target.suffix.lower(), _DEFAULT_ENCODER)
    stream = writer.add_stream(codec, rate=fps or 25)
    stream.width, stream.height = width, height
    # 4:2:0 halves the chroma planes, which needs even sides; odd frame sizes keep full chroma instead
    stream.pix_fmt = "yuv420p" if width % 2 == 0 and height % 2 == 0 else "yuv444p"
    stream.time_base = time_base
    stream.codec_context.time_base = time_base
    stream.options = {key: value.format(crf=options.crf, preset=options.preset) for key, value in template.items()}
    return stream


class _Timestamps:
    """Presentation timestamps handed out in frame order. Decoders return frames in presentation order,
    but some containers (AVI with B-frames) label them in decode order: the smallest of the waiting
    timestamps is the next frame's. Missing or repeated ones continue at the frame rate."""

    def __init__(self, step: int):
        self.step, self._heap, self._last = step, [], None

    @property
    def waiting(self) -> int:
        return len(self._heap)

    def push(self, pts: int | None) -> None:
        heapq.heappush(self._heap, pts if pts is not None else -1)

    def pop(self) -> int:
        pts = heapq.heappop(self._heap) if self._heap else -1
        if pts < 0 or (self._last is not None and pts <= self._last):
            pts = 0 if self._last is None else self._last + self.step
        self._last = pts
        return pts
