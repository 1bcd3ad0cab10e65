"""Checkpoints that never lose work: complete (model, optimizer, scheduler, scaler, EMA, step, data
position, RNG states, config, format version), written atomically, verified on load by a SHA-256
sidecar, the last N kept. Loading never unpickles objects (torch.load(weights_only=True))."""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
import random
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from colorem.atomic import write_atomic
from colorem.errors import ColoremError

FORMAT = "colorem-checkpoint/1"
REQUIRED = ("format", "step", "model", "optimizer", "scheduler", "config")
_NAME = re.compile(r"^step-(\d{8,})\.pt$")
log = logging.getLogger("colorem.train")


class CheckpointError(ColoremError):
    """A checkpoint is missing, truncated, corrupt or not a colorem checkpoint."""


def checkpoint_dir(run_dir: str | os.PathLike) -> Path:
    return Path(run_dir) / "checkpoints"


def list_checkpoints(run_dir: str | os.PathLike) -> list[Path]:
    """Checkpoints of a run, oldest first."""
    folder = checkpoint_dir(run_dir)
    if not folder.is_dir():
        return []
    found = [(int(match.group(1)), path) for path in folder.iterdir() if (match := _NAME.match(path.name))]
    return [path for _, path in sorted(found)]


def save_checkpoint(run_dir: str | os.PathLike, state: dict[str, Any], keep: int = 3) -> Path:
    """Write checkpoints/step-NNNNNNNN.pt atomically (temporary file, fsync, os.replace), then its
    .sha256 sidecar, then delete all but the newest `keep`. A failed write (full disk, no permission)
    raises CheckpointError naming the path and the reason; the previous checkpoints are left as they were."""
    folder = checkpoint_dir(run_dir)
    state = {**state, "format": FORMAT}
    path = folder / f"step-{int(state['step']):08d}.pt"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for stale in folder.glob(".step-*.part"):  # left by a process killed mid-write (one writer per run)
            stale.unlink(missing_ok=True)
        _write_checkpoint(path, state)
    except (OSError, RuntimeError) as error:
        reason = _os_error(error)
        if reason is None:
            raise
        previous = [found.name for found in list_checkpoints(run_dir) if found != path]
        kept = f"; the previous checkpoint {previous[-1]} is intact" if previous else ""
        raise CheckpointError(f"cannot write checkpoint {path}: {reason.strerror or reason}{kept}") from error
    for old in list_checkpoints(run_dir)[:-keep] if keep > 0 else []:
        old.unlink(missing_ok=True)
        old.with_name(old.name + ".sha256").unlink(missing_ok=True)
    return path


def _write_checkpoint(path: Path, state: dict[str, Any]) -> None:
    digest = hashlib.sha256()
    existed = path.exists()
    write_atomic(path, lambda stream: torch.save(state, _HashingWriter(stream, digest)), durable=True)
    try:
        sidecar = f"{digest.hexdigest()}  {path.name}\n".encode()
        write_atomic(path.with_name(path.name + ".sha256"), sidecar, durable=True)
    except BaseException:
        if not existed:  # unverifiable without its sidecar: the newest checkpoint stays the previous one
            path.unlink(missing_ok=True)
        raise


def _os_error(error: BaseException | None) -> OSError | None:
    """The OSError behind a failed write: torch.save reports a failed write to a file object as a
    RuntimeError from its zip writer, with the OSError (ENOSPC, EACCES...) as its context."""
    seen = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, OSError):
            return error
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return None


