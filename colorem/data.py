"""Training photos: folders and WebDataset tar shards behind one dataset, decoded and augmented in
DataLoader workers, batched as uint8 RGB (Lab conversion happens batched on the training device).

Order is deterministic given (seed, epoch, rank, worker): each rank reads its own share of shards or
files, each batch says where its stream stands, and a run resumes mid-epoch at exactly that place.
Near-gray and unreadable images are skipped and counted, never fatal.
"""

from __future__ import annotations

import glob
import io
import math
import os
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from colorem.errors import ColoremError, ImageReadError, install_hint
from colorem.imageio import IMAGE_EXTENSIONS, read_image

SHARD_SUFFIXES = (".tar", ".tar.gz", ".tgz")


@dataclass
class Augment:
    """Crop and augmentation options (the fields of DataConfig that concern one image)."""

    size: int = 128
    small_images: str = "upscale"  # upscale | skip
    hflip: bool = True
    rotation: float = 0.0  # degrees
    zoom: float = 0.0
    shear: float = 0.0  # degrees
    gray_threshold: float = 0.02
    max_pixels: int = 50_000_000

    @classmethod
    def from_config(cls, data_config) -> "Augment":
        names = cls.__dataclass_fields__
        return cls(**{name: getattr(data_config, name) for name in names if hasattr(data_config, name)})


# --- sources ----------------------------------------------------------------------------------
@dataclass
class Source:
    """Where training photos come from: a list of shard URLs, or a list of image files."""

    kind: str  # "shards" | "files"
    items: list[str]

    def describe(self) -> dict:
        return {"kind": self.kind, "count": len(self.items), "first": self.items[:1], "last": self.items[-1:]}


def resolve_source(specs: str | os.PathLike | list) -> Source:
    """Folders (recursive), tar shards, globs, {000..009} brace patterns and pipe:/http(s): URLs -> one Source.

    A folder that holds *.tar files is read as shards, any other folder as image files."""
    specs = [specs] if isinstance(specs, (str, os.PathLike)) else list(specs)
    if not specs:
        raise ColoremError("no training data given (pass --data FOLDER_OR_SHARDS)")
    shards: list[str] = []
    files: list[str] = []
    for spec in map(str, specs):
        if spec.startswith(("pipe:", "http://", "https://", "gs://", "s3://")):
            shards.extend(_brace_expand(spec))
            continue
        path = Path(spec)
        if path.is_dir():
            found = sorted(str(p) for p in path.rglob("*") if p.name.endswith(SHARD_SUFFIXES))
            if found:
                shards.extend(found)
            else:
                files.extend(sorted(str(p) for p in path.rglob("*")
                                    if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()))
            continue
        expanded = [match for pattern in _brace_expand(spec) for match in (sorted(glob.glob(pattern)) or [pattern])]
        for item in expanded:
            if not Path(item).exists():
                raise ColoremError(f"training data not found: {item}")
            (shards if item.endswith(SHARD_SUFFIXES) else files).append(item)
    if shards and files:
        raise ColoremError("mix either shards or image files in one run, not both")
    if not shards and not files:
        raise ColoremError(f"no images or shards found in {', '.join(map(str, specs))}")
    return Source("shards", shards) if shards else Source("files", files)


def _brace_expand(spec: str) -> list[str]:
    if "{" not in spec:
        return [spec]
    import braceexpand  # a webdataset dependency

    return list(braceexpand.braceexpand(spec))


def _raw_shard(url: str) -> Iterator[tuple[str, bytes | None]]:
    """(key, image bytes) of each image in one tar shard, in tar order. A broken tar ends its shard
    with (url, None), counted as one corrupt item."""
    try:
        import webdataset  # noqa: F401
        from webdataset.gopen import gopen
        from webdataset.tariterators import tar_file_iterator
    except ImportError as error:
        raise ImportError(f"reading tar shards needs webdataset: {install_hint('train')}") from error
    try:
        stream = gopen(url, "rb")
    except Exception:  # noqa: BLE001  (any opener failure: missing file, failing pipe)
        yield url, None
        return
    try:
        for member in tar_file_iterator(stream):
            name = member["fname"]
            stem, _, suffix = name.rpartition(".")
            if "." + suffix.lower() in IMAGE_EXTENSIONS:
                yield f"{Path(url).name}/{stem}", member["data"]
    except Exception:  # noqa: BLE001  (a truncated or corrupt tar stream)
        yield url, None
    finally:
        stream.close()


def _raw_file(path: str) -> Iterator[tuple[str, bytes | None]]:
    try:
        yield path, Path(path).read_bytes()
    except OSError:
        yield path, None


