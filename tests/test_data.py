"""Training data: folders and tar shards behind one dataset, skips counted, per-rank shares, exact resume."""

from __future__ import annotations

import io
import multiprocessing
import os
import signal
import tarfile
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from colorem.data import (Augment, DataIterator, PhotoStream, Position, decode, load_fixed_images,
                          resolve_source)
from colorem.errors import ColoremError
from tests.conftest import photo


def jpeg(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def write_shard(path: Path, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


@pytest.fixture
def shards(tmp_path) -> list[Path]:
    """4 shards of 6 photos (32..48 px), one member of shard 1 is a corrupt JPEG."""
    paths = []
    for shard in range(4):
        members = {f"{shard:02d}{index:02d}.jpg": jpeg(photo(32 + 4 * index, 32 + 2 * index, seed=10 * shard + index))
                   for index in range(6)}
        if shard == 1:
            members["0103.jpg"] = members["0103.jpg"][:40] + b"\x00garbage" * 8
        paths.append(write_shard(tmp_path / f"train-{shard:06d}.tar", members))
    return paths


def keys_of(stream: PhotoStream) -> list[str]:
    return [key for batch in stream for key in batch["keys"]]


def test_sources_folder_shards_globs_and_braces(tmp_path, shards):
    folder = tmp_path / "photos" / "nested"
    folder.mkdir(parents=True)
    photo().save(folder / "a.png")
    photo().save(folder.parent / "b.jpg")
    (folder / "notes.txt").write_text("not an image")
    assert resolve_source(tmp_path / "photos").kind == "files"
    assert len(resolve_source(tmp_path / "photos").items) == 2
    assert resolve_source(tmp_path).kind == "shards"  # a folder of *.tar is read as shards
    assert len(resolve_source(str(tmp_path / "train-*.tar")).items) == 4
    assert len(resolve_source(str(tmp_path / "train-{000001..000002}.tar")).items) == 2
    assert resolve_source("pipe:cat x.tar").items == ["pipe:cat x.tar"]
    with pytest.raises(ColoremError, match="not found"):
        resolve_source(str(tmp_path / "missing.tar"))
    with pytest.raises(ColoremError, match="no training data"):
        resolve_source([])


def test_shards_with_a_corrupt_jpeg_are_read_and_it_is_counted(shards):
    stream = PhotoStream(resolve_source(shards), Augment(size=32), batch_size=5, drop_last=False)
    batches = list(stream)
    keys = [key for batch in batches for key in batch["keys"]]
    skipped = sum(batch["skipped"].get("corrupt", 0) for batch in batches)
    assert skipped == 1
    assert len(keys) == 23 and "train-000001.tar/0103" not in keys
    assert all(batch["rgb"].dtype == torch.uint8 and batch["rgb"].shape[1:] == (3, 32, 32) for batch in batches)


def test_a_truncated_tar_and_an_unreadable_file_are_skipped(tmp_path, shards):
    data = shards[0].read_bytes()
    broken = tmp_path / "broken.tar"
    broken.write_bytes(data[: len(data) // 2 + 100])
    stream = PhotoStream(resolve_source([shards[2], broken]), Augment(size=32), batch_size=1, drop_last=False)
    batches = list(stream)
    assert sum(batch["skipped"].get("corrupt", 0) for batch in batches) >= 1
    assert sum(len(batch["keys"]) for batch in batches) >= 6  # the good shard, and what the broken one held


def test_near_gray_images_are_skipped_and_counted(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    for index in range(3):
        photo(seed=index).save(folder / f"colour{index}.png")
    Image.fromarray(np.full((40, 40, 3), 128, np.uint8)).save(folder / "gray.png")
    photo().convert("L").save(folder / "bw.png")
    stream = PhotoStream(resolve_source(folder), Augment(size=32), batch_size=1, drop_last=False)
    batches = list(stream)
    assert len(batches) == 3
    assert sum(batch["skipped"].get("gray", 0) for batch in batches) == 2


def test_small_images_are_upscaled_or_skipped():
    data = jpeg(photo(20, 24))
    rng = __import__("random").Random(0)
    assert decode("small", data, Augment(size=32), rng).shape == (3, 32, 32)
    with pytest.raises(Exception, match="small"):
        decode("small", data, Augment(size=32, small_images="skip"), rng)


def test_augmentations_keep_the_size_and_the_colours():
    data = jpeg(photo(64, 48))
    rng = __import__("random").Random(1)
    plain = decode("p", data, Augment(size=32, hflip=False), rng)
    augmented = decode("p", data, Augment(size=32, rotation=20, zoom=0.2, shear=0.2), rng)
    assert augmented.shape == plain.shape == (3, 32, 32) and augmented.dtype == np.uint8
    assert abs(float(augmented.mean()) - float(plain.mean())) < 40  # nearest-edge fill: no black borders


@pytest.mark.parametrize("world_size, workers", [(2, 1), (2, 2), (3, 2)])
def test_ranks_and_workers_read_disjoint_shares_that_cover_everything(shards, world_size, workers):
    source = resolve_source(shards)
    seen = []
    for rank in range(world_size):
        stream = PhotoStream(source, Augment(size=32), batch_size=1, rank=rank, world_size=world_size,
                             workers=workers, drop_last=False)
        seen.append(keys_of(stream))
    flat = [key for keys in seen for key in keys]
    assert len(flat) == len(set(flat)) == 23
    assert all(seen)


def test_order_is_deterministic_per_seed_and_changes_per_epoch(shards):
    source = resolve_source(shards)
    first = keys_of(PhotoStream(source, Augment(size=32), batch_size=2, seed=3, shuffle_buffer=4))
    again = keys_of(PhotoStream(source, Augment(size=32), batch_size=2, seed=3, shuffle_buffer=4))
    stream = PhotoStream(source, Augment(size=32), batch_size=2, seed=3, shuffle_buffer=4)
    stream.set_epoch(1)
    assert first == again
    assert keys_of(stream) != first


def test_a_stream_mixes_its_shards_and_still_reads_each_photo_once(shards):
    def shards_in_order(shard_mix: int) -> list[str]:
        stream = PhotoStream(resolve_source(shards), Augment(size=32), batch_size=1, shuffle_buffer=1,
                             shard_mix=shard_mix, drop_last=False)
        keys = [key.rsplit("/", 1)[1] for key in keys_of(stream)]  # "train-000001.tar/0102" -> "0102"
        assert sorted(keys) == sorted(f"{shard:02d}{index:02d}" for shard in range(4) for index in range(6)
                                      if (shard, index) != (1, 3))  # the corrupt one is skipped
        return [key[:2] for key in keys]

    one_by_one, mixed = shards_in_order(1), shards_in_order(3)
    assert len(set(one_by_one[:5])) == 1  # one shard after another
    assert len(set(mixed[:3])) == 3 and mixed[3] == mixed[0]  # a photo of each of three shards in turn


@pytest.mark.parametrize("workers, shard_mix", [(0, 1), (2, 1), (0, 3)])
def test_a_saved_position_resumes_the_exact_batch_sequence(shards, workers, shard_mix):
    def iterator(position=None):
        dataset = PhotoStream(resolve_source(shards), Augment(size=32), batch_size=2, seed=1, workers=workers,
                              shard_mix=shard_mix)
        return DataIterator(dataset, workers, position)

    straight = iterator()
    expected = [next(straight)["keys"] for _ in range(14)]  # crosses an epoch boundary (11 batches/epoch)
    straight.close()
    first = iterator()
    got = [next(first)["keys"] for _ in range(5)]
    saved = Position.from_dict(first.position.to_dict())
    first.close()
    resumed = iterator(saved)
    got += [next(resumed)["keys"] for _ in range(9)]
    resumed.close()
    assert got == expected


def test_decoding_workers_leave_ctrl_c_and_sigterm_to_the_trainer(shards):
    """Ctrl-C reaches the whole process group; a worker that died of it would make torch raise in the trainer
    (its SIGCHLD check) while the trainer is writing its last checkpoint."""
    iterator = DataIterator(PhotoStream(resolve_source(shards), Augment(size=32), batch_size=2, workers=1), 1)
    next(iterator)
    workers = multiprocessing.active_children()
    assert len(workers) == 1
    for signum in (signal.SIGINT, signal.SIGTERM):
        os.kill(workers[0].pid, signum)
    time.sleep(0.5)
    assert workers[0].is_alive()
    assert len(next(iterator)["keys"]) == 2
    iterator.close()


def test_fixed_validation_images(tmp_path, shards):
    images, keys = load_fixed_images(shards, count=4, size=32)
    assert images.shape == (4, 3, 32, 32) and images.dtype == torch.uint8
    assert keys[0] == "train-000000.tar/0000"


def test_reads_the_shared_shards(shared_data):
    shard = sorted((shared_data / "train").glob("*.tar"))[0]
    stream = PhotoStream(resolve_source(shard), Augment(size=128), batch_size=8)
    batch = next(iter(stream))
    assert batch["rgb"].shape == (8, 3, 128, 128)
