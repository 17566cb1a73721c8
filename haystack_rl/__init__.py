"""haystack_rl: reinforcement-learning environments for LLMs, built as Haystack components."""

from haystack.core.serialization import allow_deserialization_module

from haystack_rl.environments import (
    Environment,
    EnvironmentCheckError,
    MultiTurnEnv,
    SingleTurnEnv,
    State,
    ToolEnv,
    check_environment,
)
from haystack_rl.registry import available_environments, load_environment
from haystack_rl.rollout import Rollout, Turn, read_rollouts, rollouts_to_dataset, write_rollouts
from haystack_rl.rubrics import RewardFunction, Rubric, TagParser
from haystack_rl.runner import RolloutRunner

#: Modules whose components our YAML pipelines name; trusted for Haystack's deserialization allowlist.
TRUSTED_MODULES = ("haystack_rl", "haystack_rl_envs")
for _module in TRUSTED_MODULES:
    allow_deserialization_module(_module)

__version__ = "0.1.0"
__all__ = [
    "TRUSTED_MODULES",
    "Environment",
    "MultiTurnEnv",
    "RewardFunction",
    "Rollout",
    "RolloutRunner",
    "Rubric",
    "SingleTurnEnv",
    "State",
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
