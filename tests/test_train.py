"""Training: config, losses, overfitting, exact resume, crashes and signals, corrupt checkpoints, DDP, export."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import colorem
from colorem.color import ab_bins
from colorem.train import Trainer, load_config
from colorem.train.checkpoint import list_checkpoints, load_latest, resolve_resume
from colorem.train.config import Config, ConfigError, apply_overrides, saved_config
from colorem.train.distributed import DistributedEnv
from colorem.train.export import export
from colorem.train.losses import CLASSIFICATION_LOSSES, LOSSES, BinGrid, ColorLoss, rebalancing_weights
from colorem.models import create_model
from colorem.weights import ModelCard, packaged_weights, save_weights
from tests.conftest import REPO, photo

TINY = ["model.architecture=color-em-tiny", "data.size=32", "data.batch_size=4", "data.workers=0",
        "data.validation_count=4", "data.grid_count=2", "run.log_every=1", "run.validate_every=0",
        "run.tensorboard=false", "optim.warmup_steps=0", "run.precision=fp32"]


@pytest.fixture(autouse=True)
def one_thread():
    """Two cores shared with other jobs: one intra-op thread is several times faster for a tiny model."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


SUBPROCESS_ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("photos")
    for index in range(8):
        photo(32, 32, seed=index).rotate(90 * (index % 4)).save(folder / f"photo{index}.png")
    return folder


def tiny_config(photos: Path, *overrides: str) -> Config:
    return load_config(None, TINY + [f"data.train={json.dumps([str(photos)])}", *overrides])


def cli(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "colorem", *args], capture_output=True, text=True, cwd=REPO,
                          timeout=120, env=SUBPROCESS_ENV, **kwargs)


def cli_train_args(photos: Path, out: Path, *overrides: str) -> list[str]:
    sets = [item for override in TINY + list(overrides) for item in ("--set", override)]
    return ["train", "--data", str(photos), "--out", str(out), "--no-progress", *sets]


# --- config -------------------------------------------------------------------------------------
@pytest.mark.parametrize("preset", sorted((REPO / "configs").glob("*.toml")), ids=lambda path: path.name)
def test_presets_load_and_validate(preset):
    config = load_config(preset)
    assert config.to_dict()["model"]["architecture"]


def test_overrides_are_parsed_and_type_checked():
    config = apply_overrides(Config(), ["optim.lr=1e-3", "data.hflip=false", "optim.betas=[0.8, 0.9]",
                                        "run.steps=7", "data.validation=/photos/val", "data.train=a.tar,b.tar"])
    assert (config.optim.lr, config.data.hflip, config.optim.betas, config.run.steps) == (1e-3, False, [0.8, 0.9], 7)
    assert config.data.validation == "/photos/val" and config.data.train == ["a.tar", "b.tar"]
    with pytest.raises(ConfigError, match="expected int"):
        apply_overrides(Config(), ["run.steps=many"])
    with pytest.raises(ConfigError, match="unknown key"):
        apply_overrides(Config(), ["optim.learning_rate=1"])
    with pytest.raises(ConfigError, match="needs model.head"):
        apply_overrides(Config(), ["loss.name=classification"]).validate()
    assert Config.from_dict(Config().to_dict()) == Config()


def test_a_run_saved_before_a_key_existed_resumes_as_it_ran():
    saved = Config().to_dict()
    del saved["data"]["shard_mix"]  # a checkpoint written before streams mixed their shards
    assert saved_config(saved).data.shard_mix == 1 and Config().data.shard_mix == 8
    assert saved_config(Config().to_dict()) == Config()
    # the shipped models' recipes read their shards as they did when those models were trained
    recipes = ("default.toml", "default-v2.toml", "default-v3.toml")
    assert {load_config(REPO / "configs" / name).data.shard_mix for name in recipes} == {1}


@pytest.mark.parametrize("override, message", [("run.steps=many", "run.steps: expected int, got str 'many'"),
                                               ("optim.learning_rate=1", "unknown key 'optim.learning_rate'"),
                                               ("model.skips=maybe", "model.skips: expected bool"),
                                               ("optim.lr=nan", "optim.lr must be a number from 1e-12 to 10, not nan"),
                                               ("optim.lr=-1", "optim.lr must be a number"),
                                               ("data.zoom=inf", "data.zoom must be a number"),
                                               ("model.architecture=nope", "model.architecture: unknown 'nope'"),
                                               ("model.head=xyz", "model.head must be one of"),
                                               ("model.upsample=bogus", "model.upsample must be one of"),
                                               ("model.embedder=bogus", "model.embedder must be one of"),
                                               ("model.embed_dim=-5", "model.embed_dim must be from 0"),
                                               ("optim.betas=[0.9,0.99,0.5]", "optim.betas must be two numbers"),
                                               ("data.workers=-1", "data.workers must be at least 0"),
                                               ("run.log_every=0", "run.log_every"),
                                               ("run.checkpoint_every=0", "run.checkpoint_every")])
def test_a_bad_override_is_a_usage_error_of_one_line(tmp_path, capsys, override, message):
    from colorem.cli import main

    assert main(["train", "--out", str(tmp_path / "run"), "--set", override]) == 2
    error = capsys.readouterr().err
    assert error.startswith("colorem: error: ") and message in error and len(error.splitlines()) == 1
    assert not (tmp_path / "run").exists()  # nothing written


