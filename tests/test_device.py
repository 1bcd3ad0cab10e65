"""One set of device and precision rules for colorizing and for training (colorem.device)."""

import pytest
import torch

from colorem import device
from colorem.device import pick_device, resolve_precision
from colorem.errors import OptionError

CPU, CUDA = torch.device("cpu"), torch.device("cuda")


@pytest.mark.parametrize("fast, place, training, expected", [
    (True, CPU, False, "bf16"), (True, CPU, True, "bf16"), (True, CUDA, False, "bf16"), (True, CUDA, True, "bf16"),
    (False, CPU, False, "fp32"), (False, CPU, True, "fp32"),
    (False, CUDA, False, "fp32"), (False, CUDA, True, "fp16"),  # an older GPU: fp16 + GradScaler pays for training
])
def test_auto_precision(monkeypatch, fast, place, training, expected):
    monkeypatch.setattr(device, "bf16_is_fast", lambda where: fast)
    assert resolve_precision("auto", place, training=training) == expected


@pytest.mark.parametrize("training, word", [(False, "inference"), (True, "training")])
def test_fp16_needs_cuda_and_names_are_checked(training, word):
    with pytest.raises(OptionError, match=f"fp16 {word} needs CUDA"):
        resolve_precision("fp16", CPU, training=training)
    with pytest.raises(OptionError, match="precision must be one of"):
        resolve_precision("int8", CPU, training=training)
    assert resolve_precision("fp32", CPU, training=training) == "fp32"
    assert resolve_precision("fp16", CUDA, training=training) == "fp16"


def test_devices_are_checked_and_auto_means_cuda_when_present(monkeypatch):
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    assert pick_device(None) == pick_device("auto") == (torch.device("cuda") if torch.cuda.is_available() else CPU)
    assert pick_device("cpu", local_rank=3) == CPU
    with pytest.raises(OptionError, match="unknown device 'gpu'"):
        pick_device("gpu")
    if not torch.cuda.is_available():
        with pytest.raises(OptionError, match="CUDA is not available"):
            pick_device("cuda:0")


def test_under_torchrun_a_cuda_device_without_index_is_this_rank_s_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setenv("LOCAL_RANK", "3")
    assert pick_device(None) == torch.device("cuda", 1)  # LOCAL_RANK 3 of 2 GPUs
    assert pick_device("cuda", local_rank=0) == torch.device("cuda", 0)  # training passes its own
    assert pick_device("cuda:0") == torch.device("cuda", 0)  # a named GPU stays
    monkeypatch.delenv("LOCAL_RANK")
    assert pick_device("cuda") == CUDA  # plain runs: the current GPU, as torch means it


def test_the_colorizer_and_the_trainer_use_these_rules():
    from colorem.colorize import Colorizer
    from colorem.train import loop

    assert loop.resolve_precision is resolve_precision and loop.autocast is device.autocast
    colorizer = Colorizer.from_model(torch.nn.Conv2d(1, 2, 1), device="cpu", precision="auto")
    assert colorizer.precision == resolve_precision("auto", CPU) and colorizer.device == CPU
