"""haystack_rl: reinforcement-learning environments for LLMs, built as Haystack components."""

from haystack_rl.environments import (
    Environment,
    EnvironmentCheckError,
    EpisodeState,
    MultiTurnEnv,
    SingleTurnEnv,
    ToolEnv,
    check_environment,
)
from haystack_rl.registry import available_environments, load_environment
from haystack_rl.rollout import Rollout, Turn
from haystack_rl.rollout_io import read_rollouts, rollouts_to_dataset, write_rollouts
from haystack_rl.rubrics import RewardFunction, Rubric, TagParser
from haystack_rl.runner import RolloutRunner
from haystack_rl.trust import BUILT_IN_MODULES, trust_modules

trust_modules(BUILT_IN_MODULES)  # our own YAML files name components of these

__version__ = "0.1.0"
__all__ = [
    "Environment",
    "MultiTurnEnv",
    "RewardFunction",
    "Rollout",
    "RolloutRunner",
    "Rubric",
    "SingleTurnEnv",
    "EpisodeState",
    "TagParser",
    "Turn",
    "available_environments",
    "load_environment",
    "read_rollouts",
    "rollouts_to_dataset",
    "write_rollouts",
    "EnvironmentCheckError",
    "check_environment",
    "ToolEnv",
]