def test_a_missing_prior_file_is_one_line_and_exit_2(photos, tmp_path, capsys):
    from colorem.cli import main

    args = cli_train_args(photos, tmp_path / "run", "run.steps=1", "model.head=classification", "loss.name=classification",
                          f"loss.prior_file={tmp_path / 'nonexist.json'}")
    assert main(args) == 2  # once a FileNotFoundError traceback
    error = capsys.readouterr().err.splitlines()[-1]
    assert error.startswith("colorem: error: cannot read the ab prior") and "nonexist.json" in error


def test_an_output_that_is_a_file_or_another_network_to_resume_is_one_line_and_exit_2(photos, tmp_path, capsys):
    from colorem.cli import main

    (tmp_path / "afile").write_text("not a run folder")
    assert main(cli_train_args(photos, tmp_path / "afile", "run.steps=1")) == 2
    assert capsys.readouterr().err.splitlines()[-1] == f"colorem: error: --out {tmp_path / 'afile'} is a file; give a folder"
    run = tmp_path / "run"
    assert main(cli_train_args(photos, run, "run.steps=1")) == 0
    capsys.readouterr()
    assert main([*cli_train_args(photos, run, "run.steps=2", "model.architecture=color-em-half"), "--resume", "auto"]) == 2
    error = capsys.readouterr().err.splitlines()[-1]  # once a page of load_state_dict size mismatches
    assert error.startswith("colorem: error: ") and "model.architecture='color-em-tiny'" in error
    assert "asks for 'color-em-half'" in error and len(list_checkpoints(run)) == 1


@pytest.mark.parametrize("weights, message", [("missing.safetensors", "No such file"), ("junk.safetensors", "header")])
def test_init_from_weights_that_cannot_be_read_is_a_usage_error_of_one_line(photos, tmp_path, capsys, weights, message):
    from colorem.cli import main

    (tmp_path / "junk.safetensors").write_bytes(b"junk")
    args = cli_train_args(photos, tmp_path / "run", "run.steps=1")
    assert main([*args, "--init-from", str(tmp_path / weights)]) == 2
    error = capsys.readouterr().err.splitlines()
    assert error[-1].startswith("colorem: error: ") and "not a readable safetensors file" in error[-1] and message in error[-1]
    assert not any("Traceback" in line for line in error)


# --- losses ---------------------------------------------------------------------------------------
def test_bin_grid_matches_brute_force_and_soft_weights_sum_to_one():
    bins = ab_bins()
    grid = BinGrid(bins)
    ab = (torch.rand(2, 2, 8, 8) - 0.5) * 160
    in_range = ab.abs().amax(dim=1) < 100
    brute = torch.cdist(ab.permute(0, 2, 3, 1).reshape(-1, 2), bins).argmin(dim=1).view(2, 8, 8)
    # the grid lookup equals the brute-force nearest bin wherever the grid cell itself is in gamut
    agree = (grid.nearest(ab) == brute) | ~in_range
    assert agree.float().mean() > 0.9
    indices, weights = grid.soft(ab)
    assert torch.allclose(weights.sum(dim=1), torch.ones(2, 8, 8))
    assert indices.max() < len(bins)


def test_rebalancing_weights_favour_rare_colours():
    bins = ab_bins()
    prior = torch.exp(-(bins ** 2).sum(1) / 200.0)  # most mass near gray
    prior = prior / prior.sum()
    weights = rebalancing_weights(prior, bins, 0.5)
    gray, vivid = (bins ** 2).sum(1).argmin(), (bins ** 2).sum(1).argmax()
    assert weights[vivid] > 5 * weights[gray]
    assert torch.allclose(rebalancing_weights(prior, bins, 1.0), torch.ones(len(bins)), atol=1e-5)


@pytest.mark.parametrize("name", LOSSES)
def test_every_loss_gives_gradients(name):
    head = "classification" if name in CLASSIFICATION_LOSSES else "regression"
    model = colorem.models.create_model("color-em-tiny", head=head)
    loss_function = ColorLoss(name, bins=getattr(model, "bins", None), prior=torch.ones(len(ab_bins())) / 222)
    l = torch.rand(2, 1, 32, 32) * 100
    ab = (torch.rand(2, 2, 32, 32) - 0.5) * 100
    loss, parts = loss_function(model(l, raw=True), ab)
    loss.backward()
    assert torch.isfinite(loss) and parts
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


def test_the_colorful_loss_charges_only_an_annealed_mean_grayer_than_the_photo():
    bins = ab_bins()
    loss_function = ColorLoss("colorful", bins=bins, colorfulness_weight=2.0, temperature=0.38)
    ab = torch.zeros(2, 2, 8, 8)
    ab[:, 0] = 60.0  # a strongly red photo
    vivid = torch.zeros(2, len(bins), 8, 8)
    red = torch.cdist(bins.float(), torch.tensor([[60.0, 0.0]])).argmin()
    vivid[:, red] = 20.0  # sure of that red
    loss, parts = loss_function(vivid, ab)
    assert parts["chroma_shortfall"] == 0.0 and loss == parts["ce"]
    unsure = torch.zeros(2, len(bins), 8, 8, requires_grad=True)  # every colour alike: an annealed mean near gray
    loss, parts = loss_function(unsure, ab)
    assert parts["chroma_shortfall"] > 0.3  # of 60 / 128 ≈ 0.47 missing
    assert torch.isclose(loss, parts["ce"] + 2.0 * parts["chroma_shortfall"])
    loss.backward()
    plain = ColorLoss("classification", bins=bins)
    plain_unsure = unsure.detach().clone().requires_grad_()
    plain(plain_unsure, ab)[0].backward()
    # gradient descent raises the red bin's logit faster with the penalty than with the classification alone
    assert unsure.grad[:, red].sum() < plain_unsure.grad[:, red].sum()