# --- one image ----------------------------------------------------------------------------------
class Skip(Exception):
    """An image that is not used; `reason` is counted ("gray", "corrupt", "small")."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def decode(key: str, data: bytes | None, augment: Augment, rng: random.Random) -> np.ndarray:
    """Bytes -> (3, size, size) uint8 RGB crop, augmented; raises Skip."""
    if data is None:
        raise Skip("corrupt")
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.format == "JPEG" and min(image.size) >= 4 * augment.size:
                image.draft("RGB", (2 * augment.size, 2 * augment.size))  # decode big JPEGs at 1/2..1/8 scale
            photo = read_image(image, max_pixels=augment.max_pixels, name=key)
    except (ImageReadError, OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError):
        raise Skip("corrupt") from None
    rgb = photo.rgb  # (H, W, 3) float32 [0, 1]
    if float((rgb.max(axis=2) - rgb.min(axis=2)).mean()) < augment.gray_threshold:
        raise Skip("gray")
    height, width = rgb.shape[:2]
    if min(height, width) < augment.size and augment.small_images == "skip":
        raise Skip("small")
    tensor = torch.from_numpy(rgb).permute(2, 0, 1)[None]  # (1, 3, H, W)
    return (_augment(tensor, augment, rng)[0] * 255.0 + 0.5).clamp(0, 255).to(torch.uint8).numpy()


def _augment(rgb: torch.Tensor, augment: Augment, rng: random.Random) -> torch.Tensor:
    """Random affine (rotation, zoom, shear; borders filled by the nearest pixel, as Keras'
    ImageDataGenerator) and a random square crop of `size`, upscaling small images first."""
    size = augment.size
    height, width = rgb.shape[-2:]
    scale = max(1.0, size / min(height, width))  # smaller images are upscaled to cover the crop
    crop = size / scale  # crop side in source pixels
    top = rng.uniform(0, height - crop)
    left = rng.uniform(0, width - crop)
    angle = math.radians(rng.uniform(-augment.rotation, augment.rotation)) if augment.rotation else 0.0
    shear = math.radians(rng.uniform(-augment.shear, augment.shear)) if augment.shear else 0.0
    zoom_x, zoom_y = (rng.uniform(1 - augment.zoom, 1 + augment.zoom) for _ in range(2)) if augment.zoom else (1.0, 1.0)
    flip = augment.hflip and rng.random() < 0.5
    if not (angle or shear or zoom_x != 1.0 or zoom_y != 1.0) and scale == 1.0 and crop == int(crop):
        top, left = int(top), int(left)
        out = rgb[..., top:top + size, left:left + size]
        return out.flip(-1) if flip else out
    # Output pixel (u, v) in [-1, 1]² -> source point; compose crop window, zoom, shear, rotation, flip.
    cos, sin = math.cos(angle), math.sin(angle)
    linear = torch.tensor([[cos, -sin], [sin, cos]], dtype=torch.float64)
    linear = linear @ torch.tensor([[1.0, -math.sin(shear)], [0.0, math.cos(shear)]], dtype=torch.float64)
    linear = linear @ torch.diag(torch.tensor([zoom_x, zoom_y], dtype=torch.float64))
    if flip:
        linear = linear @ torch.diag(torch.tensor([-1.0, 1.0], dtype=torch.float64))
    half = crop / 2
    centre_x, centre_y = left + half, top + half
    # normalized source coordinates (align_corners=False): x_n = (2x + 1) / W - 1 for pixel centre x
    theta = torch.zeros(1, 2, 3, dtype=torch.float64)
    theta[0, 0, :2] = linear[0] * torch.tensor([half * 2 / width, half * 2 / width], dtype=torch.float64)
    theta[0, 1, :2] = linear[1] * torch.tensor([half * 2 / height, half * 2 / height], dtype=torch.float64)
    theta[0, 0, 2] = 2 * centre_x / width - 1
    theta[0, 1, 2] = 2 * centre_y / height - 1
    grid = F.affine_grid(theta.float(), [1, 3, size, size], align_corners=False)
    return F.grid_sample(rgb, grid, mode="bilinear", padding_mode="border", align_corners=False)


# --- the dataset ------------------------------------------------------------------------------
@dataclass
class Position:
    """Where one rank stands in its data: epoch, and per stream (worker) the raw items consumed.
    `next_stream` is the stream whose batch comes next (DataLoader workers take turns)."""

    epoch: int = 0
    streams: dict = field(default_factory=dict)  # {stream index: raw items consumed}
    next_stream: int = 0
    layout: list = field(default_factory=list)  # [world size, workers]: positions are only exact for the same layout

    def to_dict(self) -> dict:
        return {"epoch": self.epoch, "streams": {str(k): v for k, v in self.streams.items()},
                "next_stream": self.next_stream, "layout": list(self.layout)}

    @classmethod
    def from_dict(cls, values: dict) -> "Position":
        return cls(values.get("epoch", 0), {int(k): int(v) for k, v in values.get("streams", {}).items()},
                   values.get("next_stream", 0), list(values.get("layout", [])))


class PhotoStream(torch.utils.data.IterableDataset):
    """Yields batches {"rgb": (B, 3, S, S) uint8, "keys", "stream", "consumed", "skipped": {reason: n}}.

    One epoch per iteration; call set_epoch() and set_start() before each. Rank r of W with K workers
    reads logical streams r*K .. r*K+K-1 of W*K; worker w of the DataLoader plays stream (w + offset) % K,
    so a resumed run continues with the stream that was due next.
    """

    def __init__(self, source: Source, augment: Augment, batch_size: int, *, seed: int = 0, rank: int = 0,
                 world_size: int = 1, workers: int = 0, shuffle: bool = True, shuffle_buffer: int = 256,
                 drop_last: bool = True):
        super().__init__()
        self.source, self.augment, self.batch_size = source, augment, batch_size
        self.seed, self.rank, self.world_size = seed, rank, world_size
        self.workers = max(1, workers)
        self.shuffle, self.shuffle_buffer, self.drop_last = shuffle, shuffle_buffer, drop_last
        self.epoch = 0
        self.start: dict[int, int] = {}
        self.offset = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def set_start(self, consumed: dict[int, int], next_stream: int = 0) -> None:
        self.start, self.offset = dict(consumed), next_stream % self.workers

    def _assignment(self, stream: int) -> tuple[list[str], int, int]:
        """Items of one global stream: (shards or files, item modulus, item remainder)."""
        items = list(self.source.items)
        if self.shuffle:
            random.Random(f"{self.seed}/order/{self.epoch}").shuffle(items)
        total = self.world_size * self.workers
        global_stream = self.rank * self.workers + stream
        if self.source.kind == "files" or len(items) >= total:
            return items[global_stream::total], 1, 0
        # fewer shards than streams: streams share a shard and split its items
        shard = global_stream % len(items)
        sharing = list(range(shard, total, len(items)))
        return [items[shard]], len(sharing), sharing.index(global_stream)

    def _raw(self, stream: int) -> Iterator[tuple[str, bytes | None]]:
        items, modulus, remainder = self._assignment(stream)
        reader = _raw_shard if self.source.kind == "shards" else _raw_file
        index = 0
        for item in items:
            for key, data in reader(item):
                if index % modulus == remainder:
                    yield key, data
                index += 1

    def _shuffled(self, stream: int) -> Iterator[tuple[str, bytes | None]]:
        raw = self._raw(stream)
        if not self.shuffle or self.shuffle_buffer <= 1:
            yield from raw
            return
        rng = random.Random(f"{self.seed}/buffer/{self.epoch}/{self.rank}/{stream}")
        buffer: list = []
        for sample in raw:
            buffer.append(sample)
            if len(buffer) >= self.shuffle_buffer:
                yield buffer.pop(rng.randrange(len(buffer)))
        rng.shuffle(buffer)
        yield from buffer

    def stream_batches(self, stream: int) -> Iterator[dict]:
        """All batches of one stream for the current epoch, skipping what was consumed before."""
        start = self.start.get(stream, 0)
        rgbs: list[np.ndarray] = []
        keys: list[str] = []
        skipped: dict[str, int] = {}
        consumed = 0
        for consumed, (key, data) in enumerate(self._shuffled(stream), start=1):
            if consumed <= start:
                continue  # replayed only to restore the shuffle buffer; not decoded
            rng = random.Random(f"{self.seed}/augment/{self.epoch}/{self.rank}/{stream}/{consumed}")
            try:
                rgbs.append(decode(key, data, self.augment, rng))
                keys.append(key)
            except Skip as skip:
                skipped[skip.reason] = skipped.get(skip.reason, 0) + 1
                continue
            if len(rgbs) == self.batch_size:
                yield self._batch(rgbs, keys, stream, consumed, skipped)
                rgbs, keys, skipped = [], [], {}
        if rgbs and not self.drop_last:
            yield self._batch(rgbs, keys, stream, consumed, skipped)

    def _batch(self, rgbs, keys, stream, consumed, skipped) -> dict:
        return {"rgb": torch.from_numpy(np.stack(rgbs)), "keys": list(keys), "stream": stream,
                "consumed": consumed, "skipped": dict(skipped)}

    def __iter__(self) -> Iterator[dict]:
        info = torch.utils.data.get_worker_info()
        if info is None:  # no worker processes: play the streams round-robin, like the DataLoader does
            iterators = [self.stream_batches((self.offset + index) % self.workers) for index in range(self.workers)]
            while iterators:
                for iterator in list(iterators):
                    batch = next(iterator, None)
                    if batch is None:
                        iterators.remove(iterator)
                    else:
                        yield batch
            return
        torch.set_num_threads(1)
        yield from self.stream_batches((info.id + self.offset) % self.workers)


def make_loader(dataset: PhotoStream, workers: int) -> torch.utils.data.DataLoader:
    """A DataLoader that passes the dataset's batches through (decoding happens in `workers` processes)."""
    if workers > 0 and dataset.workers != workers:
        raise ValueError("the dataset's stream count must equal the DataLoader's worker count")
    return torch.utils.data.DataLoader(dataset, batch_size=None, num_workers=workers,
                                       persistent_workers=False, prefetch_factor=4 if workers else None,
                                       pin_memory=False)


