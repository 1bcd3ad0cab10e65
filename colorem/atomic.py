"""Atomic file writes for every file colorem makes (photos, weights, checkpoints): a temporary name
beside the target, then a rename, so a reader never sees half a file; created with the mode a plain
open() would give under the user's umask."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import BinaryIO, Callable, Union

Content = Union[bytes, Callable[[BinaryIO], object]]


def write_atomic(path: str | os.PathLike, content: Content, *, durable: bool = False) -> Path:
    """Write `content` (bytes, or a function that writes to a binary stream) to `path` atomically.

    durable=True also fsyncs the file before the rename and the folder after it, so the new file survives a
    power cut (weights, checkpoints); an interrupted process never leaves a half-written file either way."""
    path = Path(path)
    temporary, handle = _create_beside(path)
    try:
        with os.fdopen(handle, "wb") as stream:
            if callable(content):
                content(stream)
            else:
                stream.write(content)
            if durable:
                stream.flush()
                os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    if durable:
        fsync_folder(path.parent)
    return path


def _create_beside(path: Path) -> tuple[Path, int]:
    """A new temporary file `.NAME.RANDOM.part` beside `path`. Not tempfile.mkstemp: it creates 0600 whatever
    the umask, and the rename keeps that mode; O_CREAT with 0666 lets the kernel apply the umask (and a
    folder's default ACL) exactly as open() does."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.part")
        try:
            return temporary, os.open(temporary, flags, 0o666)
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name beside {path}")


def fsync_folder(folder: Path) -> None:
    """Make a rename inside `folder` durable (a no-op where folders cannot be opened, e.g. Windows)."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)