# --- the loop -----------------------------------------------------------------------------------
def test_tiny_model_overfits_eight_images(photos, tmp_path):
    config = tiny_config(photos, "run.steps=400", "optim.lr=3e-3", "data.hflip=false", "data.batch_size=8",
                         "run.checkpoint_every=1000", "optim.weight_decay=0")
    trainer = Trainer(config, tmp_path / "run", env=DistributedEnv())
    trainer.fit()
    losses = [json.loads(line)["loss"] for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
              if "loss" in line]
    assert losses[-1] < losses[0] / 5, (losses[0], losses[-1])
    assert (tmp_path / "run" / "samples" / "step-00000400.png").is_file()


def _train_recording(trainer: Trainer, until=None) -> list:
    seen: list = []
    trainer.data.on_batch = lambda batch: seen.append(batch["keys"])
    trainer.fit(until)
    return seen


def test_two_steps_save_resume_one_step_equals_three_straight_steps(photos, tmp_path):
    overrides = ["run.steps=3", "data.workers=2", "data.shuffle_buffer=3", "optim.ema=0.9", "optim.accumulate=2",
                 "data.rotation=10", "data.zoom=0.1"]
    straight = Trainer(tiny_config(photos, *overrides), tmp_path / "straight", env=DistributedEnv())
    straight_keys = _train_recording(straight)

    first = Trainer(tiny_config(photos, *overrides), tmp_path / "resumed", env=DistributedEnv())
    resumed_keys = _train_recording(first, until=2)
    assert [p.name for p in list_checkpoints(tmp_path / "resumed")] == ["step-00000002.pt"]
    state, _, _ = resolve_resume("auto", tmp_path / "resumed")
    second = Trainer(Config.from_dict(state["config"]), tmp_path / "resumed", env=DistributedEnv(), checkpoint=state)
    resumed_keys += _train_recording(second)

    assert resumed_keys == straight_keys  # same data order across the restart
    for key, value in straight.model.state_dict().items():
        torch.testing.assert_close(second.model.state_dict()[key], value, rtol=1e-5, atol=1e-6, msg=key)
    for key, value in straight.ema.shadow.items():
        torch.testing.assert_close(second.ema.shadow[key], value, rtol=1e-5, atol=1e-6)
    assert second.scheduler.get_last_lr() == straight.scheduler.get_last_lr()


def test_a_run_refuses_to_overwrite_checkpoints_without_resume(photos, tmp_path):
    Trainer(tiny_config(photos, "run.steps=1"), tmp_path / "run", env=DistributedEnv()).fit()
    with pytest.raises(colorem.ColoremError, match="--resume auto"):
        Trainer(tiny_config(photos, "run.steps=1"), tmp_path / "run", env=DistributedEnv())


def test_truncated_checkpoint_falls_back_to_the_previous_one(photos, tmp_path, caplog):
    run = tmp_path / "run"
    Trainer(tiny_config(photos, "run.steps=4", "run.checkpoint_every=2"), run, env=DistributedEnv()).fit()
    newest = list_checkpoints(run)[-1]
    newest.write_bytes(newest.read_bytes()[:1000])  # truncated, sidecar digest no longer matches
    state, path, problems = load_latest(run)
    assert state["step"] == 2 and path.name == "step-00000002.pt"
    assert "step-00000004.pt" in problems[0] and "falling back to the previous checkpoint" in problems[0]
    assert "corrupt or truncated" in caplog.text
    newest.with_name(newest.name + ".sha256").unlink()  # without a sidecar, torch.load itself must notice
    state, _, problems = load_latest(run)
    assert state["step"] == 2 and "unreadable" in problems[0]
    result = cli(*cli_train_args(photos, run, "run.steps=5"), "--resume", "auto")
    assert result.returncode == 0, result.stderr
    assert "falling back to the previous checkpoint" in result.stderr and "(step 2)" in result.stderr


