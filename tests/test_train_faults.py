"""Training under faults: repeated SIGKILLs at random moments, a full disk and an unwritable checkpoint
folder. (One SIGKILL, SIGTERM and a truncated checkpoint are in tests/test_train.py.)"""

from __future__ import annotations

import errno
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from colorem import atomic
from colorem.cli import main
from colorem.errors import ColoremError
from colorem.train import Trainer, checkpoint
from colorem.train.checkpoint import list_checkpoints, load_checkpoint, load_latest, resolve_resume
from colorem.train.distributed import DistributedEnv
from tests.conftest import REPO
from tests.test_train import SUBPROCESS_ENV, cli_train_args, one_thread, photos, tiny_config  # noqa: F401 (fixtures)

KILL_SEED = 20240611


def _newest_step(run: Path) -> int:
    found = list_checkpoints(run)
    return int(found[-1].stem.split("-")[1]) if found else 0


def test_repeated_sigkill_at_random_moments_ends_with_the_uninterrupted_weights(photos, tmp_path):
    steps = 60  # the last kill target leaves 30 steps of margin, so no life finishes before its kill
    overrides = [f"run.steps={steps}", "run.checkpoint_every=2", "optim.ema=0.9", "run.log_every=1000"]
    straight = Trainer(tiny_config(photos, *overrides), tmp_path / "straight", env=DistributedEnv())
    straight.fit()

    run = tmp_path / "killed"
    args = [sys.executable, "-m", "colorem", *cli_train_args(photos, run, *overrides), "--resume", "auto"]
    moments = random.Random(KILL_SEED)
    targets = sorted(moments.sample(range(2, steps - 30), 3))  # kill once past each of these steps
    resumed_from = []
    for target in targets:
        before = _newest_step(run)
        process = subprocess.Popen(args, cwd=REPO, env=SUBPROCESS_ENV, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 90
            threshold = max(target, before + 1)  # past the target, and past what an earlier kill left
            while _newest_step(run) < threshold and process.poll() is None and time.monotonic() < deadline:
                time.sleep(0.01)
            time.sleep(moments.uniform(0.0, 0.05))  # a random moment: mid-step, mid-checkpoint-write...
        finally:
            process.send_signal(signal.SIGKILL)
            stderr = process.communicate(timeout=30)[1]
        assert process.returncode == -signal.SIGKILL, f"finished before the kill at step {target}:\n{stderr}"
        if before:
            assert f"(step {before})" in stderr, stderr  # each restart resumed from the newest checkpoint
        resumed_from.append(before)
        assert _newest_step(run) < steps

    before = _newest_step(run)
    result = subprocess.run(args, cwd=REPO, env=SUBPROCESS_ENV, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert f"(step {before})" in result.stderr
    resumed_from.append(before)
    assert resumed_from == sorted(set(resumed_from)), resumed_from  # every life got further than the last
    final, _, problems = load_latest(run)
    assert final["step"] == steps and not problems
    for key, value in straight.model.state_dict().items():
        torch.testing.assert_close(final["model"][key], value, rtol=1e-4, atol=1e-5, msg=key)
    for key, value in straight.ema.shadow.items():
        torch.testing.assert_close(final["ema"]["shadow"][key], value, rtol=1e-4, atol=1e-5, msg=key)
    assert final["scheduler"]["last_epoch"] == straight.scheduler.last_epoch
    assert not list((run / "checkpoints").glob(".*.part"))  # writes cut short by a kill were cleaned up


# --- the disk fails at checkpoint time ------------------------------------------------------------
def _run_to_first_checkpoint(photos, run: Path):
    config = tiny_config(photos, "run.steps=4", "run.checkpoint_every=2")
    Trainer(config, run, env=DistributedEnv()).fit(until=2)
    previous = list_checkpoints(run)
    assert [path.name for path in previous] == ["step-00000002.pt"]
    files = {path.name: path.read_bytes() for path in (run / "checkpoints").iterdir()}
    return config, files


def _assert_previous_checkpoint_intact(run: Path, files: dict[str, bytes]):
    assert {path.name: path.read_bytes() for path in (run / "checkpoints").iterdir()} == files  # nothing left over
    state, path, problems = load_latest(run)
    assert path.name == "step-00000002.pt" and state["step"] == 2 and not problems


def test_full_disk_at_checkpoint_time_is_a_clear_error_and_keeps_the_previous_checkpoint(photos, tmp_path, monkeypatch):
    run = tmp_path / "run"
    config, files = _run_to_first_checkpoint(photos, run)
    written = []
    real_write = checkpoint._HashingWriter.write

    def write_until_the_disk_is_full(self, data):
        written.append(len(data))
        if sum(written) > 64 * 1024:  # the disk fills part-way through the checkpoint
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write(self, data)

    monkeypatch.setattr(checkpoint._HashingWriter, "write", write_until_the_disk_is_full)
    trainer = Trainer(config, run, env=DistributedEnv(), checkpoint=resolve_resume("auto", run)[0])
    with pytest.raises(ColoremError) as failure:
        trainer.fit()
    message = str(failure.value)
    assert str(run / "checkpoints" / "step-00000004.pt") in message
    assert "No space left on device" in message and "step-00000002.pt is intact" in message
    assert trainer.step == 4 and sum(written) > 64 * 1024  # it really trained on and failed mid-write
    _assert_previous_checkpoint_intact(run, files)

    monkeypatch.undo()  # space freed: the run continues from the intact checkpoint
    resumed = Trainer(config, run, env=DistributedEnv(), checkpoint=resolve_resume("auto", run)[0])
    assert resumed.step == 2 and resumed.fit()["step"] == 4
    assert load_checkpoint(list_checkpoints(run)[-1])["step"] == 4


def test_full_disk_while_writing_the_digest_removes_the_unverifiable_checkpoint(photos, tmp_path, monkeypatch):
    run = tmp_path / "run"
    config, files = _run_to_first_checkpoint(photos, run)

    real_write_atomic = checkpoint.write_atomic

    def no_space(path, content, **kwargs):
        if path.name.endswith(".sha256"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write_atomic(path, content, **kwargs)

    monkeypatch.setattr(checkpoint, "write_atomic", no_space)
    trainer = Trainer(config, run, env=DistributedEnv(), checkpoint=resolve_resume("auto", run)[0])
    with pytest.raises(ColoremError, match=r"step-00000004\.pt: No space left on device"):
        trainer.fit()
    _assert_previous_checkpoint_intact(run, files)


def _make_unwritable(folder: Path, monkeypatch) -> None:
    """chmod the folder read-only. Root ignores permission bits (these tests may run as root), so then
    the checkpoint writer's temporary-file call is made to fail exactly as the kernel would for others."""
    folder.chmod(0o555)
    if os.geteuid() != 0:
        return
    real_create_beside = atomic._create_beside

    def create_beside(path):
        if not os.stat(path.parent).st_mode & 0o222:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path.parent))
        return real_create_beside(path)

    monkeypatch.setattr(atomic, "_create_beside", create_beside)


def test_unwritable_checkpoint_folder_is_a_clear_cli_error(photos, tmp_path, monkeypatch, capsys):
    run = tmp_path / "run"
    _, files = _run_to_first_checkpoint(photos, run)
    _make_unwritable(run / "checkpoints", monkeypatch)
    try:
        code = main(cli_train_args(photos, run, "run.steps=4", "run.checkpoint_every=2") + ["--resume", "auto"])
    finally:
        (run / "checkpoints").chmod(0o755)
    error = capsys.readouterr().err
    assert code == 2, error
    assert "resuming" in error and "(step 2)" in error
    assert f"colorem: error: cannot write checkpoint {run / 'checkpoints' / 'step-00000004.pt'}: Permission denied" in error
    assert "step-00000002.pt is intact" in error and "Traceback" not in error
    _assert_previous_checkpoint_intact(run, files)


# --- every checkpoint unreadable ----------------------------------------------------------------------
def test_resume_auto_with_every_checkpoint_corrupt_says_so_once_and_keeps_the_files(photos, tmp_path):
    run = tmp_path / "run"
    Trainer(tiny_config(photos, "run.steps=4", "run.checkpoint_every=2"), run, env=DistributedEnv()).fit()
    for path in list_checkpoints(run):
        path.write_bytes(path.read_bytes()[:500])  # truncated: neither its digest nor torch.load accepts it
    files = {path.name: path.read_bytes() for path in (run / "checkpoints").iterdir()}
    result = subprocess.run([sys.executable, "-m", "colorem", *cli_train_args(photos, run, "run.steps=6"),
                             "--resume", "auto"], cwd=REPO, env=SUBPROCESS_ENV, capture_output=True, text=True,
                            timeout=120)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert len(lines) == 1 and lines[0].startswith("colorem: error: every checkpoint in"), lines
    assert "step-00000002.pt" in lines[0] and "step-00000004.pt" in lines[0] and "Nothing was changed" in lines[0]
    assert "starting a new run" not in result.stderr and "already holds checkpoints" not in result.stderr
    assert {path.name: path.read_bytes() for path in (run / "checkpoints").iterdir()} == files
