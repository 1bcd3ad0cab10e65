"""The training data of one rank: batches of augmented photos streamed from DataLoader workers, in an order
fixed by (seed, epoch, rank, worker), with a Position that says where the stream stands so a run resumes
mid-epoch at exactly that place; and the fixed validation photos."""

from __future__ import annotations

import random
import signal
from collections import deque
from dataclasses import dataclass, field
from itertools import islice
from typing import Callable, Iterable, Iterator

import numpy as np
import torch

from colorem.data.photos import Augment, Skip, center_square, decode
from colorem.data.sources import Source, read_items, resolve_source
from colorem.errors import ColoremError


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
    so a resumed run continues with the stream that was due next. Each stream reads `shard_mix` of its
    shards at once, a photo from each in turn, so a batch mixes photos of several shards rather than
    following one shard after another.
    """

    def __init__(self, source: Source, augment: Augment, batch_size: int, *, seed: int = 0, rank: int = 0,
                 world_size: int = 1, workers: int = 0, shuffle: bool = True, shuffle_buffer: int = 256,
                 shard_mix: int = 1, drop_last: bool = True):
        super().__init__()
        self.source, self.augment, self.batch_size = source, augment, batch_size
        self.seed, self.rank, self.world_size = seed, rank, world_size
        self.workers = max(1, workers)
        self.shuffle, self.shuffle_buffer, self.drop_last = shuffle, shuffle_buffer, drop_last
        self.shard_mix = max(1, shard_mix)
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
        samples = interleave((read_items(self.source, item) for item in items), self.shard_mix)
        for index, (key, data) in enumerate(samples):
            if index % modulus == remainder:
                yield key, data

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


def interleave(iterators: Iterable[Iterator], width: int) -> Iterator:
    """Round-robin over `width` of the iterators at a time, the next one taking the place of each that ends."""
    waiting = iter(iterators)
    active = deque(islice(waiting, width))
    while active:
        current = active.popleft()
        for item in current:
            yield item
            active.append(current)
            break
        else:
            active.extend(islice(waiting, 1))


def make_loader(dataset: PhotoStream, workers: int) -> torch.utils.data.DataLoader:
    """A DataLoader that passes the dataset's batches through (decoding happens in `workers` processes)."""
    if workers > 0 and dataset.workers != workers:
        raise ValueError("the dataset's stream count must equal the DataLoader's worker count")
    return torch.utils.data.DataLoader(dataset, batch_size=None, num_workers=workers,
                                       persistent_workers=False, prefetch_factor=4 if workers else None,
                                       pin_memory=False, worker_init_fn=leave_signals_to_the_trainer)


def leave_signals_to_the_trainer(worker_id: int) -> None:
    """Decoding workers ignore SIGINT/SIGTERM: Ctrl-C or `pkill` reaches the whole process group, and the trainer
    must be the one to stop (rolling back the step, writing a checkpoint, then shutting the workers down)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


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
        self.on_batch: Callable[[dict], None] | None = None  # sees every batch handed out (e.g. to record the order)
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
                if self.on_batch is not None:
                    self.on_batch(batch)
                return batch
            self.position = Position(epoch=self.position.epoch + 1, layout=self.position.layout)
            self._iterator = None
        streams = self.dataset.workers
        raise ColoremError("the training data yielded no usable batch in a whole epoch "
                           f"(skipped so far: {self.skipped or 'none'}; batch size {self.dataset.batch_size}"
                           + (f", {streams} decoding workers, each filling its own batches from its share of "
                              "the photos: fewer usable photos than workers x batch size give none; lower "
                              "data.workers or data.batch_size" if streams > 1 else
                              ": fewer usable photos than that give none; lower data.batch_size") + ")")

    def __iter__(self):
        return self

    def close(self) -> None:
        self._iterator = None


def load_fixed_images(specs, count: int, size: int, what: str = "validation photos") -> tuple[torch.Tensor, list[str]]:
    """The first `count` usable photos of a source, centre-cropped to size² without augmentation:
    the fixed validation images. Returns ((N, 3, S, S) uint8, keys)."""
    source = resolve_source(specs, what)
    rgbs, keys = [], []
    for item in source.items:
        for key, data in read_items(source, item):
            if data is None:
                continue
            try:
                rgb = center_square(key, data, size)
            except Skip:
                continue
            rgbs.append(rgb)
            keys.append(key)
            if len(rgbs) == count:
                return torch.from_numpy(np.stack(rgbs)), keys
    if not rgbs:
        raise ColoremError(f"no readable validation images in {specs}")
    return torch.from_numpy(np.stack(rgbs)), keys
