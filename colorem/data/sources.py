"""Where training photos come from: folders, tar shards, globs, {000..009} patterns and pipe:/http(s): URLs
resolved into one Source, and the raw (key, bytes) items of each shard or file."""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from colorem.errors import ColoremError, install_hint
from colorem.imageio import IMAGE_EXTENSIONS

SHARD_SUFFIXES = (".tar", ".tar.gz", ".tgz")


@dataclass
class Source:
    """Where training photos come from: a list of shard URLs, or a list of image files."""

    kind: str  # "shards" | "files"
    items: list[str]

    def describe(self) -> dict:
        return {"kind": self.kind, "count": len(self.items), "first": self.items[:1], "last": self.items[-1:]}


def resolve_source(specs: str | os.PathLike | list, what: str = "training data") -> Source:
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
                raise ColoremError(f"{what} not found: {item}")
            (shards if item.endswith(SHARD_SUFFIXES) else files).append(item)
    if shards and files:
        raise ColoremError("mix either shards or image files in one run, not both")
    if not shards and not files:
        raise ColoremError(f"{what}: no images or shards found in {', '.join(map(str, specs))}")
    return Source("shards", shards) if shards else Source("files", files)


def _brace_expand(spec: str) -> list[str]:
    if "{" not in spec:
        return [spec]
    import braceexpand  # a webdataset dependency

    return list(braceexpand.braceexpand(spec))


def read_shard(url: str) -> Iterator[tuple[str, bytes | None]]:
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


def read_file(path: str) -> Iterator[tuple[str, bytes | None]]:
    try:
        yield path, Path(path).read_bytes()
    except OSError:
        yield path, None


def read_items(source: Source, item: str) -> Iterator[tuple[str, bytes | None]]:
    """The (key, image bytes) of one of a source's items: a shard's images, or the file itself."""
    return read_shard(item) if source.kind == "shards" else read_file(item)
