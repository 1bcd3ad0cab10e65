"""The folder runner: photos through one loaded model into an output folder. FolderRun is the whole run the CLI
hands over (this rank's share, outputs that exist skipped, every check before any work); colorize_files streams
many photos — decoding in DataLoader workers, one batched forward pass per group, finishing (ab upsampling,
Lab -> RGB, encoding, writing) in a thread pool, results as they finish.

Under `torchrun`, each rank takes its own deterministic share of the sorted inputs (no coordinator); at the end the
ranks wait for each other (`wait_for_other_ranks`), since torchrun stops every rank as soon as one exits non-zero.
"""

from __future__ import annotations

import ctypes
import functools
import os
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Generator, Iterator, Sequence

import torch
from torch.utils.data import DataLoader, Dataset

from colorem.colorize import Colorizer
from colorem.errors import ColoremError, NotEnoughMemoryError, OptionError
from colorem.hints import Hint, HintError, Hints, as_hints, check_inside
from colorem.imageio import FORMATS, QUALITY_RANGE, image_size, write_image
from colorem.limits import check_number
from colorem.outputs import prepare_output, refuse_writing_over_inputs
from colorem.stages import Prepared, finish_image, prepare


@dataclass(frozen=True)
class FolderOptions:
    output: Path
    format: str = "same"  # same | png | jpg | webp | tif
    render_size: int | None = None  # None: the model's
    saturation: float = 1.0
    temperature: float | None = None
    quality: int = 92
    overwrite: bool = False  # False: an output that already exists is left as it is and reported as skipped
    batch_size: int = 8
    workers: int | None = None  # None: one per core, none for a handful of files
    single_file: bool = False  # `output` is the file name itself


def check_folder_options(colorizer: Colorizer, options: FolderOptions) -> int:
    """Every option of a run, against colorem's limits and the model, before any photo is read (an OptionError);
    returns the render size."""
    render_size = colorizer.check_options(options.render_size, options.saturation, options.temperature)
    check_number("quality", options.quality, QUALITY_RANGE, integer=True)
    check_number("batch_size", options.batch_size, (1, None), integer=True)
    if options.workers is not None:
        check_number("workers", options.workers, (0, None), integer=True)
    return render_size


@dataclass(frozen=True)
class ItemResult:
    source: Path
    target: Path | None
    status: str  # "done" | "skipped" | "failed"
    error: str = ""


def rank_share(items: Sequence, rank: int | None = None, world_size: int | None = None) -> list:
    """This process's share: every world_size-th item from `rank`, as torchrun's RANK/WORLD_SIZE say."""
    rank = int(os.environ.get("RANK", 0)) if rank is None else rank
    world_size = int(os.environ.get("WORLD_SIZE", 1)) if world_size is None else world_size
    return list(items[rank::world_size])


def wait_for_other_ranks(timeout_s: float = 7 * 24 * 3600.0) -> None:
    """Under torchrun (WORLD_SIZE > 1), meet the other ranks before exiting: torchrun kills every rank as soon as one
    exits non-zero, so a rank whose share held a broken photo would otherwise cut its peers off mid-share. A gloo
    group joined only here (no coordination during the run), left at once. Port 0 (`--master_port=0`) names no
    store the ranks could meet at: then there is nothing to wait on."""
    if int(os.environ.get("WORLD_SIZE", 1)) < 2 or os.environ.get("MASTER_PORT", "0") == "0":
        return
    import datetime

    import torch.distributed as dist

    # joining takes seconds while torchrun's store is up (minutes at most, so a rank orphaned by a killed torchrun
    # does not linger); the wait itself may take as long as another rank's share of the photos
    dist.init_process_group("gloo", timeout=datetime.timedelta(seconds=300))
    try:
        dist.monitored_barrier(timeout=datetime.timedelta(seconds=timeout_s))
    finally:
        dist.destroy_process_group()


def target_for(options: FolderOptions, relative: Path, has_alpha: bool) -> Path:
    if options.single_file:
        return options.output
    if options.format == "same":
        extension = relative.suffix.lower().lstrip(".")
        if extension not in FORMATS or (has_alpha and FORMATS[extension] == "JPEG"):
            extension = "png"
    else:
        extension = options.format
    return options.output / relative.with_suffix(f".{extension}")


