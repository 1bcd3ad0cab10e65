"""Training photos: folders and WebDataset tar shards behind one dataset, decoded and augmented in
DataLoader workers, batched as uint8 RGB (Lab conversion happens batched on the training device).

    sources.py  where photos come from (folders, shards, globs, URLs) -> (key, bytes) items
    photos.py   one photo: bytes -> augmented uint8 crop, or a Skip ("gray", "corrupt", "small")
    stream.py   batches for one rank, a resumable Position, endless epochs; the fixed validation photos

Order is deterministic given (seed, epoch, rank, worker): each rank reads its own share of shards or
files, each batch says where its stream stands, and a run resumes mid-epoch at exactly that place.
Near-gray and unreadable images are skipped and counted, never fatal.
"""

from colorem.data.photos import Augment, Skip, center_square, decode
from colorem.data.sources import SHARD_SUFFIXES, Source, read_items, resolve_source
from colorem.data.stream import DataIterator, PhotoStream, Position, load_fixed_images, make_loader

__all__ = ["Augment", "DataIterator", "PhotoStream", "Position", "SHARD_SUFFIXES", "Skip", "Source", "center_square",
           "decode", "load_fixed_images", "make_loader", "read_items", "resolve_source"]