class _HashingWriter:
    """A file wrapper that hashes what torch.save writes, so verifying costs no second read at save."""

    def __init__(self, stream, digest):
        self.stream, self.digest = stream, digest

    def write(self, data) -> int:
        self.digest.update(data)
        return self.stream.write(data)

    def flush(self) -> None:
        self.stream.flush()


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Load and verify one checkpoint; raises CheckpointError saying what is wrong with it."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    sidecar = path.with_name(path.name + ".sha256")
    if sidecar.is_file():
        expected = sidecar.read_text().split()[0] if sidecar.read_text().strip() else ""
        actual = hashlib.sha256(path.read_bytes()).hexdigest()
        if expected != actual:
            raise CheckpointError(f"{path}: corrupt or truncated (SHA-256 does not match {sidecar.name})")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:  # torch's message advises weights_only=False, i.e. unpickling: never colorem's
        raise CheckpointError(f"{path} is not a colorem checkpoint: it holds something other than tensors and plain "
                              "containers (or is corrupt), and colorem never unpickles other objects") from None
    except Exception as error:  # noqa: BLE001  (truncated zip, unsafe object...)
        raise CheckpointError(f"{path}: unreadable, probably truncated or corrupt ({type(error).__name__}: "
                              f"{str(error).splitlines()[0] if str(error) else ''})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a {FORMAT} checkpoint")
    missing = [key for key in REQUIRED if key not in state]
    if missing:
        raise CheckpointError(f"{path}: incomplete checkpoint (missing {', '.join(missing)})")
    return state


def load_latest(run_dir: str | os.PathLike) -> tuple[dict[str, Any] | None, Path | None, list[str]]:
    """The newest good checkpoint of a run: (state, path, problems). Bad ones are skipped, each with a
    message in `problems` (also logged as a warning), and the previous one is used."""
    errors: list[str] = []
    for path in reversed(list_checkpoints(run_dir)):
        try:
            state = load_checkpoint(path)
        except CheckpointError as error:
            errors.append(str(error))
            continue
        problems = [f"{error}; falling back to the previous checkpoint" for error in errors]
        for message in problems:
            log.warning(message)
        return state, path, problems
    return None, None, errors  # no checkpoint at all, or none readable: what is wrong with each


def resolve_resume(spec: str, run_dir: str | os.PathLike) -> tuple[dict[str, Any] | None, Path | None, list[str]]:
    """--resume auto (the run's newest good checkpoint, or none: a fresh start), a run folder, or a file."""
    path = Path(run_dir if spec == "auto" else spec)
    if spec == "auto" or path.is_dir():
        state, found, problems = load_latest(path)
        if state is None and problems:
            raise CheckpointError(_all_unreadable(path, problems))
        if state is None and spec != "auto":
            raise CheckpointError(f"no usable checkpoint in {path}")
        return state, found, problems
    return load_checkpoint(path), path, []


def trained_weights(state: dict[str, Any], use_ema: bool = True) -> dict[str, torch.Tensor]:
    """The model weights a checkpoint holds: the EMA's averages where the run kept one (and use_ema), the
    live values for anything the EMA does not average."""
    if use_ema and state.get("ema"):
        return {**state["model"], **state["ema"]["shadow"]}
    return state["model"]


def _all_unreadable(run_dir: Path, problems: list[str]) -> str:
    folder = checkpoint_dir(run_dir)
    return (f"every checkpoint in {folder} is unreadable ({'; '.join(problems)}). Nothing was changed: the files "
            f"are still there. To start the run afresh, move them aside (mv {folder} {folder}.unreadable) or train "
            "into another --out; to continue, restore a good checkpoint into that folder and --resume again.")


# --- RNG states, as plain tensors and lists (weights_only-safe) -------------------------------------
def rng_state() -> dict[str, Any]:
    numpy_state = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {"keys": torch.from_numpy(numpy_state[1].astype(np.int64)), "position": int(numpy_state[2]),
                  "has_gauss": int(numpy_state[3]), "cached_gaussian": float(numpy_state[4])},
        "python": _to_lists(random.getstate()),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    numpy_state = state["numpy"]
    np.random.set_state(("MT19937", numpy_state["keys"].numpy().astype(np.uint32), numpy_state["position"],
                         numpy_state["has_gauss"], numpy_state["cached_gaussian"]))
    random.setstate(_to_tuples(state["python"]))
    if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])


def _to_lists(value):
    return [_to_lists(item) for item in value] if isinstance(value, (tuple, list)) else value


def _to_tuples(value):
    return tuple(_to_tuples(item) for item in value) if isinstance(value, list) else value