def _wait_for(predicate, process, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        if process.poll() is not None:
            raise AssertionError(f"training exited early: {process.stderr.read()}")
        time.sleep(0.05)
    raise AssertionError("timed out")


def test_sigkill_mid_training_resumes_from_the_last_checkpoint(photos, tmp_path):
    run = tmp_path / "run"
    args = cli_train_args(photos, run, "run.steps=100000", "run.checkpoint_every=3", "run.log_every=1000")
    process = subprocess.Popen([sys.executable, "-m", "colorem", *args], cwd=REPO, stderr=subprocess.PIPE, text=True,
                               env=SUBPROCESS_ENV)
    try:
        _wait_for(lambda: len(list_checkpoints(run)) >= 2, process)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    last = list_checkpoints(run)[-1]
    step = int(last.stem.split("-")[1])
    result = cli(*cli_train_args(photos, run, f"run.steps={step + 2}", "run.checkpoint_every=3"), "--resume", "auto")
    assert result.returncode == 0, result.stderr
    assert f"(step {step})" in result.stderr
    assert load_latest(run)[0]["step"] == step + 2


def test_sigterm_writes_a_checkpoint_and_exits_cleanly(photos, tmp_path):
    run = tmp_path / "run"
    args = cli_train_args(photos, run, "run.steps=100000", "run.checkpoint_every=100000", "run.log_every=1")
    process = subprocess.Popen([sys.executable, "-m", "colorem", *args], cwd=REPO, stderr=subprocess.PIPE, text=True,
                               env=SUBPROCESS_ENV)
    try:
        _wait_for(lambda: (run / "metrics.jsonl").is_file() and len((run / "metrics.jsonl").read_text().splitlines()) >= 3, process)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 128 + signal.SIGTERM  # stopped, not done: `train && export` stops too
    finally:
        if process.poll() is None:
            process.kill()
    assert "stopped by SIGTERM" in process.stderr.read()
    state, _, _ = load_latest(run)
    assert state["step"] >= 3


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_to_the_whole_process_group_still_saves_and_resumes(photos, tmp_path, signum):
    """Ctrl-C in a terminal (or `pkill -f`) reaches the DataLoader workers as well as the trainer."""
    run = tmp_path / "run"
    args = cli_train_args(photos, run, "run.steps=100000", "run.checkpoint_every=2", "run.log_every=1",
                          "data.workers=1")
    process = subprocess.Popen([sys.executable, "-m", "colorem", *args], cwd=REPO, stderr=subprocess.PIPE, text=True,
                               env=SUBPROCESS_ENV, start_new_session=True)
    try:
        _wait_for(lambda: len(list_checkpoints(run)) >= 2, process)
        os.killpg(process.pid, signum)
        assert process.wait(timeout=60) == 128 + signum, process.stderr.read()
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    stderr = process.stderr.read()
    assert f"stopped by {signum.name}" in stderr and "Traceback" not in stderr, stderr
    state, _, problems = load_latest(run)
    assert not problems and state["step"] >= 2
    result = cli(*cli_train_args(photos, run, f"run.steps={state['step'] + 1}", "data.workers=1"), "--resume", "auto")
    assert result.returncode == 0, result.stderr
    assert load_latest(run)[0]["step"] == state["step"] + 1


def test_classification_run_stores_its_ab_prior_and_exports(photos, tmp_path):
    run = tmp_path / "run"
    config = tiny_config(photos, "model.head=classification", "loss.name=mix", "loss.rebalance=0.8",
                         "loss.prior_images=8", "run.steps=2")
    summary = Trainer(config, run, env=DistributedEnv()).fit()
    assert summary["status"] == "completed"
    prior = json.loads((run / "ab_prior.json").read_text())["prior"]
    assert abs(sum(prior) - 1) < 1e-4
    assert load_latest(run)[0]["ab_prior"] == pytest.approx(prior)
    # a calibrated temperature goes into the card and becomes the loaded model's default
    export(run, tmp_path / "calibrated.safetensors", temperature=0.5)
    colorizer = colorem.load(tmp_path / "calibrated.safetensors")
    assert colorizer.card.architecture_options["temperature"] == 0.5 and colorizer.model.temperature == 0.5
    # exported weights take new calibrated settings without their run (trained elsewhere): same weights
    result = cli("export", str(tmp_path / "calibrated.safetensors"), "-o", str(tmp_path / "recarded.safetensors"),
                 "--temperature", "1.0", "--vibrance", "0.6", "--cast-removal", "0.25", "--render-size", "48",
                 "--name", "default")
    assert result.returncode == 0, result.stderr
    recarded = colorem.load(tmp_path / "recarded.safetensors")
    assert recarded.model.temperature == 1.0 and recarded.card.vibrance == 0.6 and recarded.card.render_size == 48
    assert recarded.card.cast_removal == 0.25 and recarded.cast_removal == 0.25
    assert recarded.card.name == "default" and recarded.card.provenance["recarded_from"] == "calibrated.safetensors"
    for key, value in colorizer.model.state_dict().items():
        assert torch.equal(recarded.model.state_dict()[key], value)
    # undoing the rebalancing: the logits shift by -strength * log(rebalancing weights), the rest is unchanged
    result = cli("export", str(tmp_path / "recarded.safetensors"), "-o", str(tmp_path / "corrected.safetensors"),
                 "--prior-correction", "0.5", "--ab-prior", str(run / "ab_prior.json"))
    assert result.returncode == 0, result.stderr
    corrected = colorem.load(tmp_path / "corrected.safetensors", precision="fp32")
    assert corrected.card.provenance["prior_correction"] == {"strength": 0.5, "rebalance": 0.8}
    shift = -0.5 * rebalancing_weights(torch.tensor(prior), recarded.model.bins, 0.8).log()
    l = torch.rand(1, 1, 32, 32) * 100
    with torch.no_grad():
        delta = corrected.model(l, raw=True) - recarded.model.float()(l, raw=True)
    torch.testing.assert_close(delta, shift[None, :, None, None].expand_as(delta), atol=1e-4, rtol=1e-4)
    assert not torch.allclose(corrected.model(l), recarded.model(l), atol=1e-2)
    again = cli("export", str(tmp_path / "corrected.safetensors"), "-o", str(tmp_path / "twice.safetensors"),
                "--prior-correction", "0.5", "--ab-prior", str(run / "ab_prior.json"))
    assert again.returncode == 2 and again.stderr.count("\n") == 1 and "already prior-corrected" in again.stderr
    # a negative strength undoes it (to continue training the raw logits): the weights come back
    undone = cli("export", str(tmp_path / "corrected.safetensors"), "-o", str(tmp_path / "undone.safetensors"),
                 "--prior-correction", "-0.5", "--ab-prior", str(run / "ab_prior.json"))
    assert undone.returncode == 0, undone.stderr
    raw = colorem.load(tmp_path / "undone.safetensors", precision="fp32")
    assert "prior_correction" not in raw.card.provenance
    for key, value in recarded.model.state_dict().items():
        torch.testing.assert_close(raw.model.state_dict()[key], value, atol=1e-5, rtol=1e-5)
    wrong = cli("export", str(tmp_path / "recarded.safetensors"), "-o", str(tmp_path / "wrong.safetensors"),
                "--prior-correction", "-1", "--ab-prior", str(run / "ab_prior.json"))
    assert wrong.returncode == 2 and wrong.stderr.count("\n") == 1 and "undoes an earlier correction" in wrong.stderr
    # a run brings its own prior
    export(run, tmp_path / "from-run.safetensors", prior_correction=1.0)
    assert colorem.load(tmp_path / "from-run.safetensors").card.provenance["prior_correction"]["strength"] == 1.0


def test_a_continued_run_averages_with_the_run_it_continued(photos, tmp_path):
    first, second = tmp_path / "first", tmp_path / "second"
    Trainer(tiny_config(photos, "run.steps=1"), first, env=DistributedEnv()).fit()
    before = export(first, tmp_path / "before.safetensors")
    Trainer(tiny_config(photos, "run.steps=2", "optim.lr=0.05"), second, env=DistributedEnv(), init_from=str(before)).fit()
    result = cli("export", str(second), "-o", str(tmp_path / "soup.safetensors"), "--average-with", str(before))
    assert result.returncode == 0, result.stderr
    soup, one = colorem.load(tmp_path / "soup.safetensors", precision="fp32"), colorem.load(before, precision="fp32")
    after = colorem.load(export(second, tmp_path / "after.safetensors"), precision="fp32")
    assert soup.card.provenance["averaged_with"] == {"name": "before.safetensors", "trained_steps": 1}
    moved, first, last = 0, one.model.state_dict(), after.model.state_dict()
    for key, value in soup.model.state_dict().items():
        torch.testing.assert_close(value, (first[key] + last[key]) / 2, atol=1e-6, rtol=1e-6)
        moved += int(not torch.equal(value, last[key]))
    assert moved > 0  # the two runs differ, so the mean is neither
    other = tmp_path / "other.safetensors"
    save_weights(create_model("color-em-half"), ModelCard(architecture="color-em-half", render_size=32), other)
    for arguments, message in ([str(other)], "not the same network"), ([str(before), "--prior-correction", "1"],
                                                                        "average raw weights first"):
        wrong = cli("export", str(second), "-o", str(tmp_path / "wrong.safetensors"), "--average-with", *arguments)
        assert wrong.returncode == 2 and wrong.stderr.count("\n") == 1 and message in wrong.stderr, wrong.stderr
    assert not (tmp_path / "wrong.safetensors").exists()


def test_frozen_embedder_outputs_are_cached(photos, tmp_path):
    config = tiny_config(photos, "model.freeze_embedder=true", "run.cache_embeddings=true", "run.steps=3",
                         "data.hflip=false")
    trainer = Trainer(config, tmp_path / "run", env=DistributedEnv())
    embedder_before = {k: v.clone() for k, v in trainer.model.embedder.state_dict().items()}
    embedded, given, keys = [], [], []  # photos the embedder ran on; the embeddings the network was given, per batch
    def training(record):  # the final validation runs the model in eval mode, on other photos
        return lambda module, args, *rest: record(module, args, *rest) if module.training else None
    trainer.model.embedder.register_forward_hook(training(lambda module, args, output: embedded.append(len(output))))
    trainer.model.register_forward_pre_hook(training(lambda module, args, kwargs: given.append(args[1])), with_kwargs=True)
    trainer.data.on_batch = lambda batch: keys.append(batch["keys"])
    trainer.fit()
    assert len(trainer.embedding_cache) == 8
    key = next(iter(trainer.embedding_cache))
    assert trainer.embedding_cache[key].shape == (trainer.model.embedder.dim,)
    for name, value in trainer.model.embedder.state_dict().items():
        assert torch.equal(value, embedder_before[name])
    # 3 steps of 4 photos from 8: the embedder ran once per photo, and every step the network got the cached vectors
    assert sum(len(batch) for batch in keys) == 12 and sum(embedded) == 8
    assert len(given) == 3
    for batch_keys, embedding in zip(keys, given):
        assert torch.equal(embedding, torch.stack([trainer.embedding_cache[key] for key in batch_keys]).float())


def test_a_frozen_learned_embedder_is_not_trained_but_is_shipped(photos, tmp_path):
    """frozen (not trained: cacheable) is not external (weights kept in their own file): export keeps it."""
    from safetensors import safe_open

    run = tmp_path / "run"
    trainer = Trainer(tiny_config(photos, "model.freeze_embedder=true", "run.steps=1"), run, env=DistributedEnv())
    assert trainer.model.embedder.frozen and not trainer.model.embedder.external
    trainer.fit()
    path = export(run, tmp_path / "frozen.safetensors")
    with safe_open(str(path), framework="pt") as stored:
        assert any(key.startswith("embedder.") for key in stored.keys())
    loaded = colorem.load(path).model.embedder
    assert not loaded.frozen  # a plain learned embedder again, as inference builds it
    for key, value in trainer.model.embedder.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value)


