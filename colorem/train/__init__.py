"""Training: typed config, data to Lab on the device, losses, a resumable loop, atomic checkpoints, DDP.

    from colorem.train import Trainer, load_config
    Trainer(load_config("configs/quick-cpu.toml", ["data.train=photos/"]), "runs/quick").fit()
"""

from colorem.train.config import Config, ConfigError, load_config
from colorem.train.loop import Trainer

__all__ = ["Config", "ConfigError", "Trainer", "load_config"]
