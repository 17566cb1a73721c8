"""Environments: the reset/step contract, single-turn and multi-turn bases."""

from haystack_rl.environments.base import Environment, State
from haystack_rl.environments.checker import EnvironmentCheckError, check_environment
from haystack_rl.environments.multi_turn import MultiTurnEnv
from haystack_rl.environments.single_turn import SingleTurnEnv

__all__ = ["Environment", "EnvironmentCheckError", "MultiTurnEnv", "SingleTurnEnv", "State", "check_environment"]