class DataIterator:
    """Endless batches over epochs for one rank, tracking a resumable Position and skip counts."""

    def __init__(self, dataset: PhotoStream, workers: int, position: Position | None = None):
        self.dataset, self.workers = dataset, workers
        layout = [dataset.world_size, dataset.workers]
        self.position = position or Position(layout=layout)
        if self.position.layout and self.position.layout != layout:
            # a different world size or worker count: restart the saved epoch's order at its beginning
            self.position = Position(epoch=self.position.epoch, layout=layout)
        self.position.layout = layout
        self.skipped: dict[str, int] = {}
        self.images = 0
        self._iterator: Iterator[dict] | None = None

    def _start_epoch(self) -> None:
        self.dataset.set_epoch(self.position.epoch)
        self.dataset.set_start(self.position.streams, self.position.next_stream)
        self._iterator = iter(make_loader(self.dataset, self.workers))

    def __next__(self) -> dict:
        for _ in range(2):
            if self._iterator is None:
                self._start_epoch()
            batch = next(self._iterator, None)
            if batch is not None:
                self.position.streams[batch["stream"]] = batch["consumed"]
                self.position.next_stream = (batch["stream"] + 1) % self.dataset.workers
                for reason, count in batch["skipped"].items():
                    self.skipped[reason] = self.skipped.get(reason, 0) + count
                self.images += len(batch["keys"])
                return batch
            self.position = Position(epoch=self.position.epoch + 1, layout=self.position.layout)
            self._iterator = None
        raise ColoremError("the training data yielded no usable batch in a whole epoch "
                           f"(skipped so far: {self.skipped or 'none'}; batch size {self.dataset.batch_size})")

    def __iter__(self):
        return self

    def close(self) -> None:
        self._iterator = None