@pytest.mark.parametrize("frozen_bn", [True, False])
def test_frozen_batch_norm_keeps_the_encoder_statistics_while_training(photos, tmp_path, frozen_bn):
    """The trainer puts the network in its own training mode: with frozen_bn the encoder's batch-norm statistics
    stay as they started (ImageNet's); without, they follow the training batches."""
    config = tiny_config(photos, "model.architecture=effnet-lite0-unet", "model.head=classification",
                         "loss.name=classification", "model.pretrained=false", "run.steps=2",
                         f"model.options={{frozen_bn={str(frozen_bn).lower()}}}")
    trainer = Trainer(config, tmp_path / "run", env=DistributedEnv())
    before = trainer.model.encoder._bn0.running_mean.clone()
    trainer.fit()
    assert torch.equal(trainer.model.encoder._bn0.running_mean, before) == frozen_bn
    assert trainer.model.decoder[0].training  # the decoder's own batch norm trains either way


def test_a_classifier_embedding_is_kept_near_the_classifier_it_started_from(photos, tmp_path):
    """loss.semantic_weight: the teacher is the pretrained ImageNet classifier on colour (its RGB stem, which sees a
    gray photo as the network's summed stem does), and the divergence from it is trained and logged."""
    config = tiny_config(photos, "model.architecture=effnet-lite0-unet", "model.head=classification",
                         "loss.name=classification", "loss.semantic_weight=0.5", "run.steps=2", "data.size=64",
                         "optim.ema=0.9")  # EMA: validation copies the network, which must hold no graph
    trainer = Trainer(config, tmp_path / "run", env=DistributedEnv())
    gray = torch.rand(2, 1, 64, 64)
    encoder = trainer.model.encoder
    with torch.no_grad():
        own = encoder.classify(encoder.features(gray / 0.5 - 1.0)[0])
        torch.testing.assert_close(trainer.teacher(gray.expand(-1, 3, -1, -1)), own, atol=1e-3, rtol=1e-3)
    assert trainer.fit()["status"] == "completed"
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    divergences = [record["semantic_kl"] for record in records if "semantic_kl" in record]
    assert divergences and all(value > 0 for value in divergences)
    with pytest.raises(ConfigError, match="no pretrained classifier"):
        Trainer(tiny_config(photos, "loss.semantic_weight=0.5", "run.steps=1"), tmp_path / "seed", env=DistributedEnv())


