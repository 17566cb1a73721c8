"""Environments: the reset/step contract, single-turn, multi-turn and tool-calling bases."""

from haystack_rl.environments.base import DemonstrationError, Environment, EpisodeState
from haystack_rl.environments.checker import EnvironmentCheckError, check_environment
from haystack_rl.environments.multi_turn import MultiTurnEnv
from haystack_rl.environments.single_turn import SingleTurnEnv
from haystack_rl.environments.tool_env import ToolEnv

__all__ = [
    "DemonstrationError",
    "Environment",
    "EnvironmentCheckError",
    "MultiTurnEnv",
    "SingleTurnEnv",
    "EpisodeState",
    "ToolEnv",
    "check_environment",
]