class _Decoded(Dataset):
    """Decodes one file into L at full and render size; failures come back as values, not exceptions."""

    def __init__(self, items: list[tuple[Path, Path]], colorizer: Colorizer, render_size: int):
        self.items, self.colorizer, self.render_size = items, colorizer, render_size

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict:
        source, _ = self.items[index]
        try:
            return {"index": index, "prepared": prepare(source, self.render_size, self.colorizer.max_pixels), "error": ""}
        except (ColoremError, ValueError, OSError) as error:
            return {"index": index, "prepared": None, "error": failure_reason(error)}


def split_existing(items: Sequence[tuple[Path, Path]], options: FolderOptions) -> tuple[list[tuple[Path, Path]], list[tuple[Path, Path]]]:
    """(items to do, (source, existing output) of those done already). An item is done when an output of it
    exists (under either name its alpha could give it) and options.overwrite is off."""
    todo: list[tuple[Path, Path]] = []
    done: list[tuple[Path, Path]] = []
    for source, relative in items:
        existing = [t for t in {target_for(options, relative, False), target_for(options, relative, True)} if t.exists()]
        if existing and not options.overwrite:
            done.append((source, existing[0]))
        else:
            todo.append((source, relative))
    return todo, done


class FolderRun:
    """One run over files: (source, path relative to the output) pairs, into options.output. Made, it has checked
    everything before any photo is colorized (outputs that would replace their input, hints — one photo's, and
    inside it even when its output exists — and the options against the model, the output folder made and
    writable) and put aside this process's share of the work: `todo`, and `done` (outputs that exist; a rerun
    resumes unless options.overwrite). Iterated, it yields one ItemResult per input: the skipped first, then one
    photo through Colorizer.colorize as a library user would write it, or several streamed by colorize_files."""

    def __init__(self, colorizer: Colorizer, items: Sequence[tuple[Path, Path]], options: FolderOptions,
                 hints: Sequence[Hint | dict] = ()):
        self.hints = as_hints(hints) if hints else Hints()
        targets = [(source, target_for(options, relative, alpha)) for source, relative in items for alpha in (False, True)]
        if self.hints and len(items) > 1:
            raise HintError(f"hints are in one photo's pixels: give exactly one input photo with hints (--hint/--hints), "
                            f"not {len(items)}")
        self.colorizer, self.options, self.one_photo = colorizer, options, len(items) == 1
        self.todo, self.done = split_existing(rank_share(items), options)
        if self.hints and self.done:  # skipped, but a hint outside the photo is still a usage error, not "skipped 1"
            check_inside(self.hints, image_size(self.done[0][0]))
        if self.hints:  # for a model without a hint input: refused before any photo is read
            colorizer.check_hints([self.hints], 1)
        check_folder_options(colorizer, options)
        refuse_writing_over_inputs(targets, options.output)
        prepare_output(options.output, options.single_file)

    def __iter__(self) -> Iterator[ItemResult]:
        for source, target in self.done:
            yield ItemResult(source, target, "skipped")
        if self.one_photo and self.todo:
            yield colorize_one(self.colorizer, *self.todo[0], self.options, self.hints)
        elif self.todo:
            yield from colorize_files(self.colorizer, self.todo, self.options)


def colorize_one(colorizer: Colorizer, source: Path, relative: Path, options: FolderOptions,
                 hints: Sequence[Hint] = ()) -> ItemResult:
    """The one-file case, as a library user would write it: Colorizer.colorize, then the file written where
    the folder runner would write it. A usage error (an option, a hint) raises; anything else fails the file."""
    try:
        image = colorizer.colorize(source, options.render_size, options.saturation, options.temperature, hints or None)
        target = target_for(options, relative, has_alpha=image.mode == "RGBA")
        write_image(image, target, quality=options.quality)
    except (OptionError, HintError):
        raise
    except (ColoremError, ValueError, OSError, MemoryError) as error:
        return ItemResult(source, None, "failed", failure_reason(error))
    return ItemResult(source, target, "done")


def colorize_files(colorizer: Colorizer, items: Sequence[tuple[Path, Path]], options: FolderOptions) -> Iterator[ItemResult]:
    """Colorize (source, path relative to the output) pairs; yields one ItemResult per input as it finishes.
    An output that exists already is skipped (a rerun resumes) unless options.overwrite."""
    render_size = check_folder_options(colorizer, options)
    todo, done = split_existing(items, options)
    for source, target in done:
        yield ItemResult(source, target, "skipped")
    if not todo:
        return
    _reuse_freed_memory()
    claimed: set[Path] = set()
    pending: deque[tuple[Path, Path, Future]] = deque()  # (source, target, its finishing and writing)
    with ThreadPoolExecutor(max_workers=2) as finishers:
        for batch in _decoded_batches(colorizer, todo, render_size, options):
            good = yield from _claim_targets(batch, todo, options, claimed)
            if good:
                pending.extend((yield from _predict_and_finish(colorizer, good, options, finishers)))
            while pending and (pending[0][2].done() or len(pending) > 4 * options.batch_size):
                yield _collect(*pending.popleft())
        while pending:
            yield _collect(*pending.popleft())