def test_every_weights_path_goes_through_one_shape_check(photos, tmp_path, monkeypatch):
    from colorem import weights

    run = tmp_path / "run"
    Trainer(tiny_config(photos, "run.steps=1"), run, env=DistributedEnv()).fit()
    sources, check = [], weights.check_shapes
    monkeypatch.setattr(weights, "check_shapes", lambda found, expected, source, **rules:
                        sources.append(source) or check(found, expected, source, **rules))
    path = export(run, tmp_path / "w.safetensors")  # a run's checkpoint
    colorem.load(path)  # exported weights: the header first, then the tensors
    Trainer(tiny_config(photos, "run.steps=1"), tmp_path / "next", env=DistributedEnv(), init_from=str(path))
    assert sources == [str(run), str(path), str(path), f"--init-from {path}"]


def test_export_then_colorem_load_colorizes(photos, tmp_path):
    run = tmp_path / "run"
    Trainer(tiny_config(photos, "run.steps=2", "optim.ema=0.5"), run, env=DistributedEnv()).fit()
    result = cli("export", str(run), "-o", str(tmp_path / "exported" / "tiny.safetensors"), "--fp16")
    assert result.returncode == 0, result.stderr
    colorizer = colorem.load(tmp_path / "exported" / "tiny.safetensors")
    card = colorizer.card
    assert card.architecture == "color-em-tiny" and card.render_size == 32
    assert card.provenance["trained_steps"] == 2 and card.provenance["weights"] == "ema"
    assert card.data["images_seen"] == 8 and "val_psnr" in card.metrics
    result_image = colorizer.colorize(photo(50, 40))
    assert result_image.size == (50, 40)
    # --init-from: a new run from those weights, fresh optimizer, step 0
    trainer = Trainer(tiny_config(photos, "run.steps=1"), tmp_path / "second", env=DistributedEnv(),
                      init_from=str(tmp_path / "exported" / "tiny.safetensors"))
    assert trainer.step == 0
    torch.testing.assert_close(trainer.model.output.weight, colorizer.model.output.weight.float(), atol=1e-3, rtol=1e-3)


def machine_paths(card: dict) -> list[str]:
    """Every string in a card that looks like a path on the machine that wrote it."""
    def strings(value):
        if isinstance(value, dict):
            return [text for item in value.values() for text in strings(item)]
        if isinstance(value, list):
            return [text for item in value for text in strings(item)]
        return [value] if isinstance(value, str) else []

    return [text for text in strings(card)
            if text.startswith(("/", "~", "./")) or "../" in text or re.match(r"^[A-Za-z]:[\\/]", text)]