def load_fixed_images(specs, count: int, size: int) -> tuple[torch.Tensor, list[str]]:
    """The first `count` usable photos of a source, centre-cropped to size² without augmentation:
    the fixed validation images. Returns ((N, 3, S, S) uint8, keys)."""
    source = resolve_source(specs)
    reader = _raw_shard if source.kind == "shards" else _raw_file
    rgbs, keys = [], []
    for item in source.items:
        for key, data in reader(item):
            if data is None:
                continue
            try:
                rgb = _center_square(key, data, size)
            except Skip:
                continue
            rgbs.append(rgb)
            keys.append(key)
            if len(rgbs) == count:
                return torch.from_numpy(np.stack(rgbs)), keys
    if not rgbs:
        raise ColoremError(f"no readable validation images in {specs}")
    return torch.from_numpy(np.stack(rgbs)), keys


def _center_square(key: str, data: bytes, size: int) -> np.ndarray:
    try:
        photo = read_image(data, name=key)
    except ImageReadError:
        raise Skip("corrupt") from None
    rgb = torch.from_numpy(photo.rgb).permute(2, 0, 1)[None]
    height, width = rgb.shape[-2:]
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    rgb = rgb[..., top:top + side, left:left + side]
    if side != size:
        rgb = F.interpolate(rgb, size=(size, size), mode="bilinear", align_corners=False, antialias=side > size)
    return (rgb[0] * 255.0 + 0.5).clamp(0, 255).to(torch.uint8).numpy()