def _decoded_batches(colorizer: Colorizer, todo: list[tuple[Path, Path]], render_size: int,
                     options: FolderOptions) -> DataLoader:
    """Batches of decoded photos (lists of _Decoded items), decoded in worker processes for many files."""
    workers = options.workers if options.workers is not None else (0 if len(todo) < 16 else min(4, os.cpu_count() or 1))
    return DataLoader(_Decoded(todo, colorizer, render_size), batch_size=options.batch_size, num_workers=workers,
                      collate_fn=list, prefetch_factor=4 if workers else None, worker_init_fn=_one_thread)


def _claim_targets(batch: list[dict], todo: list[tuple[Path, Path]], options: FolderOptions,
                   claimed: set[Path]) -> Generator[ItemResult, None, list[tuple[Path, Path, Prepared]]]:
    """Yields the failures of a batch (unreadable, or an output another input already maps to); returns the
    (source, target, prepared photo) of the rest."""
    good = []
    for item in batch:
        source, relative = todo[item["index"]]
        if item["prepared"] is None:
            yield ItemResult(source, None, "failed", item["error"])
            continue
        target = target_for(options, relative, item["prepared"].alpha is not None)
        if target in claimed:
            yield ItemResult(source, target, "failed", f"another input already maps to {target}")
            continue
        claimed.add(target)
        good.append((source, target, item["prepared"]))
    return good


def _predict_and_finish(colorizer: Colorizer, good: list[tuple[Path, Path, Prepared]], options: FolderOptions,
                        finishers: ThreadPoolExecutor) -> Generator[ItemResult, None, list[tuple[Path, Path, Future]]]:
    """One forward pass for the group, then each photo finished and written in the pool: returns (source,
    target, future) per photo. Yields the group's failures when the network's activations do not fit in memory."""
    try:
        ab_small = colorizer.predict_ab(torch.cat([prepared.l_small for _, _, prepared in good]), options.temperature)
    except NotEnoughMemoryError as error:
        for source, target, _ in good:
            yield ItemResult(source, target, "failed", failure_reason(error))
        return []
    return [(source, target, finishers.submit(_finish_and_write, prepared, ab[None], options, target))
            for (source, target, prepared), ab in zip(good, ab_small)]


@functools.cache
def _reuse_freed_memory() -> None:
    """glibc hands large freed blocks back to the OS, so each photo's full-size tensors page-fault afresh:
    15 of 76 ms of CPU per 384-640 px photo went to the kernel. Keeping blocks up to 32 MB in the heap
    halved that and took the folder run from 23.3 to 25.1 img/s (render 192, this 2-core CPU).
    No-op where the C library is not glibc."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return
    m_trim_threshold, m_top_pad, m_mmap_threshold = -1, -2, -3
    libc.mallopt(m_mmap_threshold, 32 << 20)
    libc.mallopt(m_trim_threshold, 1 << 30)
    libc.mallopt(m_top_pad, 64 << 20)


def _one_thread(_worker_id: int) -> None:
    torch.set_num_threads(1)  # decoding workers share the cores with the model


def _finish_and_write(prepared: Prepared, ab_small: torch.Tensor, options: FolderOptions, target: Path) -> None:
    image = finish_image(prepared, ab_small, options.saturation)
    write_image(image, target, quality=options.quality)


def _collect(source: Path, target: Path, future: Future) -> ItemResult:
    try:
        future.result()
    except (ColoremError, ValueError, OSError, MemoryError) as error:
        return ItemResult(source, target, "failed", failure_reason(error))
    return ItemResult(source, target, "done")


def failure_reason(error: Exception) -> str:
    """What to print after "failed: SOURCE: " (a memory failure names its photo already; a plain MemoryError
    comes from encoding the result, since finish() turns its own into NotEnoughMemoryError)."""
    if isinstance(error, NotEnoughMemoryError):
        return error.reason
    return "not enough memory to encode the result" if isinstance(error, MemoryError) else str(error)