def test_an_exported_card_names_its_data_without_machine_paths(photos, tmp_path):
    run = tmp_path / "run"
    Trainer(tiny_config(photos, "run.steps=1", f"data.validation={photos}"), run, env=DistributedEnv()).fit()
    card = json.loads(export(run, tmp_path / "w.safetensors").with_suffix(".json").read_text())
    assert machine_paths(card) == [] and str(tmp_path) not in json.dumps(card)
    assert card["provenance"]["config"]["data"]["train"] == [photos.name]
    assert card["provenance"]["config"]["data"]["validation"] == photos.name
    assert card["data"]["source"]["count"] == 8 and card["data"]["source"]["first"][0].startswith("photo")
    recarded = json.loads(export(tmp_path / "w.safetensors", tmp_path / "again.safetensors").with_suffix(".json").read_text())
    assert machine_paths(recarded) == []


def test_the_shipped_card_holds_no_machine_paths():
    card = json.loads(packaged_weights().with_suffix(".json").read_text())
    assert machine_paths(card) == []
    assert card["data"]["source"]["count"] > 0  # names and counts stay


def test_export_from_a_single_checkpoint_file(photos, tmp_path):
    run = tmp_path / "run"
    Trainer(tiny_config(photos, "run.steps=1"), run, env=DistributedEnv()).fit()
    path = export(list_checkpoints(run)[-1], tmp_path / "w.safetensors")
    assert colorem.load(path).card.provenance["weights"] == "live"


# --- distributed ----------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _ddp_worker(rank: int, world_size: int, port: int, config_dict: dict, run: str, resume: bool, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world_size),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    from colorem.train import distributed

    env = distributed.setup("cpu")
    try:
        state = resolve_resume("auto", run)[0] if resume else None
        trainer = Trainer(Config.from_dict(config_dict), run, env=env, checkpoint=state)
        started = trainer.step
        trainer.fit()
        flat = torch.cat([p.detach().flatten() for p in trainer.model.parameters()])
        gathered = distributed.gather_objects(env, flat)
        keys = distributed.gather_objects(env, trainer.data.position.to_dict())
        if env.is_main:
            torch.save({"params": gathered, "started": started, "step": trainer.step, "positions": keys}, out)
    finally:
        distributed.cleanup()
    # Skip interpreter teardown: gloo's threads occasionally abort there ("terminate called without an
    # active exception", about 1 run in 10 here) after all the work above has finished and been saved.
    os._exit(0)


def _spawn(world_size: int, config: Config, run: Path, resume: bool, out: Path) -> dict:
    for attempt in range(2):  # a second try with a new port: another process may grab the free port first
        try:
            torch.multiprocessing.spawn(_ddp_worker, nprocs=world_size, join=True,
                                        args=(world_size, _free_port(), config.to_dict(), str(run), resume, str(out)))
            break
        except torch.multiprocessing.ProcessExitedException:
            if attempt or out.exists():
                raise
    return torch.load(out, weights_only=True)


@pytest.mark.slow
def test_two_process_gloo_ddp_keeps_ranks_identical_and_resumes(photos, tmp_path):
    run = tmp_path / "run"
    first = _spawn(2, tiny_config(photos, "run.steps=3", "data.batch_size=2", "optim.lr=1e-2"), run, False, tmp_path / "a.pt")
    assert first["step"] == 3
    assert torch.equal(first["params"][0], first["params"][1])
    second = _spawn(2, tiny_config(photos, "run.steps=5", "data.batch_size=2", "optim.lr=1e-2"), run, True, tmp_path / "b.pt")
    assert (second["started"], second["step"]) == (3, 5)
    assert torch.equal(second["params"][0], second["params"][1])
    assert not torch.equal(second["params"][0], first["params"][0])
    state = load_latest(run)[0]
    assert state["data"]["world_size"] == 2 and len(state["data"]["ranks"]) == 2
    # the same run continues on one process (a different world size)
    single = Trainer(tiny_config(photos, "run.steps=6", "data.batch_size=2"), run, env=DistributedEnv(), checkpoint=state)
    assert single.fit()["step"] == 6


def test_init_from_a_regression_run_into_a_classification_head(photos, tmp_path):
    run = tmp_path / "regression"
    Trainer(tiny_config(photos, "run.steps=1"), run, env=DistributedEnv()).fit()
    trained = load_latest(run)[0]["model"]
    config = tiny_config(photos, "model.head=classification", "loss.name=classification", "run.steps=1")
    trainer = Trainer(config, tmp_path / "classification", env=DistributedEnv(), init_from=str(run))
    assert torch.equal(trainer.model.encoder[0][0].weight, trained["encoder.0.0.weight"])  # the body carries over
    assert trainer.model.output.out_channels == len(ab_bins())  # the head is new
    assert trainer.fit()["status"] == "completed"
    mismatched = tiny_config(photos, "model.architecture=color-em-half", "run.steps=1")
    with pytest.raises(colorem.ColoremError, match="do not match the model"):
        Trainer(mismatched, tmp_path / "bad", env=DistributedEnv(), init_from=str(run))


@pytest.mark.parametrize("option, layers", [("hints", ("hint_input", "hint_fusion", "hint_decoder")),
                                            ("skips", ("skip_quarter", "skip_half"))])
