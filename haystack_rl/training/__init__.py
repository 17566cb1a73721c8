"""Training: SFT warm start and GRPO through TRL, LoRA, checkpoints, logs; `Trainer` ties them together."""

from haystack_rl.training.config import ConfigError, TrainConfig
from haystack_rl.training.trainer import Trainer

__all__ = ["ConfigError", "TrainConfig", "Trainer"]
