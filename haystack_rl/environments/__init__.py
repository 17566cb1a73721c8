"""Environments: the reset/step contract, single-turn, multi-turn and tool-calling bases."""

from haystack_rl.environments.base import Environment, State
from haystack_rl.environments.checker import EnvironmentCheckError, check_environment
from haystack_rl.environments.multi_turn import MultiTurnEnv
from haystack_rl.environments.single_turn import SingleTurnEnv
from haystack_rl.environments.tool_env import ToolEnv

__all__ = [
    "Environment",
    "EnvironmentCheckError",
    "MultiTurnEnv",
    "SingleTurnEnv",
    "State",
    "ToolEnv",
    "check_environment",
]