def test_new_layers_train_from_a_run_without_them_and_export(photos, tmp_path, option, layers):
    """A hint model (or a skip model) continued from an automatic run starts as that run's model, its new
    zero-initialized layers learn 10x faster, and its card says what it is."""
    automatic = tmp_path / "automatic"
    classification = ("model.head=classification", "loss.name=classification", "loss.prior_images=8")
    Trainer(tiny_config(photos, *classification, "run.steps=1"), automatic, env=DistributedEnv()).fit()
    config = tiny_config(photos, *classification, f"model.{option}=true", "run.steps=3")
    config = apply_overrides(config, ["optim.hint_lr_scale=10"])
    trainer = Trainer(config, tmp_path / option, env=DistributedEnv(), init_from=str(automatic))
    new_convs = [getattr(trainer.model, name) for name in layers]
    assert not any(conv.weight.any() for conv in new_convs)  # starts as the automatic model
    l = torch.rand(1, 1, 40, 40) * 100
    export(automatic, tmp_path / "automatic.safetensors")
    with torch.no_grad():
        before, automatic_ab = trainer.model.eval()(l), colorem.load(tmp_path / "automatic.safetensors").model.float()(l)
    torch.testing.assert_close(before, automatic_ab, atol=1e-4, rtol=0)
    new_parameters = {id(p) for conv in new_convs for p in conv.parameters()}
    rates = {id(p): group["initial_lr"] for group in trainer.optimizer.param_groups for p in group["params"]}
    assert all(rates[key] == pytest.approx(10 * config.optim.lr) for key in new_parameters)  # the new layers learn faster
    assert sorted(set(rates.values())) == pytest.approx([config.optim.lr, 10 * config.optim.lr])
    assert trainer.fit()["status"] == "completed"
    assert all(conv.weight.any() for conv in new_convs)  # training moved the new layers
    export(tmp_path / option, tmp_path / f"{option}.safetensors")
    colorizer = colorem.load(tmp_path / f"{option}.safetensors")
    assert colorizer.card.architecture_options[option] is True
    assert colorizer.model.accepts_hints == (option == "hints")


@pytest.mark.parametrize("share", [0.0, 1.0])
def test_the_share_of_photos_trained_without_hints_is_a_setting(photos, tmp_path, monkeypatch, share):
    """data.hint_free_share: 0 reveals hints in every training photo, 1 in none (automatic colorization only)."""
    revealed = []
    simulate = colorem.train.loop.simulate_hints

    def counting(ab, generator, simulation):
        hints = simulate(ab, generator, simulation)
        revealed.extend(hints[:, 2].flatten(1).sum(1).gt(0).tolist())
        return hints

    monkeypatch.setattr(colorem.train.loop, "simulate_hints", counting)
    config = tiny_config(photos, "model.head=classification", "loss.name=classification", "loss.prior_images=8",
                         "model.hints=true", f"data.hint_free_share={share}", "run.steps=3")
    assert Trainer(config, tmp_path / "run", env=DistributedEnv()).fit()["status"] == "completed"
    assert len(revealed) >= 3 and set(revealed) == {share == 0.0}
    with pytest.raises(ConfigError, match="hint_free_share"):
        tiny_config(photos, "data.hint_free_share=1.5")


def test_cli_until_ends_a_sitting_that_resume_continues(photos, tmp_path):
    out = tmp_path / "run"
    first = cli(*cli_train_args(photos, out, "run.steps=4", "run.checkpoint_every=10"), "--until", "2")
    assert first.returncode == 0, first.stderr
    assert [path.name for path in list_checkpoints(out)] == ["step-00000002.pt"]
    second = cli(*cli_train_args(photos, out, "run.steps=4", "run.checkpoint_every=10"), "--resume", "auto")
    assert second.returncode == 0, second.stderr
    assert list_checkpoints(out)[-1].name == "step-00000004.pt"


@pytest.mark.parametrize("spec, name", [
    ("../shared/data/train/train-{000..056}.tar", "train-{000..056}.tar"),
    ("/home/me/photos/", "photos"),
    ("https://bucket.example/shards/train-{000..009}.tar?X-Amz-Signature=s3cr3t", "train-{000..009}.tar"),
    ('pipe:curl -s -H "Authorization: Bearer a.b.s3cr3t" https://host/a/train-0001.tar', "train-0001.tar"),
    ("pipe:cat /data/train-000000.tar # Authorization=s3cr3t", "train-000000.tar"),
])
def test_a_card_names_data_without_paths_or_credentials(spec, name):
    from colorem.train.export import file_name

    assert file_name(spec) == name  # the card is published at GET /api/models



def test_no_progress_logs_the_loss_instead_of_a_bar(photos, tmp_path):
    result = cli(*cli_train_args(photos, tmp_path / "run", "run.steps=4", "run.log_every=2"))  # --no-progress
    assert result.returncode == 0, result.stderr
    steps = [line for line in result.stderr.splitlines() if " INFO step " in line]
    assert [line.split(" INFO ")[1].split(" loss ")[0] for line in steps] == ["step 2/4", "step 4/4"], result.stderr


def test_too_few_photos_for_the_workers_says_what_to_lower(photos, tmp_path):
    result = cli(*cli_train_args(photos, tmp_path / "run", "run.steps=1", "data.batch_size=8", "data.workers=2"))
    assert result.returncode == 2, result.stderr  # 8 photos, 2 workers with 4 each: no worker fills a batch of 8
    assert "2 decoding workers" in result.stderr and "lower data.workers or data.batch_size" in result.stderr



def test_missing_validation_photos_are_called_that(photos, tmp_path):
    result = cli(*cli_train_args(photos, tmp_path / "run", "run.steps=1"), "--validation", str(tmp_path / "nonexist"))
    assert result.returncode == 2 and "validation photos (data.validation) not found" in result.stderr, result.stderr
